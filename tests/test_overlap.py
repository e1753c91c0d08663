"""Overlapping runs on one queue: every delivery goes out once, and what is recorded is what went out.

Cron starts overlap, a ``run --once`` may start beside a running ``run``, and a story may be edited
and loaded while a post is on its way. None of this may post anything twice, or record a text other
than the one sent.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from adapters.fake import FakeAdapter, FakeConfig
from adapters.sandbox import read_transcript
from bot.config import load_settings
from bot.engine import Engine
from bot.models import DeliveryRow
from bot.planner import Planner
from bot.runner import RunLock
from bot.store import Store
from tests.conftest import story
from tests.run_loop import wait_for

UTC = dt.UTC
T = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
"""When every root of these tests is due (their stories are dated a year before)."""


THREE = "x,reddit,bluesky"
"""The platforms of these runs (the counts below are of three; how runs overlap does not depend on it)."""


def run_env(db_url: str, transcript: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEYEARAGO_")}
    env.update({"ONEYEARAGO_DATABASE_URL": db_url, "ONEYEARAGO_MODE": "sandbox", "ONEYEARAGO_PLATFORMS": THREE,
                "ONEYEARAGO_TRANSCRIPT": str(transcript), "ONEYEARAGO_SANDBOX_LATENCY": "0.05",
                "ONEYEARAGO_RECHECK": "1s", "ONEYEARAGO_QUOTA_X_24H": "0", "ONEYEARAGO_QUOTA_X_15M": "0",
                "ONEYEARAGO_QUOTA_REDDIT_24H": "0", "ONEYEARAGO_QUOTA_BLUESKY_24H": "0",
                "ONEYEARAGO_QUOTA_BLUESKY_15M": "0", "ONEYEARAGO_BACKLOG_PACE": "0s", **extra})
    return env


def queue_stories(tmp_path: Path, count: int, followup_after: dt.timedelta) -> tuple[str, Path]:
    """``count`` stories whose roots are all due at :data:`T`, loaded into a fresh SQLite file."""
    db_url = f"sqlite:///{tmp_path / 'queue.db'}"
    transcript = tmp_path / "transcript.jsonl"
    settings = load_settings({"database_url": db_url, "transcript": str(transcript), "platforms": THREE},
                             environ={}, env_file=None)
    store = Store(settings.database_url)
    stories = [story(f"s{i}", T.replace(year=2025), headline=f"Story number {i}", one_year_later=f"Reveal {i}.",
                     followup_after=followup_after) for i in range(count)]
    Planner(store, settings).load(stories, now=T - dt.timedelta(days=30), render=True)
    store.dispose()
    return db_url, transcript


def bot(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot", *args]


def sent_twice(transcript: Path) -> dict[tuple[str, str, str, int], int]:
    counts = collections.Counter((r["platform"], r["story_id"], r["kind"], r["part"])
                                 for r in read_transcript(transcript))
    return {slot: n for slot, n in counts.items() if n > 1}


def recorded(db_url: str) -> list[DeliveryRow]:
    store = Store(db_url)
    try:
        with store.session() as session:
            return list(session.scalars(select(DeliveryRow)))
    finally:
        store.dispose()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_run_once_processes_beside_the_run_loop_send_every_delivery_exactly_once(tmp_path):
    # 40 stories x 3 platforms: 120 roots due at T, 120 replies due 3 s later.
    db_url, transcript = queue_stories(tmp_path, 40, dt.timedelta(seconds=3))
    env = run_env(db_url, transcript)
    later = (T + dt.timedelta(seconds=4)).isoformat()
    commands = [bot("run", "--once", "--now", T.isoformat()) for _ in range(3)]
    commands += [bot("run", "--once", "--now", later) for _ in range(2)]
    commands.append(bot("run", "--now", T.isoformat()))
    logs = [(tmp_path / f"out{i}.txt", tmp_path / f"err{i}.txt") for i in range(len(commands))]
    procs = []
    for command, (out, err) in zip(commands, logs, strict=True):
        with out.open("w") as stdout, err.open("w") as stderr:  # files: a full pipe would stall a process
            procs.append(subprocess.Popen(command, env=env, cwd=tmp_path, stdout=stdout, stderr=stderr))
    loop = procs[-1]
    try:
        for proc in procs[:-1]:
            proc.wait(60)
        # The loop posts whatever the --once runs left, the replies included; then it is stopped.
        wait_for(lambda: len(read_transcript(transcript)) >= 240, 40)
        loop.send_signal(signal.SIGTERM)
        loop.wait(30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    outputs = [(out.read_text(), err.read_text()) for out, err in logs]
    assert [p.returncode for p in procs] == [0] * len(procs), outputs
    for (out, err), command in zip(outputs[:-1], commands, strict=False):
        assert "Posted" in out or "another run is in progress" in err, (command, out, err)
    assert sent_twice(transcript) == {}
    records = read_transcript(transcript)
    assert len(records) == 240
    rows = recorded(db_url)
    assert len(rows) == 240 and {r.status for r in rows} == {"posted"}
    sent = {(r["platform"], r["story_id"], r["kind"], r["part"]): r for r in records}
    for row in rows:
        record = sent[(row.platform, row.story_id, row.kind, row.part)]
        assert (record["remote_id"], record["text"]) == (row.remote_id, row.text)


# ---------------------------------------------------------------------------- the claim


def test_a_claim_is_a_compare_and_set_that_only_one_engine_wins(store, settings, planner, fakes):
    planner.load([story("s1", T.replace(year=2025))], now=T - dt.timedelta(days=1))
    first = Engine(store, {"x": fakes["x"]}, settings, clock=lambda: T, worker="first")
    second = Engine(store, {"x": fakes["x"]}, settings, clock=lambda: T, worker="second")
    with store.session() as session:
        # Both engines see the same row due (as two processes reading before either writes).
        [seen_by_first] = first.due(session, T, "x")
        [seen_by_second] = second.due(session, T, "x")
    assert seen_by_first.id == seen_by_second.id
    with store.session() as session:
        won = first.take(session, seen_by_first.id, T, T)
    with store.session() as session:
        lost = second.take(session, seen_by_second.id, T, T)
    assert won is not None and lost is None
    [row] = [r for r in recorded_in(store) if r.platform == "x" and r.kind == "root"]
    assert (row.status, row.claimed_by, row.attempts) == ("sending", "first", 1)


def recorded_in(store: Store) -> list[DeliveryRow]:
    with store.session() as session:
        return list(session.scalars(select(DeliveryRow)))


# ---------------------------------------------------------------------------- edits while posting


class PauseBeforeClaim:
    """Runs ``during`` (on another thread) when the engine is about to commit a claim, then lets it go on.

    The claim waits for ``during`` to finish, at most ``patience`` seconds: on PostgreSQL the claim
    holds the row, so an edit of that row has to wait for the claim, not the other way round.
    """

    def __init__(self, store: Store, during: Any, patience: float = 1.0):
        self.during = during
        self.patience = patience
        self.thread: threading.Thread | None = None
        self.errors: list[BaseException] = []
        event.listen(store.engine, "before_cursor_execute", self._before)

    def _run(self) -> None:
        try:
            self.during()
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.thread is None and statement.startswith("UPDATE deliveries SET status"):
            self.thread = threading.Thread(target=self._run)
            self.thread.start()
            self.thread.join(self.patience)

    def join(self) -> None:
        assert self.thread is not None, "the engine never claimed anything"
        self.thread.join(30)
        assert not self.thread.is_alive() and not self.errors, self.errors


def test_an_edit_loaded_while_a_post_is_being_claimed_never_records_another_text(store, settings, fakes):
    when = T.replace(year=2025)
    Planner(store, settings).load([story("s1", when, headline="The first headline")], now=T - dt.timedelta(days=1))
    editor = Store(settings.database_url)  # the operator's `load`, a connection of its own
    reports = []

    def edit() -> None:
        reports.append(Planner(editor, settings).load([story("s1", when, headline="An edited headline")],
                                                      now=T - dt.timedelta(minutes=1)))

    pause = PauseBeforeClaim(store, edit)
    engine = Engine(store, {"x": fakes["x"]}, settings, clock=lambda: T, worker="w")
    engine.run_once(T)
    pause.join()
    editor.dispose()
    [sent] = fakes["x"].posts
    [row] = [r for r in recorded_in(store) if r.platform == "x" and r.kind == "root"]
    assert row.status == "posted"
    assert row.text == sent.post.payload["text"] and row.payload == sent.post.payload
    assert "edited" in row.text or reports[0].too_late, reports[0]


def test_an_edit_loaded_while_a_post_is_in_flight_is_too_late_for_it(store, settings):
    when = T.replace(year=2025)
    Planner(store, settings).load([story("s1", when, headline="The first headline")], now=T - dt.timedelta(days=1))
    editor = Store(settings.database_url)
    reports = []

    class EditWhileSending(FakeAdapter):
        def publish(self, post: Any) -> Any:
            reports.append(Planner(editor, settings).load([story("s1", when, headline="An edited headline")],
                                                          now=T - dt.timedelta(minutes=1)))
            return super().publish(post)

    adapter = EditWhileSending(FakeConfig("x"))
    Engine(store, {"x": adapter}, settings, clock=lambda: T, worker="w").run_once(T)
    editor.dispose()
    [sent] = adapter.posts
    [row] = [r for r in recorded_in(store) if r.platform == "x" and r.kind == "root"]
    assert row.status == "posted" and "first" in row.text
    assert row.text == sent.post.payload["text"] and row.payload == sent.post.payload
    assert any("x root is already sending" in line for line in reports[0].too_late), reports[0]


# ---------------------------------------------------------------------------- one sender per SQLite file


def start(command: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """A process whose stderr lines are collected as they come."""
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return proc, lines


@pytest.mark.slow
def test_beside_a_running_loop_run_once_exits_0_a_dry_run_works_and_a_killed_loop_blocks_nothing(tmp_path):
    db_url, transcript = queue_stories(tmp_path, 10, dt.timedelta(seconds=60))
    env = run_env(db_url, transcript, ONEYEARAGO_SANDBOX_LATENCY="0")
    loop, _ = start(bot("run", "--now", T.isoformat()), env, tmp_path)
    try:
        assert wait_for(lambda: len(read_transcript(transcript)) == 30, 30)  # the roots; replies in a minute
        once = subprocess.run(bot("run", "--once", "--now", (T + dt.timedelta(seconds=61)).isoformat()),
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert once.returncode == 0, once.stderr
        assert f"another run is in progress on this database (`run`, pid {loop.pid}, since " in once.stderr
        assert "this one sends nothing" in once.stderr and "Traceback" not in once.stderr
        as_json = subprocess.run(bot("run", "--once", "--json"), env=env, cwd=tmp_path, capture_output=True,
                                 text=True, timeout=30)
        report = json.loads(as_json.stdout)
        assert as_json.returncode == 0 and report["events"] == [] and f"pid {loop.pid}" in report["in_progress"]
        dry = subprocess.run(bot("run", "--dry-run", "--once", "--now", (T + dt.timedelta(seconds=61)).isoformat()),
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert dry.returncode == 0 and "30 posts would go out" in dry.stdout, dry.stdout + dry.stderr
        second = subprocess.run(bot("run"), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
        assert second.returncode == 1 and "already runs on this SQLite database" in second.stderr
        assert len(read_transcript(transcript)) == 30
    finally:
        loop.kill()  # SIGKILL: the kernel drops its lock
        loop.wait()
    after = subprocess.run(bot("run", "--once", "--now", (T + dt.timedelta(seconds=61)).isoformat()), env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert after.returncode == 0 and "Posted 30" in after.stdout, after.stdout + after.stderr
    assert sent_twice(transcript) == {} and len(read_transcript(transcript)) == 60


def test_the_run_loop_waits_for_a_run_in_progress_then_runs(tmp_path):
    db_url, transcript = queue_stories(tmp_path, 2, dt.timedelta(seconds=60))
    held = RunLock.for_database(db_url, "run --once")
    assert held is not None and held.acquire()  # a `run --once` delivering
    loop, stderr = start(bot("run", "--now", T.isoformat()), run_env(db_url, transcript), tmp_path)
    try:
        assert wait_for(lambda: any("waiting for it to finish" in line for line in stderr), 30), stderr
        assert f"(`run --once`, pid {os.getpid()}, since " in stderr[0]
        time.sleep(0.5)
        assert read_transcript(transcript) == [] and loop.poll() is None
        held.release()
        assert wait_for(lambda: len(read_transcript(transcript)) == 6, 30)
        loop.send_signal(signal.SIGTERM)
        assert loop.wait(30) == 0
    finally:
        held.release()
        if loop.poll() is None:
            loop.kill()
            loop.wait()


def test_only_a_sqlite_file_has_a_run_lock(tmp_path):
    lock = RunLock.for_database(f"sqlite:///{tmp_path}/q.db", "run")
    assert lock is not None and lock.path == tmp_path / "q.db.run.lock"
    assert RunLock.for_database("sqlite:///relative.db", "run").path == Path("relative.db.run.lock")
    assert RunLock.for_database("sqlite://", "run") is None
    assert RunLock.for_database("sqlite:///:memory:", "run") is None
    assert RunLock.for_database("postgresql+psycopg://u@h/db", "run") is None


def test_skip_never_marks_a_delivery_a_worker_claimed_meanwhile(store, settings):
    """`skip` reads the unsent deliveries, then marks them: one claimed in between is left to its worker."""
    from bot import ops
    from bot.models import DeliveryStatus as S

    when = T.replace(year=2025)
    Planner(store, settings).load([story("s1", when)], now=T - dt.timedelta(days=1))
    with store.session() as session:
        claimed_id = session.scalars(select(DeliveryRow.id).where(
            DeliveryRow.platform == "x", DeliveryRow.kind == "root")).one()
    worker = Store(settings.database_url)  # a worker's connection of its own

    def claim() -> None:
        with worker.session() as session:
            session.get(DeliveryRow, claimed_id).status = S.SENDING.value

    fired: list[bool] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not fired and statement.startswith("UPDATE deliveries SET status"):
            fired.append(True)
            thread = threading.Thread(target=claim)
            thread.start()
            thread.join(1.0)

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        skipped = ops.skip(store, "s1", T)
    finally:
        event.remove(store.engine, "before_cursor_execute", before)
        worker.dispose()
    assert fired
    statuses = {r.id: r.status for r in recorded_in(store)}
    assert statuses[claimed_id] == S.SENDING.value
    assert claimed_id not in {r.id for r in skipped}
    assert {r.id for r in skipped} == {i for i, st in statuses.items() if st == S.SKIPPED.value}
    assert len(skipped) == len(statuses) - 1
