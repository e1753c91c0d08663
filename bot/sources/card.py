"""Draw the story card of a story without pictures, with the font bundled in ``fonts/``.

The drawing itself is :func:`posts.card.draw_card`; this module reads the bundled font (once per
process) and hands it the story's date stamp, category and source, and headline, as the product
shows them (:func:`posts.render.date_stamp`). ``ONEYEARAGO_STORY_CARD`` turns the card on.
"""

from __future__ import annotations

import functools
from importlib import resources

from posts.card import draw_card
from posts.render import date_stamp
from posts.story import Story

FONT = "DejaVuSans-Bold.ttf"
"""The bundled font (DejaVu Sans Bold; see ``fonts/README.md`` for where it came from and its licence)."""


@functools.cache
def font() -> bytes:
    """The bundled font's bytes, read once."""
    return (resources.files("bot.sources") / "fonts" / FONT).read_bytes()


def story_card(story: Story) -> bytes:
    """The story's card as PNG bytes (1200 x 675); the same story always gives the same bytes."""
    meta = " · ".join(part for part in (story.category, story.source) if part)
    return draw_card(stamp=date_stamp(story), meta=meta, headline=story.headline, font=font())


def card_alt(story: Story) -> str:
    """The card's alt text: the headline it shows (the lead cuts it to the platform's limit)."""
    return story.headline
