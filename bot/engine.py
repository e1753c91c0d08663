"""The delivery engine: decides what is due, commits the intent, calls the platform, records it.

All logic lives in :meth:`Engine.run_once`, which takes the current time and sweeps everything
that is due; the run loop (:mod:`bot.runner`) only decides when to call it. Each platform is
worked in its own thread so that a slow or failing platform never delays another.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from sqlalchemy import and_, case, delete, exists, func, or_, select, true, update
from sqlalchemy.orm import Session, aliased

from adapters.base import Adapter, Outgoing, PostRef, ThreadState
from bot.config import Settings
from bot.errors import (
    AdapterError,
    AuthFailed,
    Duplicate,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    StoreError,
    Transient,
)
from bot.images import story_image
from bot.models import AttemptRow, DeliveryRow, PlatformRow, StoryRow, WorkerRow
from bot.models import Status as S
from bot.queue import RENDER_AHEAD, Planner
from bot.store import Store, utcnow
from bot.tid import next_tid
from posts.render import iso_utc, render
from posts.story import Story

log = logging.getLogger(__name__)

LOOKUPS = 5
"""How many times a post of unknown outcome is looked up (with backoff) before it is left unconfirmed."""
BACKLOG_LATE = dt.timedelta(minutes=1)
"""A post this late counts as part of a backlog, which drains at ``ONEYEARAGO_BACKLOG_PACE``."""
HOUSEKEEPING = dt.timedelta(seconds=30)
"""In the run loop, how often a sweep also reconciles lapsed claims, marks missed roots and renders ahead."""
"""How long a claim holds before another worker may reconcile the delivery."""
LOST = "lost"
"""What a claim returns when another process took (or changed) the row between reading and taking it."""


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclasses.dataclass
class Event:
    """Something the engine did, for the console and ``--json`` output."""

    action: str
    """posted, would-post, failed, retry-later, rate-limited, paused, missed, skipped, unconfirmed, reconciled"""
    delivery_id: int
    story_id: str
    platform: str
    kind: str
    part: int
    parts: int
    detail: str = ""
    at: dt.datetime | None = None
    text: str = ""
    remote_id: str | None = None
    reply_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["at"] = self.at.isoformat() if self.at else None
        return data


@dataclasses.dataclass
class RunReport:
    events: list[Event] = dataclasses.field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for e in self.events if e.action == action)

    def to_dict(self) -> dict[str, Any]:
        return {"events": [e.to_dict() for e in self.events],
                "counts": {a: self.count(a) for a in sorted({e.action for e in self.events})}}


class Hold(NamedTuple):
    """Why a delivery must wait, and until when."""

    until: dt.datetime
    reason: str
    quota: bool
    """A quota moves the delivery to the free slot; otherwise (backlog pace) it is only delayed."""


def parent_slot(row: DeliveryRow) -> tuple[str, int] | None:
    """The (kind, part) a delivery replies to, or ``None`` for a root."""
    if row.kind == "root":
        return None
    return ("root", 1) if row.part == 1 else ("followup", row.part - 1)


def _parent_posted_clause() -> Any:
    """SQL: the delivery is a root, or the post it replies to has been posted."""
    parent = aliased(DeliveryRow)
    return or_(
        DeliveryRow.kind == "root",
        exists().where(
            parent.story_id == DeliveryRow.story_id,
            parent.platform == DeliveryRow.platform,
            parent.status == S.POSTED.value,
            or_(
                and_(DeliveryRow.part == 1, parent.kind == "root"),
                and_(DeliveryRow.part > 1, parent.kind == "followup", parent.part == DeliveryRow.part - 1),
            ),
        ),
    )


_EFFECTIVE_DUE = case(
    (and_(DeliveryRow.not_before.is_not(None), DeliveryRow.not_before > DeliveryRow.due_at),
     DeliveryRow.not_before),
    else_=DeliveryRow.due_at,
)


class Engine:
    """Delivers due posts through the platform adapters, exactly once each."""

    def __init__(
        self,
        store: Store,
        adapters: Mapping[str, Adapter],
        settings: Settings,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        worker: str | None = None,
        rng: random.Random | None = None,
        on_event: Callable[[Event], None] | None = None,
        planner: Planner | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store = store
        self.adapters = dict(adapters)
        self.settings = settings
        self.clock = clock
        self.worker = worker or default_worker_id()
        self.rng = rng or random.Random()
        self.on_event = on_event
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.planner = planner if planner is not None else Planner(store, settings)
        self.lead = dt.timedelta(0)
        """How early a sweep may claim a delivery; it is still sent at its due time (the run loop sets it)."""
        self.sleep = sleep
        self.mask = settings.masker()
        """Masks every secret out of the errors the engine records and reports."""

    # ------------------------------------------------------------------ queries

    def platform_blocks(self, session: Session, now: dt.datetime) -> dict[str, str]:
        """Platforms that may not be called now, with the reason."""
        blocked = {}
        for row in session.scalars(select(PlatformRow)):
            if row.paused_reason:
                blocked[row.name] = f"paused: {row.paused_reason}"
            elif row.retry_at is not None and row.retry_at > now:
                blocked[row.name] = f"rate limited until {row.retry_at:%Y-%m-%d %H:%M:%S} UTC"
        return blocked

    def due(self, session: Session, now: dt.datetime, platform: str, limit: int = 100) -> list[DeliveryRow]:
        """Pending deliveries of ``platform`` due by ``now`` (plus the lead) whose parent is posted."""
        return list(session.scalars(self._due_stmt(now, platform).limit(limit)))

    def _due_stmt(self, now: dt.datetime, platform: str) -> Any:
        """Deliveries due by ``now`` plus the lead, in order; a root past its grace period never is."""
        return (
            select(DeliveryRow)
            .where(DeliveryRow.status == S.PENDING.value, DeliveryRow.platform == platform,
                   DeliveryRow.due_at <= now + self.lead,
                   or_(DeliveryRow.kind != "root", DeliveryRow.due_at >= now - self.settings.grace),
                   or_(DeliveryRow.not_before.is_(None), DeliveryRow.not_before <= now),
                   _parent_posted_clause())
            .order_by(DeliveryRow.due_at, DeliveryRow.kind.desc(), DeliveryRow.part, DeliveryRow.id)
        )

    def next_wake(self, now: dt.datetime | None = None, *, platforms: list[str] | None = None,
                  include_render: bool = True) -> dt.datetime | None:
        """When the next delivery (of ``platforms``, default all) becomes due; ``None`` when nothing is queued.

        With ``include_render``, also when the next story not yet rendered has to be rendered.
        """
        now = now or self.clock()
        names = list(self.adapters) if platforms is None else platforms
        with self.store.session() as session:
            blocks = {r.name: r for r in session.scalars(select(PlatformRow))}
            wake = None
            for platform in names:
                state = blocks.get(platform)
                if state is not None and state.paused_reason:
                    continue
                waiting = (DeliveryRow.status == S.PENDING.value, DeliveryRow.platform == platform,
                           _parent_posted_clause())
                # Most rows have no not_before: the earliest of them comes straight off the due-time index;
                # the few held back (backoff, pacing) are compared by their effective time.
                plain = session.scalar(select(DeliveryRow.due_at).where(*waiting, DeliveryRow.not_before.is_(None))
                                       .order_by(DeliveryRow.due_at).limit(1))
                held = session.scalar(select(func.min(_EFFECTIVE_DUE)).where(*waiting,
                                                                             DeliveryRow.not_before.is_not(None)))
                candidates = [w if w.tzinfo else w.replace(tzinfo=dt.UTC) for w in (plain, held) if w is not None]
                if not candidates:
                    continue
                when = min(candidates)
                if state is not None and state.retry_at is not None and state.retry_at > when:
                    when = state.retry_at
                wake = when if wake is None else min(wake, when)
        render_at = self.planner.next_render() if include_render else None
        if render_at is not None:
            render_at = max(render_at, now)
            wake = render_at if wake is None else min(wake, render_at)
        return wake

    # ------------------------------------------------------------------ the sweep

    def housekeeping(self, now: dt.datetime, report: RunReport | None = None) -> RunReport:
        """Reconcile lapsed claims, mark roots past their grace period missed, render what is due soon."""
        report = report if report is not None else RunReport()
        self.ensure_platform_rows()
        self.reconcile(now, report)
        self._mark_missed(now, report)
        self.planner.render_due(now + RENDER_AHEAD, now=now)
        return report

    def run_once(self, now: dt.datetime | None = None, *, dry_run: bool = False,
                 platforms: list[str] | None = None, housekeeping: bool = True) -> RunReport:
        """Deliver everything due at ``now`` (on ``platforms``, default all), each platform in its own thread.

        With ``dry_run`` only say what would go out. ``housekeeping`` (see :meth:`housekeeping`) runs
        first unless the caller does it on its own schedule.
        """
        now = now or self.clock()
        report = RunReport()
        if dry_run:
            self._dry_run(now, report)
            return report
        if housekeeping:
            self.housekeeping(now, report)
        platforms = list(self.adapters) if platforms is None else platforms
        if len(platforms) == 1:
            self._run_platform(platforms[0], now, report)
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(platforms),
                                                       thread_name_prefix="platform") as pool:
                for future in [pool.submit(self._run_platform, p, now, report) for p in platforms]:
                    future.result()
        return report

    def _emit(self, report: RunReport, event: Event) -> None:
        with self._lock:
            report.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _event(self, action: str, row: DeliveryRow, detail: str = "", **extra: Any) -> Event:
        return Event(action, row.id, row.story_id, row.platform, row.kind, row.part, row.parts, self.mask(detail),
                     at=extra.pop("at", None), text=row.text, **extra)

    def _mark_missed(self, now: dt.datetime, report: RunReport) -> None:
        cutoff = now - self.settings.grace
        with self.store.session() as session:
            rows = list(session.scalars(
                select(DeliveryRow).where(DeliveryRow.status == S.PENDING.value, DeliveryRow.kind == "root",
                                          DeliveryRow.due_at < cutoff,
                                          DeliveryRow.platform.in_(list(self.adapters)))
            ))
            for row in rows:
                late = now - row.due_at
                row.status = S.MISSED.value
                row.last_error = (f"not posted: {_human(late)} late, past the grace period of "
                                  f"{_human(self.settings.grace)} (retry posts it on purpose)")
                row.updated_at = now
                self._emit(report, self._event("missed", row, row.last_error, at=now))

    def _run_platform(self, platform: str, now: dt.datetime, report: RunReport) -> None:
        """Claim and send this platform's due deliveries one by one until none is left or it must stop."""
        adapter = self.adapters[platform]
        while not self.stopping.is_set():
            with self.store.session() as session:
                if self.platform_blocks(session, now).get(platform):
                    return
            claim = self._claim(platform, now)
            if claim is None:
                return
            if claim is LOST:
                continue  # another process took it (or it changed): pick again
            if isinstance(claim, Hold):
                with self.store.session() as session:
                    waiting = self.due(session, now, platform, limit=1000)
                if waiting:
                    self._defer(waiting, claim, report)
                return
            if self._deliver(adapter, claim, report) == "stop-platform":  # type: ignore[arg-type]
                return

    def _hold(self, session: Session, row: DeliveryRow, now: dt.datetime) -> Hold | None:
        """Whether ``row`` must wait for a quota or the backlog pace.

        Quotas count the posts of every worker (the database is shared) over rolling windows, posts in
        flight included.
        """
        holds: list[Hold] = []
        in_flight = session.scalar(select(func.count()).where(DeliveryRow.platform == row.platform,
                                                              DeliveryRow.status == S.SENDING.value)) or 0
        for window, limit in self.settings.quotas(row.platform):
            recent = (select(DeliveryRow.posted_at)
                      .where(DeliveryRow.platform == row.platform, DeliveryRow.posted_at > now - window)
                      .order_by(DeliveryRow.posted_at.desc()))
            count = (session.scalar(select(func.count()).select_from(recent.subquery())) or 0) + in_flight
            if count >= limit:
                oldest_counted = session.scalar(recent.offset(max(0, limit - 1 - in_flight)).limit(1))
                until = oldest_counted + window if oldest_counted is not None else now + dt.timedelta(seconds=5)
                holds.append(Hold(until, f"{row.platform} quota of {limit} posts per {_human(window)} reached",
                                  True))
        pace = self.settings.backlog_pace
        if pace and row.due_at < now - BACKLOG_LATE:
            last = session.scalar(select(func.max(DeliveryRow.posted_at)).where(DeliveryRow.platform == row.platform))
            if last is not None and last + pace > now:
                holds.append(Hold(last + pace, f"draining a backlog: one post every {_human(pace)}", False))
        return max(holds) if holds else None

    def _defer(self, rows: list[DeliveryRow], hold: Hold, report: RunReport) -> None:
        """Hold ``rows`` back: a quota moves them to the next free slot; the backlog pace only delays."""
        until, reason, quota = hold
        at = self.clock()
        with self.store.session() as session:
            for row in rows:
                current = session.get(DeliveryRow, row.id)
                if current is None or current.status != S.PENDING.value:
                    continue
                if quota:
                    current.due_at = max(current.due_at, until)
                else:
                    current.not_before = max(current.not_before or until, until)
                current.last_error, current.updated_at = f"held back: {reason}", at
        self._emit(report, self._event("deferred", rows[0], f"{reason}; next slot "
                                       f"{until:%Y-%m-%d %H:%M:%S} UTC"
                                       + (f" ({len(rows)} waiting)" if len(rows) > 1 else "")))

    def _deliver(self, adapter: Adapter, claim: tuple[DeliveryRow, Outgoing, PostRef | None, PostRef | None],
                 report: RunReport) -> str:
        """Send one claimed delivery. Returns ``done`` or ``stop-platform``."""
        row, post, parent, root = claim
        early = (row.due_at - self.clock()).total_seconds()
        if 0 < early <= self.lead.total_seconds():
            self.sleep(early)  # claimed ahead of time: send exactly when due
        if parent is not None and row.kind != "root":
            state = self._thread_state(adapter, parent, row, report)
            if state is not None:
                return state
        try:
            if parent is None:
                ref = adapter.publish(post)
            else:
                assert root is not None
                ref = adapter.reply(post, parent, root)
        except RateLimited as exc:
            self._release(row.id, exc, not_before=exc.retry_at, platform_retry_at=exc.retry_at,
                          outcome="rate-limited", count_attempt=False)
            self._emit(report, self._event("rate-limited", row, f"{exc.reason}; waiting until "
                                           f"{exc.retry_at:%Y-%m-%d %H:%M:%S} UTC"))
            return "stop-platform"
        except AuthFailed as exc:
            self._release(row.id, exc, pause=exc.reason, outcome="auth-failed", count_attempt=False)
            self._emit(report, self._event("paused", row, f"authentication failed: {exc.reason}"))
            return "stop-platform"
        except Duplicate as exc:
            self._settle_unknown(adapter, row, post, exc, report, duplicate=True)
            return "done"
        except Rejected as exc:
            self._finish(row.id, S.FAILED, error=f"rejected by {row.platform}: {exc.reason}", outcome="rejected")
            self._emit(report, self._event("failed", row, f"rejected: {exc.reason}"))
            return "done"
        except Transient as exc:
            self._transient(row, exc, report, adapter, post)
            return "done"
        except OutcomeUnknown as exc:
            self._settle_unknown(adapter, row, post, exc, report)
            return "done"
        except Exception as exc:  # a bug in an adapter: the post may or may not have gone out
            log.exception("adapter %s raised an unexpected error", row.platform)
            self._finish(row.id, S.UNCONFIRMED, error=f"unexpected error: {exc!r}", outcome="error")
            self._emit(report, self._event("unconfirmed", row, f"unexpected error: {exc!r}"))
            return "done"
        self._posted(row, ref, report, parent=parent)
        return "done"

    def _thread_state(self, adapter: Adapter, parent: PostRef, row: DeliveryRow, report: RunReport) -> str | None:
        """Check the thread before replying; skip the reply when the root is gone or locked."""
        if row.part != 1:
            return None
        try:
            state = adapter.thread_state(parent)
        except (RateLimited, AuthFailed, Transient, OutcomeUnknown) as exc:
            self._release(row.id, exc, not_before=getattr(exc, "retry_at", None) or self.clock()
                          + self.settings.backoff, outcome="check-failed", count_attempt=False)
            self._emit(report, self._event("retry-later", row, f"could not check the thread: {exc.reason}"))
            return "done"
        except AdapterError:
            state = ThreadState.GONE
        if state is ThreadState.OPEN:
            return None
        reason = ("the root post was deleted or removed" if state is ThreadState.GONE
                  else "the root post no longer accepts replies")
        self._finish(row.id, S.SKIPPED, error=f"follow-up skipped: {reason}", outcome="skipped")
        with self.store.session() as session:  # later parts of the same follow-up go with it
            for later in session.scalars(select(DeliveryRow).where(
                    DeliveryRow.story_id == row.story_id, DeliveryRow.platform == row.platform,
                    DeliveryRow.kind == "followup", DeliveryRow.part > row.part,
                    DeliveryRow.status == S.PENDING.value)):
                later.status, later.last_error = S.SKIPPED.value, f"follow-up skipped: {reason}"
        self._emit(report, self._event("skipped", row, reason))
        return "done"

    # ------------------------------------------------------------------ state changes

    def _claim(self, platform: str, now: dt.datetime
               ) -> tuple[DeliveryRow, Outgoing, PostRef | None, PostRef | None] | Hold | str | None:
        """Take the platform's next due delivery and commit its intent (payload, key, attempt, time).

        This happens before any network call. The row is picked with ``FOR UPDATE SKIP LOCKED``, so
        workers on PostgreSQL never wait for or take each other's rows, and the platform's row is
        locked while its quotas are counted, so quotas hold across all workers. The row is then taken
        by a compare-and-set (:meth:`take`): only the worker whose update changed it sends it, on every
        backend. Returns ``None`` when nothing is due, a :class:`Hold` when a quota or the backlog pace
        says wait, and :data:`LOST` when another process took or changed the row since it was read.
        """
        started = self.clock()
        with self.store.session() as session:
            row = session.scalar(self._due_stmt(now, platform).limit(1)
                                 .with_for_update(skip_locked=True, of=DeliveryRow))
            if row is None:
                return None
            parent = root = None
            slot = parent_slot(row)
            if slot is not None:
                parent = self._ref_of(session, row, *slot)
                root = self._ref_of(session, row, "root", 1)
                if parent is None or root is None:
                    return None
            session.scalar(select(PlatformRow).where(PlatformRow.name == row.platform).with_for_update())
            hold = self._hold(session, row, max(now, started))
            if hold is not None:
                return hold
            taken = self.take(session, row.id, now, started)
            if taken is None:
                return LOST
            row = taken
            payload = dict(row.payload)
            image = story_image(session, row.story_id) if row.kind == "root" else None
        post = Outgoing(row.platform, row.story_id, row.kind, row.part, payload, row.key, parent, root)  # type: ignore[arg-type]
        if image:
            post = dataclasses.replace(post, attachments={"thumb": image})
        return row, post, parent, root

    def take(self, session: Session, delivery_id: int, now: dt.datetime, started: dt.datetime
             ) -> DeliveryRow | None:
        """Claim one delivery by compare-and-set; the claimed row, or ``None`` when another process won.

        The update changes the row only while it is still pending and due at ``now``; its row count
        decides who sends, on SQLite as on PostgreSQL. The row is then read back inside the same
        transaction, which now holds it: the text and payload committed as the intent, and sent, are
        the row's own at that moment, never an older read of it (an edit loaded meanwhile is either
        in it, or reported by the load as too late).
        """
        stmt = (update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id, DeliveryRow.status == S.PENDING.value,
                       DeliveryRow.due_at <= now + self.lead,
                       or_(DeliveryRow.not_before.is_(None), DeliveryRow.not_before <= now))
                .values(status=S.SENDING.value, claimed_by=self.worker, claimed_until=started + self.settings.lease,
                        attempts=DeliveryRow.attempts + 1, updated_at=started,
                        key=func.coalesce(DeliveryRow.key, next_tid()))
                .execution_options(synchronize_session=False))
        if session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.scalar(select(DeliveryRow).where(DeliveryRow.id == delivery_id)
                             .execution_options(populate_existing=True))
        assert row is not None
        payload = dict(row.payload)
        if row.platform == "bluesky" and payload.get("createdAt", "1970-").startswith("1970-"):
            payload["createdAt"] = iso_utc(started)
            row.payload = payload
        session.add(AttemptRow(delivery_id=row.id, number=row.attempts, worker=self.worker,
                               started_at=started, outcome="sending", payload=payload))
        session.flush()
        return row

    @staticmethod
    def _ref_of(session: Session, row: DeliveryRow, kind: str, part: int) -> PostRef | None:
        other = session.scalar(select(DeliveryRow).where(
            DeliveryRow.story_id == row.story_id, DeliveryRow.platform == row.platform,
            DeliveryRow.kind == kind, DeliveryRow.part == part))
        if other is None or other.status != S.POSTED.value or not other.remote_id:
            return None
        return PostRef(other.platform, other.remote_id, other.remote_url or "", dict(other.remote_extra or {}))

    def _posted(self, row: DeliveryRow, ref: PostRef, report: RunReport, detail: str = "",
                parent: PostRef | None = None) -> None:
        """Record the platform's id and URL right after it answered, with the text and payload sent.

        ``row`` is the delivery as claimed: the record says what went out, whatever the row says now.
        """
        at = self.clock()
        with self.store.session() as session:
            session.execute(update(DeliveryRow).where(DeliveryRow.id == row.id).values(
                status=S.POSTED.value, text=row.text, payload=dict(row.payload), remote_id=ref.id,
                remote_url=ref.url, remote_extra=dict(ref.extra), posted_at=at, last_error=None, claimed_by=None,
                claimed_until=None, updated_at=at)
                .execution_options(synchronize_session=False))
            self._close_attempt(session, row.id, "posted", None, at)
            if parent is None and parent_slot(row) is not None:
                parent = self._ref_of(session, row, *parent_slot(row))  # type: ignore[misc]
        self._emit(report, self._event("posted", row, detail, at=at, remote_id=ref.id,
                                       reply_to=parent.id if parent else None))

    def _finish(self, delivery_id: int, status: S, *, error: str, outcome: str) -> None:
        at, error = self.clock(), self.mask(error)
        with self.store.session() as session:
            row = session.get(DeliveryRow, delivery_id)
            assert row is not None
            row.status, row.last_error, row.updated_at = status.value, error, at
            row.claimed_by = row.claimed_until = None
            self._close_attempt(session, delivery_id, outcome, error, at)

    def _release(self, delivery_id: int, exc: AdapterError, *, outcome: str, not_before: dt.datetime | None = None,
                 platform_retry_at: dt.datetime | None = None, pause: str | None = None,
                 count_attempt: bool = True) -> None:
        """Put a claimed delivery back to pending (nothing was posted)."""
        at, error = self.clock(), self.mask(str(exc))
        pause = self.mask(pause) if pause is not None else None
        with self.store.session() as session:
            row = session.get(DeliveryRow, delivery_id)
            assert row is not None
            row.status, row.last_error, row.not_before, row.updated_at = S.PENDING.value, error, not_before, at
            row.claimed_by = row.claimed_until = None
            if not count_attempt:
                row.attempts = max(0, row.attempts - 1)
            self._close_attempt(session, delivery_id, outcome, error, at)
            if platform_retry_at is not None or pause is not None:
                state = session.get(PlatformRow, row.platform) or PlatformRow(name=row.platform, updated_at=at)
                if platform_retry_at is not None:
                    state.retry_at = max(platform_retry_at, state.retry_at or platform_retry_at)
                if pause is not None:
                    state.paused_reason = pause
                state.updated_at = at
                session.add(state)

    @staticmethod
    def _close_attempt(session: Session, delivery_id: int, outcome: str, error: str | None,
                       at: dt.datetime) -> None:
        """Finish the open attempt of a delivery (there is at most one: the one its claim began).

        ``error`` is stored as given: callers pass it masked (or a message of the engine's own)."""
        session.execute(update(AttemptRow).where(AttemptRow.delivery_id == delivery_id,
                                                 AttemptRow.finished_at.is_(None))
                        .values(outcome=outcome, error=error, finished_at=at)
                        .execution_options(synchronize_session=False))

    def _transient(self, row: DeliveryRow, exc: AdapterError, report: RunReport, adapter: Adapter | None = None,
                   post: Outgoing | None = None) -> None:
        with self.store.session() as session:
            attempts = session.scalar(select(DeliveryRow.attempts).where(DeliveryRow.id == row.id)) or 0
        if attempts >= self.settings.max_attempts:
            if adapter is not None and post is not None:
                # An earlier attempt may still have landed (a slow create finishing after its timeout):
                # look once more before giving up.
                try:
                    found = self._look_up(adapter, row, post)
                except AdapterError:
                    found = None
                if found is not None:
                    self._posted(row, found, report, detail="found before giving up")
                    return
            self._finish(row.id, S.FAILED, error=f"gave up after {attempts} attempts: {exc.reason}",
                         outcome="transient")
            self._emit(report, self._event("failed", row, f"gave up after {attempts} attempts: {exc.reason}"))
            return
        delay = self.backoff(attempts)
        self._release(row.id, exc, not_before=self.clock() + delay, outcome="transient")
        self._emit(report, self._event("retry-later", row, f"{exc.reason}; next attempt in {_human(delay)}"))

    def backoff(self, attempts: int) -> dt.timedelta:
        """Exponential backoff with full jitter in its upper half: base * 2^(n-1) * [0.5, 1)."""
        base = self.settings.backoff.total_seconds() * (2 ** max(0, attempts - 1))
        return dt.timedelta(seconds=min(base, 6 * 3600) * (0.5 + self.rng.random() / 2))

    def _settle_unknown(self, adapter: Adapter, row: DeliveryRow, post: Outgoing, exc: AdapterError,
                        report: RunReport, duplicate: bool = False) -> None:
        """The post may have landed: look for it before anything else."""
        try:
            found = self._look_up(adapter, row, post)
        except AdapterError as lookup_error:
            self._lookup_failed(row, f"{exc.reason}; looking it up failed: {lookup_error.reason}", lookup_error,
                                report)
            return
        if found is not None:
            self._posted(row, found, report, detail=f"found after: {exc.reason}")
            return
        if duplicate:
            reason = f"{exc.reason} (the platform calls it a duplicate but it is not among our posts)"
            self._finish(row.id, S.UNCONFIRMED, error=reason, outcome="duplicate")
            self._emit(report, self._event("unconfirmed", row, reason))
            return
        if self._still_settling(row, f"{exc.reason}; not on the platform yet"):
            self._emit(report, self._event("retry-later", row, f"{exc.reason}; looking again once a request "
                                           "still in flight would have landed"))
            return
        self._transient(row, Transient(row.platform, f"{exc.reason} (not posted: checked)"), report, adapter, post)

    def _look_up(self, adapter: Adapter, row: DeliveryRow, post: Outgoing) -> PostRef | None:
        """Look for ``post`` among the account's posts since its first attempt began (less a margin)."""
        return adapter.find(post, since=self._attempt_started(row.id, first=True) - dt.timedelta(minutes=5))

    def _still_settling(self, row: DeliveryRow, reason: str) -> bool:
        """Whether "not found" cannot be trusted yet: the last attempt may still be in flight on the platform.

        A platform can finish a request after the client gave up on it, so an absent post only counts
        as not posted once ``ONEYEARAGO_SETTLE`` has passed since that attempt began. Until then the
        delivery stays ``sending`` under a claim that lapses then, and reconciliation looks again.
        """
        until = self._attempt_started(row.id) + self.settings.settle
        at, reason = self.clock(), self.mask(reason)
        if at >= until:
            return False
        with self.store.session() as session:
            current = session.get(DeliveryRow, row.id)
            assert current is not None
            current.status, current.claimed_by, current.claimed_until = S.SENDING.value, None, until
            current.last_error, current.updated_at = f"{reason}; looking again at {until:%H:%M:%S} UTC", at
        return True

    def _lookup_failed(self, row: DeliveryRow, reason: str, exc: AdapterError, report: RunReport) -> None:
        """A post whose outcome is unknown could not be looked up: look again later, a few times.

        The delivery stays ``sending`` with a short claim, so reconciliation retries the lookup once
        it lapses; never resent meanwhile. After :data:`LOOKUPS` failed lookups (or at once when the
        platform's answer is final) it becomes ``unconfirmed`` for the operator.
        """
        at, reason = self.clock(), self.mask(reason)
        with self.store.session() as session:
            tries = session.scalar(select(func.count()).where(AttemptRow.delivery_id == row.id,
                                                              AttemptRow.outcome == "lookup-failed")) or 0
            final = not isinstance(exc, Transient | RateLimited | OutcomeUnknown) or tries + 1 >= LOOKUPS
            if not final:
                wait = getattr(exc, "retry_at", None) or at + self.backoff(tries + 1)
                current = session.get(DeliveryRow, row.id)
                assert current is not None
                current.claimed_by, current.claimed_until = None, max(wait, at)
                current.last_error, current.updated_at = f"{reason}; looking again at {wait:%H:%M:%S} UTC", at
                session.add(AttemptRow(delivery_id=row.id, number=current.attempts, worker=self.worker,
                                       started_at=at, finished_at=at, outcome="lookup-failed", error=reason,
                                       payload={}))
        if final:
            self._finish(row.id, S.UNCONFIRMED, error=reason, outcome="unknown")
            self._emit(report, self._event("unconfirmed", row, reason))
        else:
            self._emit(report, self._event("retry-later", row, f"{reason}; will look it up again"))

    def _attempt_started(self, delivery_id: int, *, first: bool = False) -> dt.datetime:
        """When the delivery's latest (or ``first``) send attempt began (lookups are not attempts)."""
        order = AttemptRow.id.asc() if first else AttemptRow.id.desc()
        with self.store.session() as session:
            started = session.scalar(select(AttemptRow.started_at).where(AttemptRow.delivery_id == delivery_id,
                                                                         AttemptRow.outcome != "lookup-failed")
                                     .order_by(order).limit(1))
        return started or self.clock()

    # ------------------------------------------------------------------ recovery

    def reconcile(self, now: dt.datetime, report: RunReport | None = None, *, all_sending: bool = False
                  ) -> RunReport:
        """Settle deliveries left ``sending`` by a crash: posted, safe to retry, or unconfirmed.

        Only deliveries whose claim has lapsed are touched, or every one with ``all_sending``
        (a single worker at start-up, which knows no one else holds a claim).
        """
        report = report if report is not None else RunReport()
        with self.store.session() as session:
            stmt = select(DeliveryRow).where(DeliveryRow.status == S.SENDING.value,
                                             DeliveryRow.platform.in_(list(self.adapters)))
            if not all_sending:
                stmt = stmt.where(or_(DeliveryRow.claimed_until.is_(None), DeliveryRow.claimed_until < now))
            rows = list(session.scalars(stmt))
        for row in rows:
            adapter = self.adapters[row.platform]
            if not self._take_over(row.id, now, all_sending):
                continue  # another worker renewed or took it meanwhile
            with self.store.session() as session:
                slot = parent_slot(row)
                parent = self._ref_of(session, row, *slot) if slot else None
                root = self._ref_of(session, row, "root", 1) if slot else None
            post = Outgoing(row.platform, row.story_id, row.kind, row.part, dict(row.payload), row.key, parent, root)  # type: ignore[arg-type]
            try:
                found = self._look_up(adapter, row, post)
            except AdapterError as exc:
                self._lookup_failed(row, f"interrupted while sending; looking it up failed: {exc.reason}", exc,
                                    report)
                continue
            if found is not None:
                self._posted(row, found, report, detail="found after an interrupted send")
            elif self._still_settling(row, "interrupted while sending; not on the platform yet"):
                continue
            else:
                with self.store.session() as session:
                    current = session.get(DeliveryRow, row.id)
                    assert current is not None
                    current.status, current.claimed_by, current.claimed_until = S.PENDING.value, None, None
                    current.last_error = "interrupted while sending; not on the platform, so it will be sent"
                    self._close_attempt(session, row.id, "interrupted", current.last_error, self.clock())
                self._emit(report, self._event("reconciled", row, "interrupted send not on the platform: "
                                               "queued again"))
        return report

    def _take_over(self, delivery_id: int, now: dt.datetime, any_claim: bool) -> bool:
        """Claim a ``sending`` delivery for reconciliation, so two workers never settle it both."""
        lapsed = DeliveryRow.claimed_until.is_(None) | (DeliveryRow.claimed_until < now)
        with self.store.session() as session:
            stmt = (update(DeliveryRow)
                    .where(DeliveryRow.id == delivery_id, DeliveryRow.status == S.SENDING.value,
                           true() if any_claim else lapsed)
                    .values(claimed_by=self.worker, claimed_until=self.clock() + self.settings.lease)
                    .execution_options(synchronize_session=False))
            return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ workers

    def ensure_platform_rows(self) -> None:
        """Create the per-platform state rows (their lock serialises quota checks across workers)."""
        at = self.clock()
        with self.store.session() as session:
            known = set(session.scalars(select(PlatformRow.name)))
            for name in self.adapters:
                if name not in known:
                    session.execute(_insert_ignore(PlatformRow.__table__, self.store, {"name": name,
                                                                                       "updated_at": at}))

    def register(self) -> None:
        """Announce this worker. On SQLite, refuse when another live worker already runs on the file."""
        at = self.clock()
        with self.store.session() as session:
            live = [w for w in session.scalars(select(WorkerRow)) if w.id != self.worker
                    and w.heartbeat_at > at - self.settings.lease and not _dead_here(w)]
            if live and self.store.is_sqlite:
                other = live[0]
                raise StoreError(f"another worker ({other.id}, last seen {other.heartbeat_at:%H:%M:%S} UTC) "
                                 "already runs on this SQLite database, and SQLite supports one worker; to run "
                                 "several, use PostgreSQL (ONEYEARAGO_DATABASE_URL=postgresql+psycopg://...)")
            for stale in session.scalars(select(WorkerRow).where(WorkerRow.heartbeat_at < at - 10 * self.settings.lease)):
                session.delete(stale)
            host, _, pid = self.worker.rpartition(":")
            session.merge(WorkerRow(id=self.worker, host=host or socket.gethostname(),
                                    pid=int(pid) if pid.isdigit() else os.getpid(),
                                    platforms=",".join(self.adapters), started_at=at, heartbeat_at=at))
        self.ensure_platform_rows()

    def heartbeat(self) -> None:
        """Renew this worker's row and its claims on the posts it is sending."""
        at = self.clock()
        with self.store.session() as session:
            session.execute(update(WorkerRow).where(WorkerRow.id == self.worker).values(heartbeat_at=at))
            session.execute(update(DeliveryRow)
                            .where(DeliveryRow.claimed_by == self.worker, DeliveryRow.status == S.SENDING.value)
                            .values(claimed_until=at + self.settings.lease)
                            .execution_options(synchronize_session=False))

    def deregister(self) -> None:
        with self.store.session() as session:
            session.execute(delete(WorkerRow).where(WorkerRow.id == self.worker))

    # ------------------------------------------------------------------ dry run

    def _dry_run(self, now: dt.datetime, report: RunReport) -> None:
        """What ``run_once`` would send at ``now``, changing nothing."""
        cutoff = now - self.settings.grace
        with self.store.session() as session:
            blocks = self.platform_blocks(session, now)
            rows = list(session.scalars(
                select(DeliveryRow).where(DeliveryRow.status == S.PENDING.value, DeliveryRow.due_at <= now,
                                          DeliveryRow.platform.in_(list(self.adapters)))
                .order_by(DeliveryRow.due_at, DeliveryRow.kind.desc(), DeliveryRow.part)
            ))
            posted = {(r.story_id, r.platform, r.kind, r.part) for r in session.scalars(
                select(DeliveryRow).where(DeliveryRow.status == S.POSTED.value,
                                          DeliveryRow.story_id.in_({r.story_id for r in rows})))}
            session.expunge_all()
            session.rollback()
        for row in rows:
            if row.platform in blocks:
                self._emit(report, self._event("blocked", row, blocks[row.platform]))
                continue
            if row.kind == "root" and row.due_at < cutoff:
                self._emit(report, self._event("missed", row, "past the grace period: would be marked missed"))
                continue
            if row.not_before is not None and row.not_before > now:
                continue
            slot = parent_slot(row)
            if slot is not None and (row.story_id, row.platform, *slot) not in posted:
                continue
            posted.add((row.story_id, row.platform, row.kind, row.part))
            self._emit(report, self._event("would-post", row, at=now))
        self._dry_run_unrendered(now, cutoff, blocks, report)


    def _dry_run_unrendered(self, now: dt.datetime, cutoff: dt.datetime, blocks: Mapping[str, str],
                            report: RunReport) -> None:
        """Stories not rendered yet whose posts would be due: rendered in memory, nothing stored."""
        with self.store.session() as session:
            stories = list(session.scalars(select(StoryRow).where(StoryRow.rendered.is_(False),
                                                                  StoryRow.root_due <= now)
                                           .order_by(StoryRow.root_due, StoryRow.seq)))
            session.expunge_all()
        for story_row in stories:
            story = Story.from_content(story_row.content)
            delay = story.followup_after or self.settings.followup_delay
            for platform in self.adapters:
                if story.platforms and platform not in story.platforms:
                    continue
                for part in render(story, platform, self.planner.options):
                    due = story_row.root_due if part.kind == "root" else story_row.root_due + delay
                    row = DeliveryRow(id=0, story_id=story.id, platform=platform, kind=part.kind, part=part.part,
                                      parts=part.parts, due_at=due, text=part.text)
                    if platform in blocks:
                        self._emit(report, self._event("blocked", row, blocks[platform]))
                        break
                    if part.kind == "root" and due < cutoff:
                        self._emit(report, self._event("missed", row, "past the grace period: would be marked "
                                                       "missed"))
                        break
                    if due <= now:
                        self._emit(report, self._event("would-post", row, at=now))


def _dead_here(worker: WorkerRow) -> bool:
    """Whether a worker row belongs to a process of this host that no longer exists (killed, crashed)."""
    if worker.host != socket.gethostname():
        return False
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _insert_ignore(table: Any, store: Store, values: dict[str, Any]) -> Any:
    """An INSERT that does nothing when the row exists (PostgreSQL and SQLite)."""
    if store.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).values(**values).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).values(**values).on_conflict_do_nothing()


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 5400:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
