"""What followers said: read the replies under the threads the bot posted, keep the latest, hide one.

The conversation sweep reads, for each thread whose root went out within ``ONEYEARAGO_CONVERSATION_DAYS``
(only roots ``posted`` with a remote id), how many replies others made under it and the latest of them
(at most ``ONEYEARAGO_CONVERSATION_KEEP``), through the platform's adapter (:class:`adapters.base.ReadsReplies`):
Bluesky ``getPostThread``, Reddit's comment tree, Mastodon's status context, X's replies by conversation id.
It keeps them in ``conversations`` (one row per story and platform), for ``oneyearago replies``, the story
page and the dashboard's Conversation page.

Reads must never take what the posts need, so each pass is bounded:

- each platform gets a request budget per pass (:data:`REQUEST_BUDGET`), counted from what each read
  says it cost (``Conversation.requests``); a thread whose last read cost more than what is left waits;
- a pass runs every ``ONEYEARAGO_CONVERSATION_EVERY`` (at least 5 minutes), and a thread is read at most
  once per interval (``next_sweep_at``), the threads read longest ago first;
- a ``RateLimited`` read stops the platform's reads until the time the platform gave (kept in the
  thread's ``retry_at``, so it holds across passes and restarts); a platform that is paused or told to
  wait for its posts (``platforms``) is not read at all, nor one whose credentials a read refused, for
  the rest of the pass;
- X bills every read: its threads are read only with ``ONEYEARAGO_CONVERSATION_X=true``, and only for
  :data:`READ_WINDOW` after their root (X's recent search sees no further back: a later read would find
  the older replies gone and lower the count);
- with several workers on one queue, one of them reads (the live worker of the smallest id), so the
  budgets hold for the queue, not per worker, and no thread is read twice at once.

Errors kept with a thread are masked like every error the bot stores. X's search does not say which
replies are hidden, so a reply hidden from the dashboard stays marked hidden when it is read again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.base import HidesReplies, PostRef, ReadsReplies, Reply
from bot.config import Settings
from bot.engine.queries import platform_blocks
from bot.models import ConversationRow, DeliveryRow, ReadCountRow, StoryRow, WorkerRow
from bot.models import DeliveryStatus as S
from bot.store import Store
from posts.clock import utcnow
from posts.errors import AdapterError, AuthFailed, BotError, NotFound, RateLimited
from posts.story import PLATFORM_NAMES

log = logging.getLogger(__name__)

REQUEST_BUDGET: Mapping[str, int] = {
    # X: reads are billed per post read under pay-per-use and capped (3 M post reads a month), and the
    # read limits are apart from the write limits the posts use (../shared/reference/platforms.md §1.6):
    # a small budget keeps the bill small.
    "x": 10,
    # Reddit: 100 queries a minute per OAuth client id, averaged over 10 minutes (platforms.md §3.4);
    # 30 a pass, a pass at most every 5 minutes, is at most 6 a minute: the posts keep the rest.
    "reddit": 30,
    # Bluesky: 3,000 requests per 5 minutes per IP, writes counted apart in points (platforms.md §2.4).
    "bluesky": 60,
    # Mastodon: 300 requests per 5 minutes per account for every endpoint, posts and their look-ups
    # included (mastodon.md §2.3); 30 a pass is a tenth of one window.
    "mastodon": 30,
}
"""Requests a pass of the sweep may make per platform, whatever the number of threads."""

MONTHLY_READ_REQUESTS: Mapping[str, int] = {
    # X caps what an app reads under pay-per-use at 3 M posts a month (over it: 429 "usage-capped"), and a
    # search page holds up to 100 posts: 30,000 requests a month stay under the cap even at full pages,
    # whatever ONEYEARAGO_CONVERSATION_EVERY is (at 5 minutes the per-pass budget alone would allow 86,400).
    "x": 30_000,
}
"""Requests the sweep may send a platform in a calendar month (UTC), counted in ``read_counts``."""

READ_WINDOW: Mapping[str, dt.timedelta] = {"x": dt.timedelta(days=7)}
"""How long after its root a platform's thread can be read, when less than ``ONEYEARAGO_CONVERSATION_DAYS``."""

HIDDEN_UNREPORTED = frozenset({"x"})
"""The platforms whose reads do not say which replies are hidden: what the dashboard hid stays marked."""

HIDES = frozenset({"x", "bluesky"})
"""The platforms that let a thread's author hide a reply (X hidden replies, Bluesky threadgate
``hiddenReplies``); on the others the dashboard links to the reply instead."""


def enabled(settings: Settings) -> bool:
    """Whether ``run`` sweeps conversations (``ONEYEARAGO_CONVERSATION_EVERY`` not ``off``)."""
    return settings.conversation_every is not None


def platforms_read(settings: Settings, platforms: Iterable[str]) -> list[str]:
    """The platforms whose conversations are read: X only when ``ONEYEARAGO_CONVERSATION_X`` says so."""
    return [p for p in platforms if p != "x" or settings.conversation_x]


# ---------------------------------------------------------------------------- what is kept


@dataclasses.dataclass(frozen=True)
class ThreadConversation:
    """One thread's conversation as kept: what ``replies``, the story page and the Conversation page show."""

    story_id: str
    platform: str
    headline: str
    root_id: str
    root_url: str
    total: int
    replies: tuple[Reply, ...]
    swept_at: dt.datetime | None
    next_sweep_at: dt.datetime | None
    retry_at: dt.datetime | None
    last_error: str | None
    seen_total: int
    seen_at: dt.datetime | None

    @property
    def name(self) -> str:
        return PLATFORM_NAMES.get(self.platform, self.platform)

    @property
    def new(self) -> int:
        """Replies since the operator last looked (the count can fall: a reply deleted)."""
        return max(0, self.total - self.seen_total)

    @property
    def can_hide(self) -> bool:
        return self.platform in HIDES

    def is_new(self, reply: Reply) -> bool:
        """Whether ``reply`` came after the operator last marked the thread seen."""
        return self.new > 0 and (self.seen_at is None or reply.at > self.seen_at)

    def to_dict(self) -> dict[str, Any]:
        return {"story_id": self.story_id, "platform": self.platform, "headline": self.headline,
                "root_id": self.root_id, "root_url": self.root_url, "total": self.total, "new": self.new,
                "replies": [r.to_dict() for r in self.replies],
                "swept_at": _iso(self.swept_at), "next_sweep_at": _iso(self.next_sweep_at),
                "retry_at": _iso(self.retry_at), "last_error": self.last_error,
                "seen_total": self.seen_total, "seen_at": _iso(self.seen_at)}


def _iso(when: dt.datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _replies(data: Any) -> tuple[Reply, ...]:
    found = []
    for item in data or ():
        try:
            found.append(Reply.from_dict(item))
        except (KeyError, TypeError, ValueError):
            continue  # a reply kept by another version that this one cannot read: left out, never fatal
    return tuple(found)


def threads(store: Store, story_id: str | None = None, *, only_new: bool = False,
            limit: int | None = None) -> list[ThreadConversation]:
    """The kept conversations (of one story when given), the most recently active first (by their newest
    reply; those without one last); ``only_new``: only those with replies the operator has not seen; at
    most ``limit`` of them (chosen by the database: only those are read).

    Raises:
        NotFound: ``story_id`` names no story.
    """
    conv = ConversationRow
    query = (select(conv, StoryRow.content, DeliveryRow.remote_url)
             .join(StoryRow, StoryRow.id == conv.story_id)
             .outerjoin(DeliveryRow, (DeliveryRow.story_id == conv.story_id)
                        & (DeliveryRow.platform == conv.platform) & (DeliveryRow.kind == "root")
                        & (DeliveryRow.part == 1))
             .where(*_thread_filter(story_id, only_new))
             .order_by(case((conv.last_reply_at.is_(None), 1), else_=0), conv.last_reply_at.desc(),
                       conv.story_id, conv.platform)
             .limit(limit))
    found = []
    with store.session() as session:
        if story_id is not None and session.get(StoryRow, story_id) is None:
            raise NotFound(f"no story {story_id!r} (see `oneyearago agenda` for ids)")
        for row, content, url in session.execute(query):
            found.append(ThreadConversation(
                row.story_id, row.platform, str((content or {}).get("headline") or ""), row.root_id, url or "",
                row.total, _replies(row.replies), row.swept_at, row.next_sweep_at, row.retry_at, row.last_error,
                row.seen_total, row.seen_at))
    return found


def count_threads(store: Store, *, only_new: bool = False) -> int:
    """How many conversations :func:`threads` lists without a limit."""
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(ConversationRow)
                                  .where(*_thread_filter(None, only_new))) or 0)


def _thread_filter(story_id: str | None, only_new: bool) -> list[Any]:
    where: list[Any] = []
    if story_id is not None:
        where.append(ConversationRow.story_id == story_id)
    if only_new:
        where.append(ConversationRow.total > ConversationRow.seen_total)
    return where


def mark_seen(store: Store, seen: Iterable[tuple[str, str, int]], now: dt.datetime) -> int:
    """Mark threads seen up to the count the operator was shown: ``(story_id, platform, total)`` each, so
    that replies read after the page was drawn stay new. Returns how many threads changed."""
    changed = 0
    with store.session() as session:
        for story_id, platform, total in seen:
            row = session.get(ConversationRow, (story_id, platform))
            if row is None or total <= row.seen_total and row.seen_at is not None:
                continue
            row.seen_total = max(row.seen_total, min(total, row.total))
            row.seen_at = now
            changed += 1
    return changed


# ---------------------------------------------------------------------------- the sweep


@dataclasses.dataclass
class PlatformPass:
    """What one pass did on one platform."""

    platform: str
    budget: int
    requests: int = 0
    threads: int = 0
    errors: int = 0
    stopped: str = ""
    """Why the pass stopped before the threads due were all read (rate limited, credentials, budget)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ConversationSweep:
    """Reads the conversations under recent threads, within each platform's budget; see the module's text.

    ``adapters``: the platforms' adapters (only those that :class:`~adapters.base.ReadsReplies` are read);
    ``budget``: requests per pass per platform (default :data:`REQUEST_BUDGET`).
    """

    def __init__(self, store: Store, settings: Settings, adapters: Mapping[str, Any], *,
                 clock: Callable[[], dt.datetime] = utcnow, budget: Mapping[str, int] | None = None,
                 worker: str | None = None):
        self.store = store
        self.settings = settings
        self.adapters = dict(adapters)
        self.clock = clock
        self.budget = dict(REQUEST_BUDGET if budget is None else budget)
        self.worker = worker
        """This process's worker id (``run``): it reads only while it is the live worker of the smallest id."""
        self.mask = settings.masker()

    @property
    def enabled(self) -> bool:
        return enabled(self.settings)

    @property
    def every(self) -> dt.timedelta:
        return self.settings.conversation_every or dt.timedelta(minutes=30)

    def tick(self, now: dt.datetime | None = None) -> list[PlatformPass]:
        """One pass when the sweep is on (what ``run`` does every ``ONEYEARAGO_CONVERSATION_EVERY``, through
        :func:`bot.runner.side_job`, which logs an error and never raises it)."""
        return self.sweep(now) if self.enabled else []

    def leads(self, now: dt.datetime, platforms: Iterable[str]) -> set[str]:
        """Those of ``platforms`` whose threads this process reads: all without a worker id (a single
        process); else each that no live worker serves or whose live worker of the smallest id among
        those serving it is this one (a heartbeat keeps a worker live; ``workers.platforms`` says what
        each serves)."""
        if self.worker is None:
            return set(platforms)
        with self.store.session() as session:
            live = list(session.execute(select(WorkerRow.id, WorkerRow.platforms).where(
                WorkerRow.heartbeat_at > now - self.settings.lease).order_by(WorkerRow.id)))
        led = set()
        for platform in platforms:
            serving = [wid for wid, served in live if platform in (served or "").split(",")]
            if not serving or serving[0] == self.worker:
                led.add(platform)
        return led

    def sweep(self, now: dt.datetime | None = None) -> list[PlatformPass]:
        """One pass over every platform read (:func:`platforms_read`), one after the other, each by one
        worker only (:meth:`leads`): a platform another worker reads is left to it."""
        now = now or self.clock()
        read = [platform for platform in platforms_read(self.settings, self.adapters)
                if isinstance(self.adapters[platform], ReadsReplies)]
        led = self.leads(now, read)
        if len(led) < len(read):
            log.debug("the conversation sweep of %s is left to another worker",
                      ", ".join(sorted(set(read) - led)))
        with self.store.session() as session:
            blocked = platform_blocks(session, now)
        passes = []
        for platform in read:
            if platform not in led:
                continue
            adapter = self.adapters[platform]
            assert isinstance(adapter, ReadsReplies)
            done = PlatformPass(platform, self.budget.get(platform, 0))
            if platform in blocked:
                done.stopped = blocked[platform]
            else:
                try:
                    self._sweep_platform(adapter, done, now)
                finally:
                    self._count(done, now)
            passes.append(done)
        return passes

    def retry_at(self, session: Session, platform: str) -> dt.datetime | None:
        """Until when the platform asked the sweep to wait (its latest rate limit), if it did."""
        return session.scalar(select(func.max(ConversationRow.retry_at)).where(ConversationRow.platform == platform))

    @staticmethod
    def read_this_month(session: Session, platform: str, now: dt.datetime) -> int:
        """The requests the sweep sent ``platform`` in ``now``'s calendar month (UTC)."""
        return int(session.scalar(select(ReadCountRow.requests).where(
            ReadCountRow.platform == platform, ReadCountRow.month == f"{now.astimezone(dt.UTC):%Y-%m}")) or 0)

    def _count(self, done: PlatformPass, now: dt.datetime) -> None:
        """Add the pass's requests to the month's count (one reader per platform writes it)."""
        if not done.requests:
            return
        month = f"{now.astimezone(dt.UTC):%Y-%m}"
        for _attempt in range(2):  # the month's first count, made by two readers at once: one insert loses
            try:
                with self.store.session() as session:
                    row = session.get(ReadCountRow, (done.platform, month), with_for_update=True)
                    if row is None:
                        session.add(ReadCountRow(platform=done.platform, month=month, requests=done.requests))
                    else:
                        row.requests += done.requests
                return
            except IntegrityError:
                continue

    def last_pass(self, session: Session, platform: str) -> dt.datetime | None:
        """When the platform's last pass read a thread (aware UTC): a pass runs at most once an interval
        whoever starts it, so `run --once` from a timer every minute spends the budget once an interval,
        not once a minute."""
        last = session.scalar(select(func.max(ConversationRow.swept_at)).where(ConversationRow.platform == platform))
        return last.replace(tzinfo=dt.UTC) if last is not None and last.tzinfo is None else last

    def due(self, session: Session, platform: str, now: dt.datetime, limit: int) -> list[tuple[DeliveryRow, int]]:
        """The roots whose thread is to be read now, with what their last read cost: posted within
        ``conversation_days`` (or the platform's :data:`READ_WINDOW`), not read within the interval, never
        read first, then read longest ago."""
        since = now - min(dt.timedelta(days=self.settings.conversation_days),
                          READ_WINDOW.get(platform, dt.timedelta.max))
        conv = ConversationRow
        query = (select(DeliveryRow, conv.requests)
                 .outerjoin(conv, (conv.story_id == DeliveryRow.story_id) & (conv.platform == DeliveryRow.platform))
                 .where(DeliveryRow.platform == platform, DeliveryRow.kind == "root", DeliveryRow.part == 1,
                        DeliveryRow.status == S.POSTED, DeliveryRow.remote_id.is_not(None),
                        DeliveryRow.posted_at >= since)
                 .where((conv.next_sweep_at.is_(None)) | (conv.next_sweep_at <= now)
                        | (conv.root_id != DeliveryRow.remote_id))
                 .order_by(case((conv.swept_at.is_(None), 0), else_=1), conv.swept_at, DeliveryRow.posted_at,
                           DeliveryRow.id)
                 .limit(limit))
        return [(row, cost or 0) for row, cost in session.execute(query)]

    def _sweep_platform(self, adapter: Any, done: PlatformPass, now: dt.datetime) -> None:
        with self.store.session() as session:
            wait = self.retry_at(session, done.platform)
            if wait is not None and wait > now:
                done.stopped = f"rate limited until {wait:%Y-%m-%d %H:%M:%S} UTC"
                return
            cap = MONTHLY_READ_REQUESTS.get(done.platform)
            if cap is not None:
                used = self.read_this_month(session, done.platform, now)
                if used >= cap:
                    done.stopped = (f"the monthly read cap of {cap:,} requests is reached ({used:,} sent in "
                                    f"{now:%Y-%m}); reading again next month")
                    return
                done.budget = min(done.budget, cap - used)
            last = self.last_pass(session, done.platform)
            if last is not None and now - last < self.every * 0.9:  # a tenth less: the scheduler's jitter
                done.stopped = f"the last pass was at {last:%Y-%m-%d %H:%M:%S} UTC; one an interval"
                return
            roots = self.due(session, done.platform, now, max(done.budget, 0) + 1)  # one more: to tell it waits
            work = [(row.story_id, _ref(row), _own(session, row), cost) for row, cost in roots]
        dearest = 1
        for story_id, root, own, cost in work:
            # A thread is read when what it is expected to cost still fits: what its last read cost, or the
            # dearest read of this pass when more. The first of a pass always is (a thread dearer than the
            # whole budget would never be read otherwise).
            expected = max(dearest, cost)
            if done.requests >= done.budget or (done.requests and done.requests + expected > done.budget):
                done.stopped = f"request budget of {done.budget} spent"
                break
            try:
                read = adapter.conversation(root, own, limit=self.settings.conversation_keep,
                                            max_requests=max(1, done.budget - done.requests))
            except RateLimited as exc:
                done.requests += max(1, exc.requests)
                done.errors += 1
                done.stopped = f"rate limited until {exc.retry_at:%Y-%m-%d %H:%M:%S} UTC"
                self._keep_error(story_id, root, now, str(exc), exc.requests, retry_at=exc.retry_at)
                log.warning("reading the replies on %s was rate limited until %s; no more reads there before then",
                            done.platform, exc.retry_at.isoformat())
                return
            except AuthFailed as exc:
                done.requests += max(1, exc.requests)
                done.errors += 1
                done.stopped = f"credentials refused: {exc.reason}"
                self._keep_error(story_id, root, now, str(exc), exc.requests)
                log.warning("reading the replies on %s: %s", done.platform, exc)
                return
            except AdapterError as exc:  # what it sent before it failed counts: a later page may have failed
                done.requests += max(1, exc.requests)
                dearest = max(dearest, exc.requests)
                done.errors += 1
                self._keep_error(story_id, root, now, str(exc), exc.requests)
                log.info("reading the replies under %s on %s: %s", story_id, done.platform, exc)
                continue
            done.requests += max(1, read.requests)
            dearest = max(dearest, read.requests)
            done.threads += 1
            self._keep(story_id, root, now, read.total, read.replies[: self.settings.conversation_keep],
                       max(1, read.requests), partial=read.partial)

    def _row(self, session: Session, story_id: str, root: PostRef) -> ConversationRow:
        # locked until the read is kept, so that a hide written meanwhile is neither lost nor overwritten
        row = session.get(ConversationRow, (story_id, root.platform), with_for_update=True)
        if row is None:
            row = ConversationRow(story_id=story_id, platform=root.platform, root_id=root.id, total=0, replies=[],
                                  requests=0, seen_total=0)
            session.add(row)
        elif row.root_id != root.id:  # the root was posted again: a new thread, a new conversation
            row.root_id, row.total, row.replies, row.seen_total, row.seen_at = root.id, 0, [], 0, None
            row.last_reply_at = None
        return row

    def _keep(self, story_id: str, root: PostRef, now: dt.datetime, total: int, replies: Iterable[Reply],
              requests: int, *, partial: bool = False) -> None:
        """Store a read; a ``partial`` one (stopped at the pass's budget) never lowers the count read before."""
        with self.store.session() as session:
            row = self._row(session, story_id, root)
            row.total = max(total, row.total or 0) if partial else max(total, 0)
            if root.platform in HIDDEN_UNREPORTED:  # the read cannot say: what was hidden here stays so
                hidden = {r.id for r in _replies(row.replies) if r.hidden}
                replies = [dataclasses.replace(r, hidden=True) if r.id in hidden else r for r in replies]
            replies = list(replies)
            row.replies = [r.to_dict() for r in replies]
            row.last_reply_at = max((r.at for r in replies), default=None)
            row.requests = requests
            row.swept_at, row.next_sweep_at, row.retry_at, row.last_error = now, now + self.every, None, None

    def _keep_error(self, story_id: str, root: PostRef, now: dt.datetime, error: str, requests: int, *,
                    retry_at: dt.datetime | None = None) -> None:
        """Keep a read that failed, and what it cost (what its next read is expected to cost)."""
        with self.store.session() as session:
            row = self._row(session, story_id, root)
            row.requests = max(1, requests, row.requests or 0)
            row.last_error = self.mask(error)[:1000]
            row.swept_at = now
            row.next_sweep_at = max(now + self.every, retry_at) if retry_at is not None else now + self.every
            row.retry_at = retry_at


def _ref(row: DeliveryRow) -> PostRef:
    return PostRef(row.platform, row.remote_id or "", row.remote_url or "", dict(row.remote_extra or {}))


def _own(session: Session, root: DeliveryRow) -> tuple[PostRef, ...]:
    """The bot's own posts in the thread after the root (the follow-up parts), left out of the count."""
    rows = session.scalars(select(DeliveryRow).where(
        DeliveryRow.story_id == root.story_id, DeliveryRow.platform == root.platform, DeliveryRow.id != root.id,
        DeliveryRow.remote_id.is_not(None)).order_by(DeliveryRow.kind, DeliveryRow.part))
    return tuple(_ref(row) for row in rows)


# ---------------------------------------------------------------------------- hiding a reply


def hide(store: Store, adapter: Any, story_id: str, platform: str, reply_id: str, *, hidden: bool = True) -> Reply:
    """Hide (or show again) a reply kept under the story's thread on ``platform``, on the platform, then in
    what is kept. Only a reply the sweep read can be hidden.

    Raises:
        NotFound: no such story, thread or reply kept.
        BotError: the platform does not let the thread's author hide replies.
        AdapterError: the platform refused or failed (nothing kept changes).
    """
    with store.session() as session:
        if session.get(StoryRow, story_id) is None:
            raise NotFound(f"no story {story_id!r} (see `oneyearago agenda` for ids)")
        row = session.get(ConversationRow, (story_id, platform))
        if row is None:
            raise NotFound(f"no conversation of {story_id!r} on {platform} is kept (it is read once the story's "
                           "root is posted)")
        kept = _replies(row.replies)
        root_row = session.scalar(select(DeliveryRow).where(
            DeliveryRow.story_id == story_id, DeliveryRow.platform == platform, DeliveryRow.kind == "root",
            DeliveryRow.part == 1))
    reply = next((r for r in kept if r.id == reply_id), None)
    if reply is None:
        raise NotFound(f"no reply {reply_id[:200]!r} is kept under {story_id!r} on {platform}")
    name = PLATFORM_NAMES.get(platform, platform)
    if platform not in HIDES:
        raise BotError(f"{name} does not let the author of a thread hide a reply: open it there ({reply.url})")
    if not isinstance(adapter, HidesReplies):
        raise BotError(f"this version's {name} adapter cannot hide a reply yet: hide it on {name} ({reply.url})")
    if root_row is None or root_row.remote_id is None:
        raise NotFound(f"the root of {story_id!r} on {name} is not posted")
    adapter.hide_reply(_ref(root_row), reply_id, hidden=hidden)
    changed = dataclasses.replace(reply, hidden=hidden)
    with store.session() as session:  # locked: a read kept meanwhile (``_keep``) neither loses this nor is lost
        row = session.get(ConversationRow, (story_id, platform), with_for_update=True)
        if row is not None:
            row.replies = [changed.to_dict() if r.id == reply_id else r.to_dict() for r in _replies(row.replies)]
    return changed
