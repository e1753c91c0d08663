"""Draw a story card: the picture a story without one of its own can be posted with.

The card shows the story as the product does: the date stamp (``12 JAN 2024 · replayed one year
on``), the category and source, and the headline, wrapped to fit and set smaller when it is long,
cut with an ellipsis when it still does not fit. It is drawn with Pillow from the font bytes the
caller passes (nothing here reads a file), with Pillow's basic layout engine rather than Raqm, so
that the same inputs give the same PNG bytes on every machine with the same Pillow, FreeType and
zlib. The PNG carries no metadata (no text chunks, no EXIF, no time).

Symbols the font lacks (most emoji) are left out; other characters it lacks (letters of a script it
does not cover) are drawn as its "missing glyph" box rather than failing, and :func:`missing` tells
which they are, for a caller that would rather not post such a card. Control and format characters
(and lone surrogates) are dropped; a word wider than the line (a long URL, a
language written without spaces) is broken between characters. The basic layout engine does not
shape or reorder text, so right-to-left and complex scripts come out as isolated letters, left to
right: the alt text, not the card, carries such a headline.
"""

from __future__ import annotations

import functools
import io
import unicodedata
from typing import Any, Protocol

WIDTH = 1200
HEIGHT = 675
MARGIN = 80
"""Left and right margin, in pixels."""

BACKGROUND = (20, 22, 28)
ACCENT = (242, 177, 52)
META = (160, 166, 178)
HEADLINE = (245, 245, 245)
RULE = (58, 62, 72)

STAMP_TOP = 64
STAMP_SIZE = 30
META_TOP = 110
META_SIZE = 26
RULE_TOP = 162
HEADLINE_BOX = (MARGIN, 200, WIDTH - MARGIN, HEIGHT - 64)
"""Where the headline may be drawn: left, top, right, bottom (pixels)."""
HEADLINE_SIZES = (64, 60, 56, 52, 48, 44, 40, 36)
"""Headline sizes tried in turn, largest first; the first at which the whole headline fits wins."""
LINE_HEIGHT = 1.22
"""Line spacing as a multiple of the font size."""
ELLIPSIS = "…"


def draw_card(*, stamp: str, meta: str, headline: str, font: bytes) -> bytes:
    """The card as PNG bytes, ``WIDTH`` x ``HEIGHT``; the same inputs always give the same bytes.

    ``font`` is the content of a TrueType/OpenType file. ``meta`` may be empty (no line is drawn),
    and so may ``headline``.

    Raises:
        OSError: when ``font`` is not a font FreeType can read.
    """
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    width = WIDTH - 2 * MARGIN

    draw.rectangle((0, 0, 11, HEIGHT), fill=ACCENT)
    stamp_font = _font(font, STAMP_SIZE)
    draw.text((MARGIN, STAMP_TOP), _fit(_drawable(stamp, font), stamp_font, width), font=stamp_font, fill=ACCENT)
    meta_font = _font(font, META_SIZE)
    draw.text((MARGIN, META_TOP), _fit(_drawable(meta, font), meta_font, width), font=meta_font, fill=META)
    draw.rectangle((MARGIN, RULE_TOP, WIDTH - MARGIN, RULE_TOP + 1), fill=RULE)

    left, top, right, bottom = HEADLINE_BOX
    size, lines = layout(_drawable(headline, font), font, right - left, bottom - top)
    head_font = _font(font, size)
    step = round(size * LINE_HEIGHT)
    for i, line in enumerate(lines):
        draw.text((left, top + i * step), line, font=head_font, fill=HEADLINE)

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def layout(headline: str, font: bytes, width: int, height: int) -> tuple[int, list[str]]:
    """The headline's size and lines: the largest of :data:`HEADLINE_SIZES` at which it fits in
    ``width`` x ``height``, else the smallest, with the lines that fit and an ellipsis."""
    for size in HEADLINE_SIZES:
        lines = wrap(headline, _font(font, size), width)
        if len(lines) * round(size * LINE_HEIGHT) <= height:
            return size, lines
    size = HEADLINE_SIZES[-1]
    measure = _font(font, size)
    room = max(1, height // round(size * LINE_HEIGHT))
    lines = wrap(headline, measure, width)
    if len(lines) > room:
        lines = lines[:room]
        lines[-1] = _fit(lines[-1] + ELLIPSIS, measure, width, cut=True)
    return size, lines


def wrap(text: str, font: _Measure, width: int) -> list[str]:
    """``text`` in lines no wider than ``width``: broken at spaces, and between characters inside
    a word that is wider than a line on its own."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if not word:
            continue
        candidate = f"{line} {word}" if line else word
        if font.getlength(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
            line = ""
        for char in word:
            if line and font.getlength(line + char) > width:
                lines.append(line)
                line = ""
            line += char
    if line:
        lines.append(line)
    return lines


def clean(text: str) -> str:
    """``text`` on one line: runs of whitespace become one space; control and format characters,
    private-use, unassigned and surrogate code points are dropped."""
    kept = "".join(c for c in text if c.isspace() or not unicodedata.category(c).startswith("C"))
    return " ".join(kept.split())


def missing(text: str, font: bytes) -> str:
    """The characters of ``text`` (once each, in order) that ``font`` has no glyph for."""
    return "".join(dict.fromkeys(c for c in clean(text) if not c.isspace() and _glyphless(font, c)))


def _drawable(text: str, font: bytes) -> str:
    """``text`` cleaned, without the symbols (emoji, dingbats) the font lacks."""
    lacking = {c for c in missing(text, font) if unicodedata.category(c).startswith("S")}
    return clean("".join(c for c in clean(text) if c not in lacking)) if lacking else clean(text)


@functools.lru_cache(maxsize=4096)
def _glyphless(font: bytes, char: str) -> bool:
    """Whether ``font`` draws ``char`` as its missing glyph (that of U+FFFF, which no font maps)."""
    measure = _font(font, STAMP_SIZE)
    mask, probe = measure.getmask(char), measure.getmask("\uffff")
    return bool(mask.size == probe.size and bytes(mask) == bytes(probe))


def _fit(text: str, font: _Measure, width: int, *, cut: bool = False) -> str:
    """``text`` if it fits in ``width``, else as much of it as fits followed by an ellipsis, cut after
    a word when that keeps most of the line (``cut``: ``text`` already ends with the ellipsis)."""
    if font.getlength(text) <= width:
        return text
    body = text[:-1] if cut else text
    while body and font.getlength(body.rstrip() + ELLIPSIS) > width:
        body = body[:-1]
    space = body.rfind(" ")
    if space > len(body) * 2 // 3:
        body = body[:space]
    return body.rstrip() + ELLIPSIS


class _Measure(Protocol):
    """What the layout needs of a font (Pillow's ``FreeTypeFont``)."""

    def getlength(self, text: str) -> float: ...


@functools.lru_cache(maxsize=32)
def _font(data: bytes, size: int) -> Any:
    """Pillow's font of ``data`` at ``size`` pixels, with the basic layout engine (see the module)."""
    from PIL import ImageFont

    return ImageFont.truetype(io.BytesIO(data), size, layout_engine=ImageFont.Layout.BASIC)
