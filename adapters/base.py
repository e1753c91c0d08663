"""Provide the adapter contract and the value types that cross it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from posts.media import Image


@dataclasses.dataclass(frozen=True)
class PostRef:
    """A post on a platform, with all that a later reply needs.

    ``extra`` holds what the platform needs beyond the id (Bluesky: ``uri`` and ``cid``).
    """

    platform: str
    id: str
    url: str
    extra: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "id": self.id, "url": self.url, "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PostRef:
        return cls(str(data["platform"]), str(data["id"]), str(data.get("url") or ""),
                   dict(data.get("extra") or {}))


@dataclasses.dataclass(frozen=True)
class Outgoing:
    """One post the engine asks an adapter to send.

    ``payload`` is exactly what rendering produced for the platform (the X create-tweet body,
    the Bluesky post record, the Reddit submit or comment fields). ``key`` is the delivery's
    stable idempotency key: the Bluesky record key, and the name under which the sandbox
    records the post. ``parent`` and ``root`` are set for replies.
    """

    platform: str
    story_id: str
    kind: str
    part: int
    payload: Mapping[str, Any]
    key: str
    parent: PostRef | None = None
    root: PostRef | None = None
    attachments: Mapping[str, Image] = dataclasses.field(default_factory=dict)
    """Images that go with the post (``thumb``: the link card's image for a Bluesky root), as prepared
    and stored when the story was loaded: an adapter never reads a file or URL for them."""


class ThreadState(enum.StrEnum):
    """Whether a post can still be replied to."""

    OPEN = "open"
    GONE = "gone"
    """Deleted or removed."""
    LOCKED = "locked"
    """Still there but closed to replies (locked, archived, replies restricted)."""


@runtime_checkable
class Adapter(Protocol):
    """What the engine needs from a platform.

    Every method raises only :class:`bot.errors.AdapterError` subclasses: ``RateLimited``
    (with when to try again), ``AuthFailed``, ``Rejected`` (``Duplicate`` when the platform
    says it already has this post), ``Transient`` (certainly not posted) and
    ``OutcomeUnknown`` (the request may have reached the platform).
    """

    platform: str
    """The platform's name (``x``, ``reddit``, ``bluesky``): what :class:`PostRef` and errors carry."""

    def publish(self, post: Outgoing) -> PostRef:
        """Publish a root post and return its reference."""
        ...

    def reply(self, post: Outgoing, parent: PostRef, root: PostRef) -> PostRef:
        """Publish ``post`` as a reply to ``parent`` in the thread that starts at ``root``."""
        ...

    def thread_state(self, ref: PostRef) -> ThreadState:
        """Tell whether ``ref`` still exists and accepts replies."""
        ...

    def find(self, post: Outgoing, *, since: dt.datetime | None = None) -> PostRef | None:
        """Look for ``post`` among the account's own posts since ``since`` (an aware datetime; ``None``:
        as far back as the platform lets us look).

        Returns the reference when found, ``None`` when certainly absent, and raises
        ``OutcomeUnknown`` when the platform cannot tell.
        """
        ...

    def whoami(self) -> str:
        """Check the credentials without posting and say who the bot posts as."""
        ...
