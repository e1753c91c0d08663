"""The run loop: a ``schedule.Scheduler`` of its own, with one job per platform that wakes at that
platform's next due time, and one housekeeping job.

A platform's job hands the sweep to that platform's own worker thread, so a slow or failing platform
never delays another one's posts. The loop itself holds no logic: it sleeps until the earliest job
is due (or a worker finishes), and SIGINT/SIGTERM let the posts in flight finish before it returns.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import schedule
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.engine import HOUSEKEEPING, Engine, RunReport
from bot.sdnotify import SystemdNotifier
from posts.clock import utcnow
from posts.errors import StoreError

if TYPE_CHECKING:
    from bot.conversation import ConversationSweep
    from bot.links import LinkChecker
    from bot.notify import Notifier

log = logging.getLogger(__name__)

LEAD = dt.timedelta(milliseconds=40)
"""The loop wakes this much before a due time, claims the delivery and commits its intent, then sends
exactly at the due time."""


def side_job(what: str, job: Callable[[], object]) -> None:
    """Run one of ``run``'s side jobs (link checks, notifications, the conversation sweep) once.

    An exception is logged, never raised: a failing side job never stops or delays a post, in
    ``run`` (:func:`every`) as in ``run --once``. ``what`` names the job in the log.
    """
    try:
        job()
    except Exception:
        log.exception("%s failed; trying again at its next time", what)


def every(stop: threading.Event, interval: dt.timedelta, job: Callable[[], object], name: str,
          what: str = "") -> threading.Thread:
    """Run ``job`` now, then every ``interval``, on a daemon thread of its own (``name``) until ``stop`` is set.

    Each run goes through :func:`side_job`, so a slow or failing one never delays a post: an exception
    is logged (as ``what``, by default the thread's name) and the job runs again at its next time.
    """

    def loop() -> None:
        while not stop.is_set():
            side_job(what or name, job)
            stop.wait(interval.total_seconds())

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


class RunLock:
    """One sending process per SQLite database: an OS lock (``flock``) on ``<database file>.run.lock``.

    ``run`` holds it for as long as it runs, ``run --once`` while it delivers; ``run --dry-run``
    never takes it. The kernel releases it when its holder exits, however it exits (SIGKILL
    included), so a dead holder never blocks the next run. The file itself stays: deleting it while
    locked would let another process lock a new file of the same name. PostgreSQL needs no such
    lock (its workers share the queue through row locks and compare-and-set claims).
    """

    def __init__(self, path: Path, role: str):
        self.path = path
        self.role = role
        self._fd: int | None = None

    @classmethod
    def for_database(cls, url: str, role: str) -> RunLock | None:
        """The lock of the SQLite file ``url`` names; ``None`` for PostgreSQL or an in-memory database."""
        try:
            parsed = make_url(url)
        except ArgumentError:
            return None
        database = parsed.database or ""
        if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
            return None
        if database.startswith("file:"):  # a SQLite URI (``?uri=true``)
            database, _, query = database[len("file:"):].partition("?")
            if "mode=memory" in query or not database:
                return None
        path = Path(database)
        return cls(path.with_name(path.name + ".run.lock"), role)

    def acquire(self, *, wait: bool = False) -> bool:
        """Take the lock; without ``wait``, ``False`` at once when another process holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot open the run lock {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        started = utcnow().strftime("%Y-%m-%d %H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {started} {self.role}\n".encode(), 0)
        self._fd = fd
        return True

    def holder(self) -> tuple[str, str]:
        """Who holds the lock, as (role, description), from what the holder wrote in the file."""
        try:
            pid, day, time, role = self.path.read_text(encoding="utf-8").strip().split(" ", 3)
        except (OSError, ValueError):
            return "", "another process"
        return role, f"`{role}`, pid {pid}, since {day} {time} UTC"

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


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

    def reschedule(self) -> None:
        self._schedule_next_run()


class PlatformWorker:
    """One platform's sweeps, run one at a time on a thread of their own."""

    def __init__(self, engine: Engine, platform: str, on_done: Callable[[PlatformWorker, RunReport], None]):
        self.engine = engine
        self.platform = platform
        self.on_done = on_done
        self.busy = threading.Event()
        self.idle_ticks = 0
        self._thread: threading.Thread | None = None

    def start_sweep(self) -> None:
        if self.busy.is_set():
            return
        self.busy.set()
        self._thread = threading.Thread(target=self._sweep, name=f"sweep-{self.platform}", daemon=True)
        self._thread.start()

    def _sweep(self) -> None:
        report = RunReport()
        try:
            report = self.engine.run_once(self.engine.clock(), platforms=[self.platform], housekeeping=False)
        except Exception:
            log.exception("sweep of %s failed; trying again after the next re-check", self.platform)
        finally:
            self.idle_ticks = 0 if report.events else self.idle_ticks + 1
            self.busy.clear()
            self.on_done(self, report)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


def build_scheduler(engine: Engine, *, recheck: dt.timedelta, on_report: Callable[[RunReport], None] | None = None,
                    kick: threading.Event | None = None
                    ) -> tuple[schedule.Scheduler, dict[str, WakeJob], dict[str, PlatformWorker]]:
    """A fresh scheduler: a job per platform (its next due time) and a housekeeping job."""
    scheduler = schedule.Scheduler()
    kick = kick or threading.Event()
    jobs: dict[str, WakeJob] = {}
    workers: dict[str, PlatformWorker] = {}

    def done(worker: PlatformWorker, report: RunReport) -> None:
        if on_report is not None and report.events:
            on_report(report)
        kick.set()

    def wake_for(worker: PlatformWorker) -> Callable[[], dt.datetime]:
        def next_wake() -> dt.datetime:
            now = engine.clock()
            ceiling = now + recheck
            if worker.busy.is_set():
                return ceiling  # rescheduled when the sweep in flight ends
            due = engine.next_wake(now, platforms=[worker.platform], include_render=False)
            if due is None:
                return ceiling
            due -= engine.lead
            if due <= now and worker.idle_ticks:
                # Due, but the last sweep could do nothing (woken a hair early, or a root about to be
                # marked missed): look again shortly, then back off so a stuck row cannot make it spin.
                pause = dt.timedelta(milliseconds=min(1000, 20 * 4 ** (worker.idle_ticks - 1)))
                due = now + min(recheck, pause)
            return max(now, min(due, ceiling))

        return next_wake

    def housekeeping_wake() -> dt.datetime:
        now = engine.clock()
        render_at = engine.planner.next_render()
        when = now + HOUSEKEEPING
        return min(when, max(now, render_at)) if render_at is not None else when

    def housekeep() -> None:
        report = engine.housekeeping(engine.clock())
        if on_report is not None and report.events:
            on_report(report)
        for job in jobs.values():
            job.reschedule()

    WakeJob(scheduler, housekeeping_wake).do(housekeep)

    for platform in engine.adapters:
        worker = workers[platform] = PlatformWorker(engine, platform, done)
        job = jobs[platform] = WakeJob(scheduler, wake_for(worker))
        job.do(worker.start_sweep)

    return scheduler, jobs, workers


def run_forever(engine: Engine, *, recheck: dt.timedelta, stop: threading.Event | None = None,
                on_report: Callable[[RunReport], None] | None = None, install_signals: bool = True,
                on_start: Callable[[], None] | None = None, systemd: SystemdNotifier | None = None,
                metrics_addr: str = "", on_metrics: Callable[[Any], None] | None = None,
                link_checker: LinkChecker | None = None, notifier: Notifier | None = None,
                conversations: ConversationSweep | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set); the posts in flight always finish.

    Under systemd (``Type=notify``) ``systemd`` says ``READY=1`` once the loop has started, feeds the
    watchdog from the loop itself (so a loop that stops sweeping stops feeding, and systemd restarts
    it) and says ``STOPPING=1`` on the way out.

    With ``metrics_addr`` (``host:port``, ``ONEYEARAGO_METRICS_ADDR``), serve ``/metrics``, ``/healthz`` and
    ``/readyz`` there for as long as the loop runs (:class:`bot.metrics.MetricsServer`; ``on_metrics`` is
    handed the started server).

    With ``link_checker`` (and link checking on: ``ONEYEARAGO_LINK_CHECK``), the links of the stories due
    soon are checked every :data:`bot.links.CHECK_EVERY` in a thread of its own: a slow site or a failing
    check never delays or stops a post. With ``notifier``, the operator is told what needs them every
    :data:`bot.notify.CHECK_EVERY`; with ``conversations`` (and ``ONEYEARAGO_CONVERSATION_EVERY`` not off), the
    replies under recent threads are read every ``ONEYEARAGO_CONVERSATION_EVERY``: each in a thread of its own
    (:func:`every`).
    """
    stop = stop or threading.Event()
    systemd = systemd or SystemdNotifier({})
    server = None
    if metrics_addr:
        from bot.metrics import MetricsServer

        server = MetricsServer(engine.store, engine.settings, metrics_addr, clock=engine.clock)
    kick = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.warning("received %s: finishing the posts in flight, then stopping", signal.Signals(signum).name)
        stop.set()
        engine.stopping.set()
        kick.set()

    previous: dict[int, Any] = {}
    if install_signals and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handle)
    engine.lead = LEAD
    workers: dict[str, PlatformWorker] = {}
    engine.register()
    beat = threading.Event()

    def heartbeat() -> None:
        while not beat.wait(engine.settings.lease.total_seconds() / 3):
            try:
                engine.heartbeat()
            except Exception:
                log.exception("heartbeat failed; retrying")

    beater = threading.Thread(target=heartbeat, name="heartbeat", daemon=True)
    beater.start()
    side_stop = threading.Event()
    side_jobs: list[threading.Thread] = []
    try:
        if server is not None:
            server.start()
            if on_metrics is not None:
                on_metrics(server)
        if on_start is not None:
            on_start()
        engine.reconcile(engine.clock(), all_sending=engine.store.is_sqlite)
        if link_checker is not None and link_checker.enabled:
            from bot.links import CHECK_EVERY as LINKS_EVERY

            side_jobs.append(every(side_stop, LINKS_EVERY, link_checker.tick, "link-check", "the link check"))
        if notifier is not None:
            from bot.notify import CHECK_EVERY as NOTIFY_EVERY

            side_jobs.append(every(side_stop, NOTIFY_EVERY, notifier.tick, "notify", "the notification check"))
        if conversations is not None and conversations.enabled:
            side_jobs.append(every(side_stop, conversations.every, conversations.tick, "conversation",
                                       "the conversation sweep"))
        scheduler, jobs, workers = build_scheduler(engine, recheck=recheck, on_report=on_report, kick=kick)
        systemd.ready(f"running: {', '.join(engine.adapters)}")
        scheduler.run_all()  # sweep once at start: housekeeping, then catch up on anything already due
        while not stop.is_set():
            systemd.feed()
            scheduler.run_pending()
            if kick.is_set():
                kick.clear()
                for platform, job in jobs.items():
                    if not workers[platform].busy.is_set():
                        job.reschedule()
                continue
            idle = systemd.wait_limit(scheduler.idle_seconds)
            if idle is None or idle > 0:
                kick.wait(idle)
    finally:
        systemd.stopping()
        side_stop.set()
        for worker in workers.values():
            worker.join(timeout=60)
        for thread in side_jobs:  # a side job cut off by the interpreter's exit could leave a write half done
            thread.join(timeout=30)
        beat.set()
        if server is not None:
            server.stop()
        engine.deregister()
        for signum, handler in previous.items():  # type: ignore[assignment]
            signal.signal(signum, handler)
