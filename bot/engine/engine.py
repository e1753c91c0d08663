"""The engine: one object that runs a sweep at a given time, made of the parts named for their jobs.

- :mod:`bot.engine.sweep`: claim, send, record, platform by platform;
- :mod:`bot.engine.transitions`: the only writer of a delivery's status, claim, attempts and last error;
- :mod:`bot.engine.settle`: one path for a post whose outcome is not known;
- :mod:`bot.engine.recovery`: deliveries left ``sending`` by a crash or a lapsed lease;
- :mod:`bot.engine.holds`: quotas and the backlog pace;
- :mod:`bot.engine.workers`: workers sharing one database;
- :mod:`bot.engine.dry_run`: what a sweep would do;
- :mod:`bot.engine.queries`: what is due, and what a reply answers.

All logic runs in :meth:`Engine.run_once`, which takes the current time and sweeps everything that
is due; the run loop (:mod:`bot.runner`) only decides when to call it. Each platform is worked in
its own thread so that a slow or failing platform never delays another.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapters.base import Adapter, PostRef
from bot.config import Settings
from bot.engine import queries, recovery, workers
from bot.engine.dry_run import dry_run as preview_sweep
from bot.engine.events import Event, RunReport
from bot.engine.settle import Settlement
from bot.engine.sweep import Claim, Sweep
from bot.engine.transitions import Transitions
from bot.models import DeliveryRow, PlatformRow
from bot.planner import RENDER_AHEAD, Planner
from bot.store import Store
from posts.clock import utcnow

log = logging.getLogger(__name__)

HOUSEKEEPING = dt.timedelta(seconds=30)
"""In the run loop, how often a sweep also reconciles lapsed claims, marks missed roots and renders ahead."""


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
        self.worker = worker or workers.default_worker_id()
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
        self.transitions = Transitions(store, settings, worker=self.worker, clock=lambda: self.clock(),
                                       mask=self.mask)
        self.swept: dict[str, dt.datetime] = {}
        """When a sweep of each platform last finished, written to ``platforms.swept_at`` by the heartbeat
        (:func:`bot.engine.workers.record_sweeps`), for monitoring."""
        self._swept_written: dict[str, dt.datetime] = {}
        self.sweep = Sweep(self)
        self.settlement = Settlement(self)

    # ------------------------------------------------------------------ queries

    def platform_blocks(self, session: Session, now: dt.datetime) -> dict[str, str]:
        """Platforms that may not be called now, with the reason."""
        return queries.platform_blocks(session, now)

    def due(self, session: Session, now: dt.datetime, platform: str, limit: int = 100) -> list[DeliveryRow]:
        """Pending deliveries of ``platform`` due by ``now`` (plus the lead) whose parent is posted."""
        return list(session.scalars(self.due_stmt(now, platform).limit(limit)))

    def due_stmt(self, now: dt.datetime, platform: str) -> Any:
        """Deliveries due by ``now`` plus the lead, in order; a root past its grace period never is."""
        return queries.due_stmt(now, platform, lead=self.lead, grace=self.settings.grace)

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
                waiting = queries.waiting(platform)
                # Most rows have no not_before: the earliest of them comes straight off the due-time index;
                # the few held back (backoff, pacing) are compared by their effective time.
                plain = session.scalar(select(DeliveryRow.due_at).where(*waiting, DeliveryRow.not_before.is_(None))
                                       .order_by(DeliveryRow.due_at).limit(1))
                held = session.scalar(select(func.min(queries.EFFECTIVE_DUE))
                                      .where(*waiting, DeliveryRow.not_before.is_not(None)))
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
        for row in self.transitions.mark_missed(now, list(self.adapters)):
            self.emit(report, self.event("missed", row, row.last_error or "", at=now))
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
            preview_sweep(self, now, report)
            return report
        if housekeeping:
            self.housekeeping(now, report)
        platforms = list(self.adapters) if platforms is None else platforms
        if len(platforms) == 1:
            self.sweep.run(platforms[0], now, report)
        else:
            with concurrent.futures.ThreadPoolExecutor(max_workers=len(platforms),
                                                       thread_name_prefix="platform") as pool:
                for future in [pool.submit(self.sweep.run, p, now, report) for p in platforms]:
                    future.result()
        with self._lock:  # in memory only: the heartbeat writes it (a write here would delay the next send)
            self.swept.update(dict.fromkeys(platforms, self.clock()))
        if housekeeping:  # a whole sweep on its own (``run --once``): no heartbeat will write it
            workers.record_sweeps(self)
        return report

    def claim(self, platform: str, now: dt.datetime) -> Claim:
        """Claim the platform's next due delivery (see :meth:`bot.engine.sweep.Sweep.claim`)."""
        return self.sweep.claim(platform, now)

    def take(self, session: Session, delivery_id: int, now: dt.datetime, started: dt.datetime, *,
             key: str | None = None) -> DeliveryRow | None:
        """Claim one delivery by compare-and-set; the claimed row, or ``None`` when another process won.

        ``key`` is the idempotency key to commit with the intent when the delivery has none yet.
        """
        return self.transitions.claim(session, delivery_id, now, started, lead=self.lead, key=key)

    def backoff(self, attempts: int) -> dt.timedelta:
        """Exponential backoff with full jitter in its upper half: base * 2^(n-1) * [0.5, 1)."""
        base = self.settings.backoff.total_seconds() * (2 ** max(0, attempts - 1))
        return dt.timedelta(seconds=min(base, 6 * 3600) * (0.5 + self.rng.random() / 2))

    # ------------------------------------------------------------------ reporting

    def emit(self, report: RunReport, event: Event) -> None:
        with self._lock:
            report.events.append(event)
        log.info("%s: %s %s %d/%d of story %s (delivery %d)%s", event.action, event.platform, event.kind, event.part,
                 event.parts, event.story_id, event.delivery_id, f": {event.detail}" if event.detail else "",
                 extra={"event": event.action, "delivery": event.delivery_id, "platform": event.platform,
                        "story": event.story_id})
        if self.on_event is not None:
            self.on_event(event)

    def event(self, action: str, row: DeliveryRow, detail: str = "", **extra: Any) -> Event:
        return Event(action, row.id, row.story_id, row.platform, row.kind, row.part, row.parts, self.mask(detail),
                     at=extra.pop("at", None), text=row.text, **extra)

    def record_posted(self, row: DeliveryRow, ref: PostRef, report: RunReport, detail: str = "",
                      parent: PostRef | None = None) -> None:
        """Record the platform's id and URL right after it answered, with the text and payload sent.

        ``row`` is the delivery as claimed: the record says what went out, whatever the row says now.
        """
        at = self.transitions.posted(row, ref)
        slot = queries.parent_slot(row)
        if parent is None and slot is not None:
            with self.store.session() as session:
                parent = queries.ref_of(session, row, *slot)
        self.emit(report, self.event("posted", row, detail, at=at, remote_id=ref.id,
                                     reply_to=parent.id if parent else None))

    # ------------------------------------------------------------------ recovery and workers

    def reconcile(self, now: dt.datetime, report: RunReport | None = None, *, all_sending: bool = False
                  ) -> RunReport:
        """Settle deliveries left ``sending`` by a crash (see :func:`bot.engine.recovery.reconcile`)."""
        return recovery.reconcile(self, now, report if report is not None else RunReport(), all_sending=all_sending)

    def ensure_platform_rows(self) -> None:
        workers.ensure_platform_rows(self)

    def register(self) -> None:
        workers.register(self)

    def heartbeat(self) -> None:
        workers.heartbeat(self)

    def deregister(self) -> None:
        workers.deregister(self)
