"""Provide the database schema: stories, deliveries, attempts and per-platform state."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UTC = dt.UTC


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every backend: stored as naive UTC, returned aware.

    Naive datetimes are refused at the boundary so that local times never slip in.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware (UTC) datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DeliveryStatus(enum.StrEnum):
    """Where a delivery stands: the one vocabulary of statuses, stored as its value.

    What a status means to each part of the bot (sent, retryable, counted against a quota, needing
    the operator's attention, how it is shown) is said here once, by the properties below and the
    sets after the class (for queries).
    """

    PENDING = "pending"
    """Waiting for its due time (and, for a reply, for its parent)."""
    SENDING = "sending"
    """Claimed: its intent is committed and the platform may have been called."""
    POSTED = "posted"
    FAILED = "failed"
    """Gave up: rejected, or out of attempts; ``retry`` puts it back."""
    SKIPPED = "skipped"
    """Not to be posted (operator's ``skip``, or the thread it replies to is gone)."""
    MISSED = "missed"
    """A root that would have gone out too late; ``retry`` posts it on purpose."""
    UNCONFIRMED = "unconfirmed"
    """May or may not be on the platform; never re-posted without the operator's ``retry``."""

    @property
    def sent(self) -> bool:
        """May be on the platform: the planner never changes, moves or removes it (:data:`SENT`)."""
        return self in SENT

    @property
    def retryable(self) -> bool:
        """The operator's ``retry`` puts it back in the queue (:data:`RETRYABLE`)."""
        return self in RETRYABLE

    @property
    def skippable(self) -> bool:
        """Not sent and not to be: the operator's ``skip`` may take it out (:data:`SKIPPABLE`)."""
        return self in SKIPPABLE

    @property
    def needs_attention(self) -> bool:
        """Stopped where only the operator can move it on (:data:`NEEDS_ATTENTION`)."""
        return self in NEEDS_ATTENTION

    @property
    def posts(self) -> bool:
        """Posts (or has posted, or may have): counted against a platform's quotas (:data:`POSTING`)."""
        return self in POSTING

    @property
    def rank(self) -> int:
        """Which status a group of posts shows: the lowest rank, the one that most needs attention."""
        return _RANK.index(self)

    @property
    def tone(self) -> str:
        """How the status is shown (the dashboard's ``st-*`` class, the CLI's colour): ``ok``,
        ``pending``, ``sending``, ``bad``, ``warn`` or ``muted``."""
        return _TONE[self]



_S = DeliveryStatus
SENT = frozenset({_S.SENDING, _S.POSTED, _S.UNCONFIRMED})
"""May already be on the platform: an edit of the story can no longer change them."""
RETRYABLE = frozenset({_S.FAILED, _S.MISSED, _S.UNCONFIRMED, _S.SKIPPED})
"""The operator's ``retry`` puts them back (re-rendered, as new attempts)."""
SKIPPABLE = frozenset({_S.PENDING, _S.FAILED, _S.MISSED})
"""Not sent: the operator's ``skip`` may take them out."""
NEEDS_ATTENTION = frozenset({_S.FAILED, _S.MISSED, _S.UNCONFIRMED})
"""Stopped until the operator acts: shown as problems."""
POSTING = frozenset(_S) - {_S.SKIPPED, _S.FAILED, _S.MISSED}
"""Post, have posted or may have: what counts against a platform's quotas."""
_RANK = (_S.FAILED, _S.UNCONFIRMED, _S.MISSED, _S.SENDING, _S.PENDING, _S.SKIPPED, _S.POSTED)
_TONE = {_S.POSTED: "ok", _S.PENDING: "pending", _S.SENDING: "sending", _S.FAILED: "bad", _S.UNCONFIRMED: "bad",
         _S.MISSED: "warn", _S.SKIPPED: "muted"}


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime, dict[str, Any]: JSON}


class StoryRow(Base):
    __tablename__ = "stories"
    __table_args__ = (Index("ix_stories_rendered_due", "rendered", "root_due"),)

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)
    """Load order: the order in which the story was first loaded (spreads date-only days)."""
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(Text, default="")
    window_day: Mapped[str | None] = mapped_column(String(10), index=True, nullable=True)
    """For date-only stories: the local anniversary day (YYYY-MM-DD) whose window it shares."""
    root_due: Mapped[dt.datetime]
    rendered: Mapped[bool] = mapped_column(default=True)
    """Whether the story's deliveries exist yet: big loads render each story a day before it is due."""
    draft: Mapped[bool] = mapped_column(default=False, server_default=false())
    """A draft (captured, or loaded with ``ONEYEARAGO_REQUIRE_APPROVAL``) has no deliveries and is never
    posted until ``approve`` (migration 0011)."""
    edited_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    """When the story was last changed in the dashboard since it was last loaded from a file: a load of a
    different version refuses to overwrite that edit without ``--force``."""
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class StoryChangeRow(Base):
    """One change of a story: when, where it came from, and what changed (migration 0011)."""

    __tablename__ = "story_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    story_id: Mapped[str] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime]
    source: Mapped[str] = mapped_column(String(16))
    """Where the change came from: ``file``, ``capture``, ``dashboard`` or ``approve``."""
    origin: Mapped[str] = mapped_column(Text)
    """``FILE:LINE``, the feed and entry, or the dashboard."""
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """Field -> ``[old, new]``; ``None`` when the story was created."""


class DiscardedStoryRow(Base):
    """A draft deleted with ``oneyearago discard`` (migration 0013): ``capture`` skips its feed entry (by
    the entry id's digest that ends the story id, or by the url) so it is never captured again. The
    story's history goes with the story; this row is the record of the discard."""

    __tablename__ = "discarded_stories"
    __table_args__ = (Index("ix_discarded_stories_url", "url"),)

    story_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    """The story's url (a captured entry's link); empty when it had none."""
    discarded_at: Mapped[dt.datetime]
    origin: Mapped[str] = mapped_column(Text)
    """Where it was discarded from: ``cli``."""
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The story as it was when discarded (:meth:`posts.story.Story.content`)."""


class LinkCheckRow(Base):
    """Whether a story's link still answered when last checked, and the archived copy offered instead."""

    __tablename__ = "link_checks"

    story_id: Mapped[str] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    checked_at: Mapped[dt.datetime]
    ok: Mapped[bool]
    detail: Mapped[str] = mapped_column(Text)
    """What the link answered (``HTTP 404``, ``timed out after 10 s``, ``HTTP 200``)."""
    archive_url: Mapped[str | None] = mapped_column(Text, nullable=True)


class DeliveryRow(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("story_id", "platform", "kind", "part", name="uq_delivery_slot"),
        Index("ix_deliveries_status_due", "status", "due_at"),
        Index("ix_deliveries_platform_posted", "platform", "posted_at"),
        # each sweep's per-platform questions (due, in flight, held back) read a narrow range of these
        Index("ix_deliveries_platform_status_due", "platform", "status", "due_at"),
        Index("ix_deliveries_platform_status_held", "platform", "status", "not_before"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    story_id: Mapped[str] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    part: Mapped[int] = mapped_column(Integer)
    parts: Mapped[int] = mapped_column(Integer, default=1)
    due_at: Mapped[dt.datetime]
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e],
             validate_strings=True),
        default=DeliveryStatus.PENDING)
    """Stored as its value in a plain ``VARCHAR(16)`` (no database enum type, no check constraint)."""
    key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    """Idempotency key, as the platform's adapter chose it (the Bluesky record key; none for X and
    Reddit): committed with the first attempt's intent, before any call, then never changed."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attachments: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    """The images the post carries, as rendering declared them: name (``thumb``) to the sha256 of the
    bytes stored in ``images`` (migration 0006); ``None`` or empty when it carries none."""
    pictures: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, nullable=True)
    """The pictures the post shows, in order: ``{"sha256", "alt"}`` each, the bytes stored in ``images``
    (migration 0008); ``None`` when it shows none."""
    media: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    """What was uploaded for ``pictures`` before the send (``adapters.base.Uploaded.to_dict`` each, same
    order), committed before the post is sent so that a resend attaches the same uploads; ``None``: none yet."""
    text: Mapped[str] = mapped_column(Text)
    length: Mapped[int] = mapped_column(Integer)
    limit: Mapped[int] = mapped_column("length_limit", Integer)
    unit: Mapped[str] = mapped_column(String(24))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    not_before: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    """The lease of the worker sending the delivery (``claimed_by``); renewed by its heartbeat."""
    look_again_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    """For a ``sending`` delivery whose outcome is not known yet: when to look it up again."""
    remote_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    remote_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    remote_extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    posted_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]

    @property
    def label(self) -> str:
        part = f" {self.part}/{self.parts}" if self.parts > 1 else ""
        return f"#{self.id} {self.story_id} {self.platform} {self.kind}{part}"


class AttemptRow(Base):
    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    worker: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    outcome: Mapped[str] = mapped_column(String(24), default="sending")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class WorkerRow(Base):
    """A running ``oneyearago run`` process: what it serves and when it was last heard from."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    platforms: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[dt.datetime]
    heartbeat_at: Mapped[dt.datetime]


class ImageRow(Base):
    """An image as prepared at load time, stored by the sha256 of its bytes (a story's ``image_sha256``).

    Posting reads the bytes from here, never from the file or URL the story named.
    """

    __tablename__ = "images"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    mime: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime]


class PlatformRow(Base):
    """Per-platform state shared by every worker: paused, or told to wait; the account and its limits."""

    __tablename__ = "platforms"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    paused_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    retry_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[dt.datetime]
    account: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Who the bot posts as there, as the platform last said (``whoami``)."""
    limits: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The limits the platform last announced for the account (Mastodon: the instance's), as rendering
    uses them; ``None``: never read, rendering uses the platform's defaults."""
    limits_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    swept_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    """When a sweep of the platform last finished (migration 0010): monitoring's sign that the run loop
    is alive even when nothing is due."""


class ReadCountRow(Base):
    """The requests the conversation sweep sent to a platform in a month (UTC; migration 0014): what a
    monthly read cap (:data:`bot.conversation.MONTHLY_READ_REQUESTS`) is checked against."""

    __tablename__ = "read_counts"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    """``YYYY-MM``, in UTC."""
    requests: Mapped[int] = mapped_column(Integer, default=0)


class NoticeRow(Base):
    """Something the operator was told (``bot.notify``), so that it is told once, not once per sweep."""

    __tablename__ = "notices"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    """What was told, e.g. ``delivery:42:failed``, ``paused:x:<since>``, ``digest:2026-12-04``."""
    told_at: Mapped[dt.datetime]


class ConversationRow(Base):
    """What followers said under one of the bot's threads: the thread a story's root started on one
    platform (migration 0012), as the conversation sweep (:mod:`bot.conversation`) last read it."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_platform_swept", "platform", "swept_at"),
                      Index("ix_conversations_last_reply", "last_reply_at"))

    story_id: Mapped[str] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    root_id: Mapped[str] = mapped_column(String(200))
    """The remote id of the root the thread starts at (a re-posted root starts a new conversation)."""
    total: Mapped[int] = mapped_column(Integer, default=0)
    """Replies by others under the thread, as the platform last told."""
    replies: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """The latest replies, newest first (``adapters.base.Reply.to_dict`` each), at most
    ``ONEYEARAGO_CONVERSATION_KEEP``."""
    requests: Mapped[int] = mapped_column(Integer, default=0)
    """How many requests the last read took: what the next one is expected to cost against the budget."""
    swept_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    next_sweep_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    retry_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    """Set when reading it was rate limited: no read of the platform's threads before then."""
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    seen_total: Mapped[int] = mapped_column(Integer, default=0)
    """The ``total`` the operator last saw: more than this are new replies."""
    seen_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    last_reply_at: Mapped[dt.datetime | None] = mapped_column(nullable=True)
    """When the newest kept reply was posted (None: none kept): the Conversation page's order (migration 0014)."""
