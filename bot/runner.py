"""The run loop: a ``schedule.Scheduler`` of its own whose one job wakes at the next due time.

The loop itself holds no logic: it calls :meth:`bot.engine.Engine.run_once` whenever something
is due, and sleeps until the next due time (or the idle re-check, so stories loaded by another
process are noticed). SIGINT/SIGTERM let the post in flight finish, then the loop returns.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import schedule

from bot.engine import Engine, RunReport

log = logging.getLogger(__name__)


class WakeJob(schedule.Job):
    """A job whose next run is whatever ``next_wake()`` says, not a fixed interval."""

    def __init__(self, scheduler: schedule.Scheduler, next_wake: Callable[[], dt.datetime]):
        super().__init__(interval=1, scheduler=scheduler)
        self.unit = "seconds"
        self._next_wake = next_wake

    def _schedule_next_run(self) -> None:
        when = self._next_wake()
        # schedule keeps naive local times; convert the aware UTC wake time to that form.
        self.next_run = when.astimezone().replace(tzinfo=None)


LEAD = dt.timedelta(milliseconds=40)
"""The loop wakes this much before a due time, claims the delivery and commits its intent, then sends
exactly at the due time."""


def build_scheduler(engine: Engine, *, recheck: dt.timedelta, on_report: Callable[[RunReport], None] | None = None
                    ) -> tuple[schedule.Scheduler, WakeJob]:
    """A fresh scheduler with one job: sweep what is due, then sleep until the next due time."""
    scheduler = schedule.Scheduler()
    last = {"events": 1}

    def next_wake() -> dt.datetime:
        now = engine.clock()
        due = engine.next_wake(now)
        if due is not None:
            due -= engine.lead
        ceiling = now + recheck
        if due is not None and due <= now and not last["events"]:
            # Due but nothing could be done last time (e.g. a claim held elsewhere): do not spin.
            due = now + min(recheck, dt.timedelta(seconds=1))
        return ceiling if due is None else max(now, min(due, ceiling))

    def tick() -> None:
        report = engine.run_once(engine.clock())
        last["events"] = len(report.events)
        if on_report is not None and report.events:
            on_report(report)

    job = WakeJob(scheduler, next_wake)
    job.do(tick)
    return scheduler, job


def run_forever(engine: Engine, *, recheck: dt.timedelta, stop: threading.Event | None = None,
                on_report: Callable[[RunReport], None] | None = None, install_signals: bool = True,
                on_start: Callable[[], None] | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set); the post in flight always finishes."""
    stop = stop or threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.warning("received %s: finishing the post in flight, then stopping", signal.Signals(signum).name)
        stop.set()
        engine.stopping.set()

    previous: dict[int, Any] = {}
    if install_signals and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handle)
    engine.lead = LEAD
    try:
        if on_start is not None:
            on_start()
        engine.reconcile(engine.clock(), all_sending=engine.store.is_sqlite)
        scheduler, job = build_scheduler(engine, recheck=recheck, on_report=on_report)
        job.next_run = dt.datetime.now()  # sweep once at start: catch up on anything already due
        while not stop.is_set():
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            if idle is not None and idle > 0:
                stop.wait(idle)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
