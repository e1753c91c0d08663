"""The run loop wakes at the next due time (no fixed poll) and stops cleanly on signals."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time

import time_machine

from bot.runner import build_scheduler, run_forever
from tests.conftest import story

UTC = dt.UTC


def test_scheduler_sleeps_exactly_until_the_next_due_time(planner, engine, clock):
    planner.load([story("a", dt.datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC))], now=clock["t"])
    start = dt.datetime(2026, 3, 1, 11, 59, 0, tzinfo=UTC)
    clock["t"] = start
    with time_machine.travel(start, tick=False):
        scheduler, jobs, _ = build_scheduler(engine, recheck=dt.timedelta(hours=1))
        assert {(job.next_run - dt.datetime.now()).total_seconds() for job in jobs.values()} == {60.25}
        assert scheduler.idle_seconds == 30  # housekeeping comes first


def test_an_idle_queue_rechecks_at_the_configured_interval(engine, clock):
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    clock["t"] = start
    with time_machine.travel(start, tick=False):
        _, jobs, _ = build_scheduler(engine, recheck=dt.timedelta(seconds=15))
        assert {(job.next_run - dt.datetime.now()).total_seconds() for job in jobs.values()} == {15}


def test_a_tick_delivers_and_reschedules_for_the_followup(planner, engine, clock, fakes):
    planner.load([story("a", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC))], now=clock["t"])
    due = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    clock["t"] = due
    with time_machine.travel(due, tick=False):
        _, jobs, workers = build_scheduler(engine, recheck=dt.timedelta(days=1))
        for platform, job in jobs.items():
            job.run()
            workers[platform].join(timeout=10)
        assert all(len(f.posts) == 1 for f in fakes.values())
        for job in jobs.values():
            job.reschedule()
            assert (job.next_run - dt.datetime.now()).total_seconds() == 6 * 3600


def test_run_forever_returns_when_asked_to_stop(planner, engine, clock, fakes):
    planner.load([story("a", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC))], now=clock["t"])
    clock["t"] = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    stop = threading.Event()
    reports = []

    def on_report(report):
        reports.append(report)
        stop.set()

    run_forever(engine, recheck=dt.timedelta(seconds=5), stop=stop, on_report=on_report, install_signals=False)
    assert sum(r.count("posted") for r in reports) >= 1


def test_sigterm_lets_the_process_finish_and_exit_zero(tmp_path):
    env = {**os.environ, "ONEYEARAGO_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}",
           "ONEYEARAGO_TRANSCRIPT": str(tmp_path / "t.jsonl")}
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline and "Ctrl-C" not in line:
        line += proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    out, errors = proc.communicate(timeout=30)
    assert proc.returncode == 0, errors
    assert "Stopped." in line + errors


def test_a_slow_platform_does_not_delay_another(planner, engine, clock, fakes):
    """X hangs on its post; Bluesky's post due a moment later still goes out on time."""
    import time as real_time

    base = dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    planner.load([story("slow", base, platforms=("x",)),
                  story("fast", base + dt.timedelta(seconds=1), platforms=("bluesky",))], now=clock["t"])
    release = threading.Event()
    slow_publish = fakes["x"].publish

    def hang(post):
        release.wait(10)
        return slow_publish(post)

    fakes["x"].publish = hang
    start = real_time.monotonic()
    clock["t"] = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    engine.clock = lambda: clock["t"] + dt.timedelta(seconds=real_time.monotonic() - start)
    stop = threading.Event()
    posted = {}

    def on_report(report):
        for event in report.events:
            if event.action == "posted":
                posted[event.platform] = real_time.monotonic() - start
        if "bluesky" in posted:
            release.set()
        if len(posted) == 2:
            stop.set()

    thread = threading.Thread(target=run_forever, args=(engine,), kwargs={
        "recheck": dt.timedelta(seconds=5), "stop": stop, "on_report": on_report, "install_signals": False})
    thread.start()
    thread.join(timeout=30)
    stop.set()
    release.set()
    assert posted["bluesky"] < 2.5  # due at +1 s, while X was still hanging
    assert posted["x"] >= posted["bluesky"]
