"""Several workers on one PostgreSQL queue: every delivery sent exactly once, even when one is killed."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.sandbox import read_transcript
from bot.config import load_settings
from bot.engine import Engine
from bot.models import DeliveryRow
from bot.planner import Planner
from bot.store import Store
from posts.errors import StoreError
from tests.conftest import story

UTC = dt.UTC


THREE = "x,reddit,bluesky"
"""The platforms of these runs: what a worker does does not depend on how many there are, and three keep
the run as long as it was measured to be."""


def worker_env(db_url: str, transcript: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEYEARAGO_")}
    env.update({"ONEYEARAGO_DATABASE_URL": db_url, "ONEYEARAGO_MODE": "sandbox", "ONEYEARAGO_PLATFORMS": THREE, "ONEYEARAGO_TRANSCRIPT":
                str(transcript), "ONEYEARAGO_SANDBOX_LATENCY": "0.01", "ONEYEARAGO_LEASE": "3s", "ONEYEARAGO_SETTLE": "3s",
                "ONEYEARAGO_RECHECK": "1s", "ONEYEARAGO_QUOTA_X_24H": "0", "ONEYEARAGO_QUOTA_X_15M": "0",
                "ONEYEARAGO_QUOTA_REDDIT_24H": "0", "ONEYEARAGO_QUOTA_BLUESKY_24H": "0",
                "ONEYEARAGO_QUOTA_BLUESKY_15M": "0", "ONEYEARAGO_BACKLOG_PACE": "0s", **extra})
    return env


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_four_workers_send_each_delivery_exactly_once_and_survive_a_killed_one(postgres_url, tmp_path):
    transcript = tmp_path / "transcript.jsonl"
    settings = load_settings({"database_url": postgres_url, "transcript": str(transcript), "platforms": THREE},
                             environ={}, env_file=None)
    store = Store(settings.database_url)
    soon = dt.datetime.now(UTC) + dt.timedelta(seconds=5)
    # 500 stories x 3 platforms x (root + reply) = 3000 deliveries, due within the next few seconds.
    stories = [story(f"s{i}", (soon + dt.timedelta(milliseconds=4 * i)).replace(year=soon.year - 1),
                     one_year_later=f"Reveal {i}.", followup_after=dt.timedelta(seconds=2)) for i in range(500)]
    Planner(store, settings).load(stories, now=dt.datetime.now(UTC), render=True)
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(DeliveryRow))
    assert total == 3000
    env = worker_env(postgres_url, transcript)
    procs = [subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for _ in range(4)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(read_transcript(transcript)) < 600:
            time.sleep(0.1)
        procs[0].send_signal(signal.SIGKILL)  # mid-run: it may hold claims on posts in flight
        procs[0].wait(timeout=10)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with store.session() as session:
                posted = session.scalar(select(func.count()).where(DeliveryRow.status == "posted"))
            if posted == total:
                break
            time.sleep(0.5)
    finally:
        for proc in procs[1:]:
            proc.send_signal(signal.SIGTERM)
        for proc in procs[1:]:
            proc.wait(timeout=60)
    records = read_transcript(transcript)
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)), "a delivery was sent twice"
    with store.session() as session:
        statuses = dict(session.execute(select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)).all())
        db_keys = set(session.scalars(select(DeliveryRow.key)))
    if statuses != {"posted": total}:
        with store.session() as session:
            for r in session.scalars(select(DeliveryRow).where(DeliveryRow.status != "posted").limit(8)):
                parent = session.scalar(select(DeliveryRow.status).where(DeliveryRow.story_id == r.story_id,
                                                                        DeliveryRow.platform == r.platform,
                                                                        DeliveryRow.kind == "root"))
                print("STUCK", r.id, r.story_id, r.platform, r.kind, r.status, r.due_at, r.not_before,
                      r.attempts, r.claimed_by, r.last_error, "root:", parent)
        for proc in procs[1:]:
            print(proc.stderr.read().decode()[-2000:])
    assert statuses == {"posted": total}
    assert set(keys) == db_keys and len(keys) == total
    failed = [(p.returncode, p.stderr.read().decode()[-3000:]) for p in procs[1:] if p.returncode != 0]
    assert not failed, failed
    workers_that_sent = {r.get("worker") for r in records}
    assert workers_that_sent  # (the sandbox does not record workers; the DB attempt log does)


def test_a_second_worker_on_sqlite_is_refused_with_a_pointer_to_postgresql(tmp_path):
    settings = load_settings({"database_url": f"sqlite:///{tmp_path / 'q.db'}"}, environ={}, env_file=None)
    store = Store(settings.database_url)
    first = Engine(store, {}, settings, worker=f"otherhost:{os.getpid()}")
    first.register()
    second = Engine(store, {}, settings, worker="thishost:2")
    with pytest.raises(StoreError, match="SQLite supports one worker.*PostgreSQL"):
        second.register()


def test_a_killed_worker_on_sqlite_does_not_block_its_restart(tmp_path):
    settings = load_settings({"database_url": f"sqlite:///{tmp_path / 'q.db'}"}, environ={}, env_file=None)
    store = Store(settings.database_url)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    Engine(store, {}, settings, worker=f"{socket.gethostname()}:{dead.pid}").register()
    Engine(store, {}, settings, worker=f"{socket.gethostname()}:{os.getpid()}").register()


@pytest.mark.postgres
def test_a_bulk_load_on_postgresql_refreshes_the_planner_statistics(postgres_url):
    """Without fresh statistics the claim's parent check scanned every posted row (60 ms a claim at 3,000)."""
    from sqlalchemy import text

    settings = load_settings({"database_url": postgres_url}, environ={}, env_file=None)
    store = Store(settings.database_url)
    try:
        def analysed() -> dict[str, Any]:
            with store.engine.connect() as conn:
                return dict(conn.execute(text(
                    "SELECT relname, last_analyze FROM pg_stat_user_tables "
                    "WHERE schemaname = current_schema() AND relname IN ('deliveries', 'stories')")).all())

        planner = Planner(store, settings)
        planner.load([story("few")], now=dt.datetime(2025, 1, 1, tzinfo=UTC), render=True)
        assert not any(analysed().values())  # a small load leaves it to autovacuum
        stories = [story(f"s{i}", dt.date(2025, 3, 1) + dt.timedelta(days=i % 30)) for i in range(250)]
        planner.load(stories, now=dt.datetime(2025, 1, 1, tzinfo=UTC), render=True)
        after = analysed()
        assert after.get("deliveries") is not None and after.get("stories") is not None
    finally:
        store.dispose()


def two_workers_at_once(postgres_url: str, statement: str, prepare: Callable[[Engine, list[str]], None],
                        act: Callable[[Engine], None]) -> Store:
    """Two workers, on PostgreSQL, whose platforms come in opposite orders (``prepare`` gets each engine
    and its order), run ``act`` at the same moment. Each pauses after its first statement beginning with
    ``statement`` until the other has run its own first (or two seconds have passed): taken in each one's
    order, each held a row the other waited for, and PostgreSQL aborted one with "deadlock detected".
    Returns a store to look at the result with (the caller disposes of it); fails on any error."""
    import threading

    from sqlalchemy import event

    from adapters.fake import FakeAdapter, FakeConfig

    settings = load_settings({"database_url": postgres_url}, environ={}, env_file=None)
    at = dt.datetime(2026, 1, 1, tzinfo=UTC)
    rendezvous = threading.Barrier(2, timeout=2)
    stores: list[Store] = []
    engines: list[Engine] = []
    for name, order in (("a:1", ["x", "reddit"]), ("b:2", ["reddit", "x"])):
        store = Store(settings.database_url)
        stores.append(store)
        engine = Engine(store, {p: FakeAdapter(FakeConfig(p)) for p in order}, settings, clock=lambda: at,
                        worker=name)
        prepare(engine, order)
        first: list[bool] = []

        @event.listens_for(store.engine, "after_cursor_execute")
        def after(conn: Any, cursor: Any, sql: str, *args: Any, first: list[bool] = first) -> None:
            if sql.startswith(statement) and not first:
                first.append(True)
                try:
                    rendezvous.wait()
                except threading.BrokenBarrierError:
                    pass  # the other is waiting for this one's row: go on

        engines.append(engine)
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        try:
            act(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
    finally:
        stores[1].dispose()
    return stores[0]


@pytest.mark.postgres
def test_two_workers_writing_their_sweep_times_at_once_lock_the_platforms_in_one_order(postgres_url):
    """Two workers whose sweeps ended in opposite orders write their sweep times at the same moment:
    written in the order the sweeps ended, PostgreSQL aborted one with "deadlock detected", which made a
    worker's exit after SIGTERM fail. Written in one order, the second waits for the first, and both finish.
    """
    from bot.engine import workers
    from bot.models import PlatformRow

    def prepare(engine: Engine, order: list[str]) -> None:
        engine.ensure_platform_rows()
        at = engine.clock()
        engine.swept.update({p: at + dt.timedelta(seconds=i) for i, p in enumerate(order)})

    store = two_workers_at_once(postgres_url, "UPDATE platforms", prepare, workers.record_sweeps)
    try:
        with store.session() as session:
            written = dict(session.execute(select(PlatformRow.name, PlatformRow.swept_at)).all())
        assert set(written) == {"x", "reddit"} and all(written.values())
    finally:
        store.dispose()


@pytest.mark.postgres
def test_two_workers_starting_at_once_create_the_platform_rows_in_one_order(postgres_url):
    """Two first starts on an empty queue, with their platforms in opposite orders, create the platform
    rows at the same moment: in the adapters' order each waited for the other's uncommitted row and
    PostgreSQL aborted one with "deadlock detected"; in one order the second waits and both start."""
    from bot.models import PlatformRow

    store = two_workers_at_once(postgres_url, "INSERT INTO platforms", lambda engine, order: None,
                                lambda engine: engine.ensure_platform_rows())
    try:
        with store.session() as session:
            assert set(session.scalars(select(PlatformRow.name))) == {"x", "reddit"}
    finally:
        store.dispose()
