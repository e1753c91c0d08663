"""Draw the pictures of the bundled sample queue (bot/sources/samples/pictures/) with Pillow.

The project makes these itself, from the figures the sample stories report, so that it may ship
them: there is no photograph or third-party image among them. Text is set in the bundled font
(bot/sources/fonts/DejaVuSans-Bold.ttf) with Pillow's basic layout engine, and the PNGs carry no
metadata, so running this again gives the same files (with the same Pillow, FreeType and zlib).

    python scripts/make_sample_pictures.py           # (re)write the pictures
    python scripts/make_sample_pictures.py --check   # exit 1 if a committed picture differs
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
FONT = ROOT / "bot" / "sources" / "fonts" / "DejaVuSans-Bold.ttf"
OUT = ROOT / "bot" / "sources" / "samples" / "pictures"

WIDTH, HEIGHT = 1200, 675
MARGIN = 70
PAPER = (250, 248, 243)
INK = (28, 30, 36)
MUTED = (110, 114, 124)
GRID = (222, 220, 214)
BLUE = (46, 104, 196)
GREY = (150, 154, 162)
RED = (204, 62, 52)
GREEN = (34, 139, 94)
AMBER = (226, 160, 40)
CREDIT = "Drawn by the oneyearago project from the figures in the story"

_fonts: dict[int, ImageFont.FreeTypeFont] = {}


def font(size: int) -> ImageFont.FreeTypeFont:
    if size not in _fonts:
        _fonts[size] = ImageFont.truetype(io.BytesIO(FONT.read_bytes()), size,
                                          layout_engine=ImageFont.Layout.BASIC)
    return _fonts[size]


def canvas(title: str, subtitle: str, note: str) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, 48), title, font=font(40), fill=INK)
    draw.text((MARGIN, 104), subtitle, font=font(24), fill=MUTED)
    draw.text((MARGIN, HEIGHT - 52), note, font=font(18), fill=MUTED)
    return image, draw


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def r1_price_chart() -> bytes:
    """DeepSeek R1's API prices against OpenAI o1's (US dollars per million tokens)."""
    image, draw = canvas(
        "API price per million tokens, January 2025",
        "DeepSeek R1 against OpenAI o1, in US dollars",
        "API list prices when R1 launched, 20 January 2025. Drawn by the oneyearago project.",
    )
    groups = [("Input tokens", [("DeepSeek R1", 0.55), ("OpenAI o1", 15.00)]),
              ("Output tokens", [("DeepSeek R1", 2.19), ("OpenAI o1", 60.00)])]
    left, right = 330, WIDTH - MARGIN - 120
    scale = (right - left) / 60.0
    for x in range(0, 61, 10):
        gx = left + round(x * scale)
        draw.line((gx, 170, gx, 560), fill=GRID, width=2)
        draw.text((gx, 568), f"${x}", font=font(18), fill=MUTED, anchor="ma")
    y = 180
    for group, bars in groups:
        draw.text((MARGIN, y), group, font=font(26), fill=INK)
        y += 44
        for name, price in bars:
            colour = BLUE if name.startswith("DeepSeek") else GREY
            draw.text((MARGIN + 20, y + 6), name, font=font(24), fill=INK)
            end = left + max(4, round(price * scale))
            draw.rectangle((left, y, end, y + 40), fill=colour)
            draw.text((end + 12, y + 6), f"${price:.2f}", font=font(24), fill=INK)
            y += 56
        y += 22
    return png(image)


def eu_ai_act_timeline() -> bytes:
    """When the EU AI Act's rules apply, as the Act sets it out, with 2 February 2025 marked."""
    image, draw = canvas(
        "The EU AI Act, step by step",
        "When its rules apply, with the step this story reports marked",
        "Dates as set in the AI Act, Regulation (EU) 2024/1689. Drawn by the oneyearago project.",
    )
    steps = [
        ("1 Aug 2024", ["The Act enters", "into force"], False),
        ("2 Feb 2025", ["Bans on", "unacceptable-risk AI;", "AI literacy duty"], True),
        ("2 Aug 2025", ["Rules for general-", "purpose AI models;", "penalties apply"], False),
        ("2 Aug 2026", ["Most other rules,", "including", "high-risk AI"], False),
    ]
    line_y = 330
    first, last = MARGIN + 120, WIDTH - MARGIN - 120
    draw.line((first - 60, line_y, last + 60, line_y), fill=GREY, width=6)
    gap = (last - first) / (len(steps) - 1)
    for i, (date, lines, now) in enumerate(steps):
        x = round(first + i * gap)
        colour = AMBER if now else BLUE
        radius = 22 if now else 16
        draw.ellipse((x - radius, line_y - radius, x + radius, line_y + radius), fill=colour)
        draw.text((x, line_y - 74), date, font=font(28), fill=INK, anchor="ma")
        for j, text in enumerate(lines):
            draw.text((x, line_y + 48 + j * 34), text, font=font(22), fill=INK if now else MUTED, anchor="ma")
        if now:
            draw.text((x, line_y - 118), "this story", font=font(20), fill=AMBER, anchor="ma")
    return png(image)


def _value_bars(draw: ImageDraw.ImageDraw, rows: list[tuple[str, str, float, tuple[int, int, int]]],
                top: int, maximum: float, pitch: int = 96) -> list[tuple[int, int, int]]:
    """Horizontal bars of market value in trillions, ``pitch`` apart; returns (y, left, end) of each."""
    left, right = 400, WIDTH - MARGIN - 40
    scale = (right - left) / maximum
    for t in range(int(maximum) + 1):
        gx = left + round(t * scale)
        draw.line((gx, top - 20, gx, top + pitch * len(rows) - 10), fill=GRID, width=2)
        draw.text((gx, top + pitch * len(rows)), f"${t}T", font=font(18), fill=MUTED, anchor="ma")
    placed = []
    for i, (label, detail, value, colour) in enumerate(rows):
        y = top + i * pitch
        draw.text((MARGIN, y + 4), label, font=font(24), fill=INK)
        draw.text((MARGIN, y + 38), detail, font=font(18), fill=MUTED)
        end = left + round(value * scale)
        draw.rectangle((left, y, end, y + 60), fill=colour)
        placed.append((y, left, end))
    return placed


def nvidia_then() -> bytes:
    """Nvidia's market value before and after the DeepSeek sell-off of 27 January 2025."""
    image, draw = canvas(
        "Nvidia's market value, 27 January 2025",
        "The largest one-day loss of market value for any US company",
        f"About $589 billion, or 17%, lost in one day. {CREDIT}.",
    )
    rows = [("Before", "Friday 24 Jan close", 3.48, GREY),
            ("After", "Monday 27 Jan close", 2.89, BLUE)]
    placed = _value_bars(draw, rows, 200, 4.0, pitch=140)
    for (y, _, end), text in zip(placed, ["about $3.5 trillion", "about $2.9 trillion"], strict=True):
        draw.text((end - 16, y + 31), text, font=font(24), fill=PAPER, anchor="rm")
    (_, _, before), (y, _, after) = placed
    draw.rectangle((after, y, before, y + 60), outline=RED, width=4)
    draw.text((before, y + 76), "−$589 billion (about 17%)", font=font(24), fill=RED, anchor="ra")
    return png(image)


def nvidia_now() -> bytes:
    """Nvidia's market value after the sell-off and at its records later in 2025."""
    image, draw = canvas(
        "Nvidia's market value, one year on",
        "From the DeepSeek sell-off to the first $4 and $5 trillion companies",
        f"Values at the dates shown, 2025. {CREDIT}.",
    )
    rows = [("27 Jan 2025", "after the sell-off", 2.89, GREY),
            ("July 2025", "first company worth $4T", 4.0, BLUE),
            ("29 Oct 2025", "first company worth $5T", 5.0, GREEN)]
    placed = _value_bars(draw, rows, 180, 5.5)
    for (y, _, end), text in zip(placed, ["about $2.9T", "$4T", "$5T"], strict=True):
        draw.text((end + 14, y + 16), text, font=font(24), fill=INK)
    return png(image)


PICTURES: dict[str, Callable[[], bytes]] = {
    "r1-price-chart.png": r1_price_chart,
    "eu-ai-act-timeline.png": eu_ai_act_timeline,
    "nvidia-then.png": nvidia_then,
    "nvidia-now.png": nvidia_now,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed pictures")
    args = parser.parse_args(argv)
    stale = []
    for name, make in PICTURES.items():
        data = make()
        path = OUT / name
        if args.check:
            if not path.is_file() or path.read_bytes() != data:
                stale.append(name)
            continue
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"{path.relative_to(ROOT)}: {len(data)} bytes")
    if stale:
        print("differs from what the script draws: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
