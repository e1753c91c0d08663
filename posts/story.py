"""Provide the Story value object: one dated piece of news as the operator wrote it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from posts.media import Image

PLATFORMS: tuple[str, ...] = ("x", "reddit", "bluesky", "mastodon")
"""Every platform the bot knows, in the order it lists them."""

PLATFORM_NAMES: dict[str, str] = {"x": "X", "reddit": "Reddit", "bluesky": "Bluesky", "mastodon": "Mastodon"}
"""How each platform is named to people (the CLI, the dashboard)."""

FIELDS: tuple[str, ...] = (
    "id",
    "date",
    "timezone",
    "headline",
    "summary",
    "body",
    "category",
    "source",
    "url",
    "image",
    "images",
    "followup_images",
    "one_year_later",
    "followup_after",
    "platforms",
    "tags",
    "lang",
    "replies",
)
"""Every field of a story's content."""

FILE_FIELDS: tuple[str, ...] = (*FIELDS, "draft")
"""Every field a story file may use: the content, and ``draft`` (the story waits for ``approve``), which is
the queue's state rather than content, so it is kept out of the content and its hash."""


@dataclasses.dataclass(frozen=True)
class StoryImage:
    """One picture of a story: where it came from, its alt text, and the version prepared for each
    platform at load time (by the sha256 under which the queue stores its bytes)."""

    ref: str
    """The path or URL as the story file gave it."""
    alt: str
    """What the picture shows, for readers who cannot see it (Reddit shows it as the caption)."""
    versions: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Platform -> sha256 of the version made within that platform's limits."""

    def to_dict(self) -> dict[str, object]:
        return {"ref": self.ref, "alt": self.alt, "versions": dict(self.versions)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoryImage:
        return cls(str(data.get("ref") or ""), str(data.get("alt") or ""), dict(data.get("versions") or {}))


@dataclasses.dataclass(frozen=True)
class Story:
    """One story, validated.

    ``date`` is a :class:`datetime.date` for date-only stories, else a :class:`datetime.datetime`
    (aware when the file gave an offset, naive when it gave only a wall-clock time).
    """

    id: str
    date: dt.date | dt.datetime
    headline: str
    timezone: str | None = None
    summary: str = ""
    body: str = ""
    category: str = ""
    source: str = ""
    url: str = ""
    image: str = ""
    one_year_later: str = ""
    followup_after: dt.timedelta | None = None
    platforms: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    lang: str = ""
    """BCP 47 language of the story; empty means the bot's default (ONEYEARAGO_LANG)."""
    replies: str = ""
    """Who may reply to the story's threads (:data:`posts.replies.REPLIES`); empty: the settings decide."""
    origin: str = ""
    """Where the story was read from, as ``FILE:LINE`` (not part of its content)."""
    image_sha256: str = ""
    """The sha256 of the image as prepared at load time; the queue stores those bytes under it."""
    prepared_image: Image | None = dataclasses.field(default=None, compare=False, repr=False)
    """The prepared image itself, from the load until it is stored (not part of the content)."""
    images: tuple[StoryImage, ...] = ()
    """The pictures the root post shows (at most 4), each with its alt text."""
    followup_images: tuple[StoryImage, ...] = ()
    """The pictures the reveal shows (on its first part): "then and now" side by side."""
    prepared_pictures: tuple[Image, ...] = dataclasses.field(default=(), compare=False, repr=False)
    """Every prepared version of ``images`` and ``followup_images``, from the load until stored."""
    draft: bool = False
    """The file said ``draft: true``: a new story is queued as a draft (not part of the content, like
    ``origin``; the queue keeps the flag in ``stories.draft``)."""

    @property
    def has_time(self) -> bool:
        return isinstance(self.date, dt.datetime)

    @property
    def calendar_date(self) -> dt.date:
        return self.date.date() if isinstance(self.date, dt.datetime) else self.date

    def content(self) -> dict[str, object]:
        """The story's content as plain data (what decides whether an edit changed anything)."""
        content: dict[str, object] = {
            "id": self.id, "date": self.date.isoformat(), "headline": self.headline, "timezone": self.timezone,
            "summary": self.summary, "body": self.body, "category": self.category, "source": self.source,
            "url": self.url, "image": self.image, "one_year_later": self.one_year_later,
            "followup_after": None if self.followup_after is None else int(self.followup_after.total_seconds()),
            "platforms": list(self.platforms), "tags": list(self.tags), "lang": self.lang,
        }
        if self.replies:  # only when set: the content (and hash) of every other story stays as it was
            content["replies"] = self.replies
        if self.image_sha256:
            content["image_sha256"] = self.image_sha256
        if self.images:
            content["images"] = [image.to_dict() for image in self.images]
        if self.followup_images:
            content["followup_images"] = [image.to_dict() for image in self.followup_images]
        return content

    @classmethod
    def from_content(cls, data: dict[str, object]) -> Story:
        """Rebuild a story from :meth:`content` output."""
        raw = dict(data)
        date_text = str(raw.pop("date"))
        date: dt.date | dt.datetime = (
            dt.datetime.fromisoformat(date_text) if "T" in date_text else dt.date.fromisoformat(date_text)
        )
        delay = raw.pop("followup_after", None)
        images = tuple(StoryImage.from_dict(i) for i in raw.pop("images", None) or ())  # type: ignore[attr-defined]
        followup_images = tuple(StoryImage.from_dict(i)
                                for i in raw.pop("followup_images", None) or ())  # type: ignore[attr-defined]
        return cls(
            images=images,
            followup_images=followup_images,
            date=date,
            followup_after=None if delay is None else dt.timedelta(seconds=int(delay)),  # type: ignore[arg-type,call-overload]
            platforms=tuple(raw.pop("platforms", ()) or ()),  # type: ignore[arg-type]
            tags=tuple(raw.pop("tags", ()) or ()),  # type: ignore[arg-type]
            **raw,  # type: ignore[arg-type]
        )


_SLUG_RE = re.compile(r"[^a-z0-9]+")


def derive_id(date: dt.date | dt.datetime, headline: str) -> str:
    """A stable id from the date and headline: ``2024-01-12-anthropic-researchers-show-3f2a9c``."""
    day = date.date() if isinstance(date, dt.datetime) else date
    slug = _SLUG_RE.sub("-", headline.lower()).strip("-")[:40].rstrip("-")
    digest = hashlib.sha1(f"{day.isoformat()}|{headline.strip()}".encode()).hexdigest()[:6]
    return f"{day.isoformat()}-{slug}-{digest}" if slug else f"{day.isoformat()}-{digest}"
