"""Provide the adapter contract and the value types that cross it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from posts.media import Image, Picture


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
    the Bluesky post record, the Reddit submit or comment fields); a gated Bluesky root also carries its
    ``app.bsky.feed.threadgate`` record under ``threadgate``, which the adapter takes out and creates with it. ``key`` is the delivery's
    stable idempotency key, as the adapter chose it (:meth:`Adapter.new_key`) and the engine
    committed it before the first attempt: the Bluesky record key, the name under which the
    sandbox records the post; ``None`` for platforms that have none (X, Reddit). ``parent`` and
    ``root`` are set for replies, and travel only here.
    """

    platform: str
    story_id: str
    kind: str
    part: int
    payload: Mapping[str, Any]
    key: str | None
    parent: PostRef | None = None
    root: PostRef | None = None
    attachments: Mapping[str, Image] = dataclasses.field(default_factory=dict)
    """Images that go with the post, by the name rendering gave them (``thumb``: the link card's image
    of a root), as prepared and stored when the story was loaded: an adapter never reads a file or URL
    for them."""
    pictures: tuple[Picture, ...] = ()
    """The pictures the post shows (at most 4), in order, each with its alt text: the version prepared
    for this platform at load time."""
    media: tuple[Uploaded, ...] = ()
    """For an adapter that :class:`UploadsMedia`: what the engine uploaded for ``pictures`` (same order),
    recorded with the delivery before this send. Empty for the others (Reddit uploads inside its submit)."""

    def thread(self) -> tuple[PostRef, PostRef]:
        """The ``(parent, root)`` a reply answers; a post without them is not a reply."""
        if self.parent is None or self.root is None:
            raise ValueError(f"{self.kind} {self.part} of {self.story_id} names no parent and root: not a reply")
        return self.parent, self.root


@dataclasses.dataclass(frozen=True)
class Uploaded:
    """A picture uploaded to a platform and not yet posted: what a post attaches, and until when.

    ``ref`` is the platform's reference as plain JSON data (X: ``{"media_id": "..."}``; Bluesky: the
    blob; Mastodon: ``{"id": "..."}``), kept with the delivery so that a resend attaches the same upload.
    ``expires_at`` (aware UTC) is when the platform drops it if no post uses it; ``None``: unknown.
    """

    sha256: str
    ref: Mapping[str, Any]
    expires_at: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "ref": dict(self.ref),
                "expires_at": None if self.expires_at is None else self.expires_at.isoformat()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Uploaded:
        expires = data.get("expires_at")
        return cls(str(data["sha256"]), dict(data.get("ref") or {}),
                   None if not expires else dt.datetime.fromisoformat(str(expires)))


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

    Every method raises only :class:`posts.errors.AdapterError` subclasses: ``RateLimited``
    (with when to try again), ``AuthFailed``, ``Rejected`` (``Duplicate`` when the platform
    says it already has this post), ``Transient`` (certainly not posted) and
    ``OutcomeUnknown`` (the request may have reached the platform).
    """

    platform: str
    """The platform's name (``x``, ``reddit``, ``bluesky``): what :class:`PostRef` and errors carry."""

    def new_key(self) -> str | None:
        """A fresh idempotency key for a post never attempted yet, or ``None`` when the platform takes none.

        The engine asks once per delivery and commits the key with the first attempt's intent, before
        any call; every attempt and lookup of the delivery then carries it (``Outgoing.key``). Bluesky
        chooses a TID, the record key under which a create can only ever land once.
        """
        ...

    def publish(self, post: Outgoing) -> PostRef:
        """Publish a root post and return its reference."""
        ...

    def reply(self, post: Outgoing) -> PostRef:
        """Publish ``post`` as a reply to ``post.parent`` in the thread that starts at ``post.root``."""
        ...

    def thread_state(self, ref: PostRef) -> ThreadState:
        """Tell whether ``ref`` still exists and accepts replies."""
        ...

    def find(self, post: Outgoing, *, since: dt.datetime | None = None) -> PostRef | None:
        """Look for ``post`` among the account's own posts since ``since`` (an aware datetime; ``None``:
        as far back as the platform lets us look).

        Returns the reference when found, ``None`` when certainly absent, and raises
        ``OutcomeUnknown`` when the platform cannot tell. The engine alone decides what a send of
        unknown outcome came to, from this answer (:mod:`bot.engine.settle`): an adapter reports an
        unclear send as ``OutcomeUnknown`` and never settles it by itself.
        """
        ...

    def whoami(self) -> str:
        """Check the credentials without posting and say who the bot posts as."""
        ...


@runtime_checkable
class UploadsMedia(Protocol):
    """An adapter whose platform takes pictures as uploads made before the post (X, Bluesky, Mastodon).

    The engine uploads a post's pictures before it sends the post, records what came back with the
    delivery, and hands it to the adapter as ``Outgoing.media``; a resend attaches the recorded uploads
    while they are valid. ``publish``/``reply`` raise :class:`posts.errors.MediaGone` when the platform
    says it no longer has one: the engine then uploads again. An upload that is never posted is harmless.
    """

    def upload(self, picture: Picture) -> Uploaded:
        """Upload one picture with its alt text (set as the platform allows) and say what to attach.

        Raises the usual :class:`posts.errors.AdapterError` subclasses; an upload whose answer was lost is
        reported as ``OutcomeUnknown`` (the engine uploads again: an orphan upload is harmless).
        """
        ...


@runtime_checkable
class AnnouncesLimits(Protocol):
    """An adapter whose platform announces the limits of the account's posts (Mastodon: its instance's)."""

    def whoami(self) -> str:
        ...

    def limits(self) -> Any:
        """The limits, as an object with ``to_dict()`` (what :mod:`bot.accounts` remembers)."""
        ...


# ---------------------------------------------------------------------------- the conversation under a thread


@dataclasses.dataclass(frozen=True)
class Reply:
    """A reply someone else made somewhere under one of the bot's threads, as the platform showed it."""

    id: str
    """The platform's id of the reply (Bluesky: its ``at://`` URI; Reddit: ``t1_…``; X, Mastodon: the id)."""
    author: str
    """The author's handle as the platform shows it (``@name.bsky.social``, ``u/name``, ``@name``, ``@a@host``)."""
    text: str
    """The reply's text, as plain text (Mastodon's HTML reduced to text), never cut by us beyond 2,000 chars."""
    at: dt.datetime
    """When it was posted (aware UTC)."""
    url: str
    """Where a person reads it on the platform."""
    parent_id: str = ""
    """The id of the post it answers (one of the bot's posts, or another reply)."""
    hidden: bool = False
    """Hidden by the bot's account (X hidden replies, Bluesky threadgate ``hiddenReplies``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "author": self.author, "text": self.text, "at": self.at.isoformat(),
                "url": self.url, "parent_id": self.parent_id, "hidden": self.hidden}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reply:
        return cls(str(data["id"]), str(data.get("author") or ""), str(data.get("text") or ""),
                   dt.datetime.fromisoformat(str(data["at"])), str(data.get("url") or ""),
                   str(data.get("parent_id") or ""), bool(data.get("hidden")))


@dataclasses.dataclass(frozen=True)
class Conversation:
    """What followers said under one thread: how many replies there are, and the latest of them."""

    total: int
    """Replies by others under the thread, at any depth, as far as the platform told (the bot's own
    follow-up parts are never counted)."""
    replies: tuple[Reply, ...]
    """The latest replies by others, newest first, at most the ``limit`` asked for."""
    requests: int = 1
    """How many HTTP requests reading it took (what the sweep counts against the platform's limits)."""
    partial: bool = False
    """The read stopped at ``max_requests`` before the platform's last page: ``total`` counts only what was read."""


@runtime_checkable
class ReadsReplies(Protocol):
    """An adapter that can read the replies under a thread it posted."""

    def conversation(self, root: PostRef, own: tuple[PostRef, ...], *, limit: int,
                     max_requests: int | None = None) -> Conversation:
        """The replies by others under the thread that starts at ``root``; ``own`` are the bot's own posts
        in it (the follow-up parts), left out of the count and the list. A platform that pages its answer
        sends at most ``max_requests`` requests (at least one read) and says the read is ``partial`` when it
        stopped early; one that answers in one read (with a first request to learn who the bot is) may
        ignore it. Raises the usual
        :class:`posts.errors.AdapterError` subclasses (``RateLimited`` with when to try again)."""
        ...


@runtime_checkable
class HidesReplies(Protocol):
    """An adapter whose platform lets the thread's author hide a reply (X hidden replies, Bluesky threadgate)."""

    def hide_reply(self, root: PostRef, reply_id: str, *, hidden: bool = True) -> None:
        """Hide (or, with ``hidden=False``, show again) the reply ``reply_id`` under the thread at ``root``."""
        ...


@runtime_checkable
class MarksAutomation(Protocol):
    """An adapter whose platform has a mark for automated accounts (Mastodon's ``bot`` flag, a Bluesky
    self-label where the lexicon defines one)."""

    def automation_mark(self) -> bool | None:
        """Whether the account is marked as automated now; ``None`` when the platform cannot tell."""
        ...

    def mark_automated(self) -> None:
        """Set the mark (idempotent: nothing changes when it is already set)."""
        ...
