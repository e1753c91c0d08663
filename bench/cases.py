"""The benchmark cases. Each returns rows: benchmark, metric, value, unit, target, verdict."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.sandbox import read_transcript
from bot.config import load_settings
from bot.planner import Planner
from bot.runner import run_forever
from bot.sources.stories import load_stories
from bot.store import Store
from bot.wiring import build_adapters, build_engine
from posts.render import render
from posts.story import Story

UTC = dt.UTC
WORDS = ("model chip policy lab release court ruling startup funding open weights benchmark agent safety "
         "compute datacenter regulators investors researchers launch").split()


def _row(benchmark: str, metric: str, value: float, unit: str, target: str = "", ok: bool | None = None
         ) -> dict[str, Any]:
    return {"benchmark": benchmark, "metric": metric, "value": value, "unit": unit, "target": target,
            "verdict": "" if ok is None else ("yes" if ok else "NO")}


def _story(i: int, rng: random.Random, when: dt.date | dt.datetime | None = None) -> Story:
    return Story(
        id=f"s{i}", date=when or dt.date(2025, 1, 1) + dt.timedelta(days=i % 365),
        headline=" ".join(rng.choices(WORDS, k=12)).capitalize(),
        summary=" ".join(rng.choices(WORDS, k=35)).capitalize() + ".",
        body=" ".join(rng.choices(WORDS, k=120)) + ".", category="research", source="Wire",
        url=f"https://example.com/news/{i}", one_year_later=" ".join(rng.choices(WORDS, k=45)).capitalize() + ".",
    )


NO_QUOTAS = {"backlog_pace": "0s", "quota_x_24h": "0", "quota_x_15m": "0", "quota_reddit_24h": "0",
             "quota_reddit_15m": "0", "quota_bluesky_24h": "0", "quota_bluesky_15m": "0"}
"""Quotas hold posts back on purpose (X allows 100 a day by default): timing benchmarks turn them off."""


BENCH_PLATFORMS = "x,reddit,bluesky"
"""The platforms the queue benchmarks post to unless they say otherwise: the three of every figure
recorded since the first run (docs/benchmarks.md), so that runs stay comparable as platforms are added."""


def _settings(folder: Path, **extra: str) -> Any:
    return load_settings({"database_url": f"sqlite:///{folder / 'bench.db'}", "platforms": BENCH_PLATFORMS,
                          "transcript": str(folder / "transcript.jsonl"), **extra}, environ={}, env_file=None)


def punctuality(quick: bool = False) -> list[dict[str, Any]]:
    """Sandbox mode in real time: how late each post goes out against its due time.

    The baseline is the same engine driven the way cron-driven bots are: one sweep at every whole
    minute. It runs on a copy of the same queue after the real-time run, on a simulated clock that
    stands at the minute and then moves on in real time, so its lateness is the wait for the next
    minute plus its own real sending time (and the benchmark does not wait the extra minute).
    """
    count, span = (60, 8) if quick else (500, 60)
    per_platform = count // 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = _settings(folder, platforms="x,reddit,bluesky", recheck="1s", **NO_QUOTAS)
        store = Store(settings.database_url)
        rng = random.Random(7)
        start = dt.datetime.now(UTC) + dt.timedelta(seconds=3)
        stories = []
        for i in range(per_platform):
            due = start + dt.timedelta(seconds=span * i / per_platform)
            stories.append(_story(i, rng, _year_before(due)))
        Planner(store, settings).load(stories, now=dt.datetime.now(UTC), render=True)
        engine = build_engine(settings, store)
        stop = threading.Event()
        thread = threading.Thread(target=run_forever, args=(engine,),
                                  kwargs={"recheck": settings.recheck, "stop": stop, "install_signals": False})
        thread.start()
        deadline = time.monotonic() + span + 15
        while time.monotonic() < deadline:
            if len(read_transcript(settings.transcript_path)) >= per_platform * 3:
                break
            time.sleep(0.5)
        stop.set()
        engine.stopping.set()
        thread.join(timeout=30)
        late = _lateness(store, settings.transcript_path)
        store.dispose()
        base = _poller(folder, stories)
    p50, p99 = _pct(late, 50), _pct(late, 99)
    return [
        _row("punctuality", f"posts measured ({len(late)} of {per_platform * 3})", len(late), "posts"),
        _row("punctuality", "lateness p50", p50, "ms"),
        _row("punctuality", "lateness p99", p99, "ms", "<= 50 ms", p99 <= 50),
        _row("punctuality", f"once-a-minute poller p50 ({len(base)} posts)", _pct(base, 50), "ms"),
        _row("punctuality", "once-a-minute poller p99", _pct(base, 99), "ms"),
        _row("punctuality", "poller p99 / ours p99", _pct(base, 99) / max(p99, 0.001), "x"),
    ]


def _year_before(due: dt.datetime) -> dt.datetime:
    """The story date (UTC) whose one-year anniversary is exactly ``due``."""
    try:
        return due.replace(year=due.year - 1)
    except ValueError:
        raise SystemExit("no story has its anniversary on 29 February: run this benchmark on another day") from None


def _lateness(store: Store, transcript: Path) -> list[float]:
    """Milliseconds between each root's due time and the moment the sandbox recorded it."""
    from sqlalchemy import select

    from bot.models import DeliveryRow

    with store.session() as session:
        due_by_key = {row.key: row.due_at for row in
                      session.scalars(select(DeliveryRow).where(DeliveryRow.kind == "root",
                                                                DeliveryRow.key.is_not(None)))}
    return sorted((dt.datetime.fromisoformat(r["posted_at"]) - due_by_key[r["key"]]).total_seconds() * 1000
                  for r in read_transcript(transcript) if r["key"] in due_by_key)


def _poller(folder: Path, stories: list[Story]) -> list[float]:
    """Lateness (ms) of the same queue swept once a minute, at each whole minute, as cron would."""
    settings = _settings(folder, platforms="x,reddit,bluesky", database_url=f"sqlite:///{folder / 'poller.db'}",
                         transcript=str(folder / "poller.jsonl"), **NO_QUOTAS)
    store = Store(settings.database_url)
    Planner(store, settings).load(stories, now=dt.datetime.now(UTC), render=True)
    state = {"poll": dt.datetime.now(UTC), "started": time.perf_counter()}

    def clock() -> dt.datetime:
        return state["poll"] + dt.timedelta(seconds=time.perf_counter() - state["started"])

    engine = build_engine(settings, store, clock=clock)
    from sqlalchemy import func, select

    from bot.models import DeliveryRow

    with store.session() as session:
        first, last = session.execute(select(func.min(DeliveryRow.due_at), func.max(DeliveryRow.due_at))
                                      .where(DeliveryRow.kind == "root")).one()
    poll = first.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    while poll - dt.timedelta(minutes=1) <= last:
        state["poll"], state["started"] = poll, time.perf_counter()
        engine.run_once(poll, platforms=list(engine.adapters))
        poll += dt.timedelta(minutes=1)
    late = _lateness(store, settings.transcript_path)
    store.dispose()
    return late


def _pct(values: list[float], pct: float) -> float:
    """The ``pct``-th percentile by nearest rank: the smallest value with ``pct`` % of them at or below it."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = math.ceil(pct / 100 * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]


def rendering(quick: bool = False) -> list[dict[str, Any]]:
    """Render stories for all three platforms: stories per second."""
    count = 500 if quick else 3000
    rng = random.Random(3)
    stories = [_story(i, rng) for i in range(count)]
    runs = []
    for _ in range(3):
        from posts import render as render_module

        render_module._x_line.cache_clear()
        render_module._bluesky_line.cache_clear()
        started = time.perf_counter()
        for story in stories:
            for platform in ("x", "bluesky", "reddit"):
                render(story, platform)
        runs.append(count / (time.perf_counter() - started))
    mastodon = []
    for _ in range(3):
        started = time.perf_counter()
        for story in stories:
            render(story, "mastodon")
        mastodon.append(count / (time.perf_counter() - started))
    return [_row("rendering", f"{count:,} stories x 3 platforms", statistics.median(runs), "stories/s"),
            _row("rendering", f"{count:,} stories, Mastodon alone", statistics.median(mastodon), "stories/s")]


_STORY_COLUMNS = "id, seq, content, content_hash, origin, window_day, root_due, rendered, created_at, updated_at"
"""The columns the benchmarks fill themselves (the others take their defaults)."""


def loading(quick: bool = False) -> list[dict[str, Any]]:
    """Load stories from JSON Lines into SQLite, against the floor of plain sqlite3.executemany."""
    count = 10_000 if quick else 100_000
    rng = random.Random(5)
    ours, floor = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "stories.jsonl"
        with source.open("w") as handle:
            for i in range(count):
                s = _story(i, rng)
                handle.write(json.dumps({"id": s.id, "date": s.calendar_date.isoformat(), "headline": s.headline,
                                         "summary": s.summary, "url": s.url, "category": s.category,
                                         "source": s.source, "one_year_later": s.one_year_later}) + "\n")
        for run in range(3):
            settings = _settings(folder, database_url=f"sqlite:///{folder / f'ours{run}.db'}")
            store = Store(settings.database_url)
            started = time.perf_counter()
            Planner(store, settings).load(load_stories([source]), now=dt.datetime.now(UTC))
            ours.append(count / (time.perf_counter() - started))
            store.dispose()
            floor.append(count / _floor(source, folder / f"floor{run}.db"))
    ratio = statistics.median(ours) / statistics.median(floor)
    return [
        _row("loading", f"{count:,} stories, JSON Lines -> SQLite", statistics.median(ours), "stories/s"),
        _row("loading", "floor: json.loads + sqlite3.executemany", statistics.median(floor), "stories/s"),
        _row("loading", "ours / floor", ratio, "x", ">= 0.33", ratio >= 1 / 3),
    ]


def _floor(source: Path, db: Path) -> float:
    """Seconds to read the same file and insert the same story rows with the standard library."""
    started = time.perf_counter()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE stories (id TEXT PRIMARY KEY, seq INTEGER, content TEXT, content_hash TEXT, "
                 "origin TEXT, window_day TEXT, root_due TEXT, rendered INTEGER, created_at TEXT, updated_at TEXT)")
    now = dt.datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = []
    with source.open() as handle:
        for seq, line in enumerate(handle, start=1):
            data = json.loads(line)
            rows.append((data["id"], seq, line, "", f"{source}:{seq}", data["date"], now, 0, now, now))
    conn.executemany(f"INSERT INTO stories ({_STORY_COLUMNS}) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()
    return time.perf_counter() - started


ALL: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "punctuality": punctuality,
    "rendering": rendering,
    "loading": loading,
}


def backlog(quick: bool = False) -> list[dict[str, Any]]:
    """300 deliveries due at once on three platforms at 100 ms latency, against one after another.

    Both sides run the same engine on fresh copies of the same queue: once as the run loop does it
    (each platform on its own thread, median of three runs), once one platform after another on a
    single thread, as a bot without per-platform workers would.
    """
    count = 30 if quick else 300
    latency = 0.1
    rng = random.Random(11)
    due = dt.datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    stories = [_story(i, rng, due + dt.timedelta(seconds=i % 30)) for i in range(count // 3)]
    at = dt.datetime(2026, 6, 1, 12, 1, tzinfo=UTC)

    def sweep(folder: Path, parallel: bool) -> tuple[float, int]:
        settings = _settings(folder, sandbox_latency=str(latency), **NO_QUOTAS)
        store = Store(settings.database_url)
        Planner(store, settings).load(stories, now=dt.datetime.now(UTC), render=True)
        from sqlalchemy import delete

        from bot.models import DeliveryRow

        with store.session() as session:  # roots only: the comparison is about sending, not threading
            session.execute(delete(DeliveryRow).where(DeliveryRow.kind == "followup"))
        engine = build_engine(settings, store, clock=lambda: at)
        started = time.perf_counter()
        if parallel:
            posted = engine.run_once(at).count("posted")
        else:
            posted = sum(engine.run_once(at, platforms=[p]).count("posted") for p in settings.platforms)
        wall = time.perf_counter() - started
        store.dispose()
        return wall, posted

    parallel, posted = [], set()
    for _ in range(2 if quick else 3):
        with tempfile.TemporaryDirectory() as tmp:
            wall, sent = sweep(Path(tmp), parallel=True)
            parallel.append(wall)
            posted.add(sent)
    with tempfile.TemporaryDirectory() as tmp:
        sequential, sent = sweep(Path(tmp), parallel=False)
        posted.add(sent)
    if posted != {len(stories) * 3}:
        raise RuntimeError(f"backlog: the runs posted {sorted(posted)} of {len(stories) * 3} deliveries; "
                           "the comparison would not be of the same work")
    wall = statistics.median(parallel)
    ratio = sequential / wall
    sent = len(stories) * 3
    return [
        _row("backlog", f"{sent} due at once, 3 platforms, {latency * 1000:.0f} ms latency", wall, "s"),
        _row("backlog", "the same, one platform after another", sequential, "s"),
        _row("backlog", "speed-up", ratio, "x", ">= 2.5", ratio >= 2.5),
        _row("backlog", "bound: latency alone, one after another / ours", sent * latency / wall, "x"),
    ]


def _queue_of(folder: Path, size: int) -> tuple[Any, Store]:
    """A SQLite queue holding ``size`` pending deliveries far in the future, plus one due now."""
    settings = _settings(folder, database_url=f"sqlite:///{folder / f'q{size}.db'}", platforms="x")
    store = Store(settings.database_url)
    conn = sqlite3.connect(folder / f"q{size}.db")
    conn.execute(f"INSERT INTO stories ({_STORY_COLUMNS}) VALUES ('s', 1, '{{}}', 'h', '', NULL, "
                 "'2030-01-01 00:00:00.000000', 1, "
                 "'2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000')")
    far = "2030-01-01 00:00:00.000000"
    rows = ((i, "s", "x", "root", i + 1, 1, far, "pending", None, '{"text": "t"}', "t", 1, 280, "w", 0, None, None,
             None, None, None, None, None, None, far, far) for i in range(size))
    conn.executemany("INSERT INTO deliveries (id, story_id, platform, kind, part, parts, due_at, status, key, payload, "
                     "text, length, length_limit, unit, attempts, last_error, not_before, claimed_by, claimed_until, "
                     "remote_id, remote_url, remote_extra, posted_at, created_at, updated_at) VALUES "
                     "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.execute("UPDATE deliveries SET due_at = '2026-06-01 12:00:00.000000' WHERE id = 0")
    conn.commit()
    conn.close()
    return settings, store


def _reset_due(store: Store) -> None:
    """Put the one due delivery of a :func:`_queue_of` queue back to pending, as if never sent."""
    from sqlalchemy import delete, update

    from bot.models import AttemptRow, DeliveryRow

    with store.session() as session:
        session.execute(update(DeliveryRow).where(DeliveryRow.id == 0).values(
            status="pending", key=None, attempts=0, claimed_by=None, claimed_until=None, look_again_at=None, remote_id=None,
            remote_url=None, remote_extra=None, posted_at=None, last_error=None, not_before=None))
        session.execute(delete(AttemptRow))


def _tick_costs(folder: Path, size: int, runs: int) -> dict[str, float]:
    """Median milliseconds of a claim, a whole engine tick that posts one delivery, and the wake-up query,
    with ``size`` deliveries queued."""
    from bot.engine import Engine
    from bot.engine.sweep import Claimed

    settings, store = _queue_of(folder, size)
    now = dt.datetime(2026, 6, 1, 12, 0, 1, tzinfo=UTC)
    claim, tick, wake = [], [], []
    engine = Engine(store, build_adapters(settings, clock=lambda: now), settings, clock=lambda: now, worker="bench")
    for _ in range(runs):
        started = time.perf_counter()
        claimed = engine.claim("x", now)
        claim.append(time.perf_counter() - started)
        assert isinstance(claimed, Claimed), "the due delivery was not claimed"
        _reset_due(store)
    engine = build_engine(settings, store, clock=lambda: now, worker="bench")
    for _ in range(runs):
        started = time.perf_counter()
        report = engine.run_once(now)
        tick.append(time.perf_counter() - started)
        assert report.count("posted") == 1, "the tick did not post the due delivery"
        _reset_due(store)
        started = time.perf_counter()
        engine.next_wake(now)
        wake.append(time.perf_counter() - started)
    store.dispose()
    return {name: statistics.median(values) * 1000 for name, values in
            (("claim", claim), ("tick", tick), ("wake", wake))}


def tick(quick: bool = False) -> list[dict[str, Any]]:
    """One engine tick (housekeeping, claim, send, record) with 1,000 and with 1,000,000 deliveries queued."""
    big = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        small_costs = _tick_costs(Path(tmp), 1000, 20)
        big_costs = _tick_costs(Path(tmp), big, 20)
    rows = []
    for name, label, target in (("tick", "engine tick posting one delivery", True),
                                ("claim", "claim of the next due delivery", False),
                                ("wake", "next wake-up query", False)):
        ratio = big_costs[name] / small_costs[name]
        rows += [_row("tick", f"{label}, 1,000 queued", small_costs[name], "ms"),
                 _row("tick", f"{label}, {big:,} queued", big_costs[name], "ms"),
                 _row("tick", f"{label}: ratio", ratio, "x", "<= 2" if target else "",
                      ratio <= 2 if target else None)]
    return rows


def idle(quick: bool = False) -> list[dict[str, Any]]:
    """CPU seconds and peak memory of `oneyearago run` with a queue due only in the future."""
    import os
    import signal
    import subprocess
    import sys

    seconds = 8 if quick else 60
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = _settings(folder)
        store = Store(settings.database_url)
        rng = random.Random(2)
        # anniversaries two to six weeks from today: nothing to send, and nothing to render a day ahead
        first = dt.date.today() - dt.timedelta(days=365 - 14)
        Planner(store, settings).load([_story(i, rng, first + dt.timedelta(days=i % 28)) for i in range(200)],
                                      now=dt.datetime.now(UTC))
        store.dispose()
        env = {**os.environ, "ONEYEARAGO_DATABASE_URL": settings.database_url,
               "ONEYEARAGO_TRANSCRIPT": str(folder / "t.jsonl")}
        launched = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

        def cpu() -> float:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        # Start-up (imports, schema check, first housekeeping) is not idling: it is reported on its
        # own, and the idle minute starts once the process has used no CPU for a whole second.
        time.sleep(1)
        last = cpu()
        while time.monotonic() - launched < 30:
            time.sleep(1)
            now_cpu = cpu()
            if now_cpu == last:
                break
            last = now_cpu
        startup, startup_wall = last, time.monotonic() - launched
        before = cpu()
        time.sleep(seconds)
        used = cpu() - before
        rss = 0
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) / 1024
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    per_minute = used * 60 / seconds
    return [
        _row("idle", f"start-up CPU (settled after {startup_wall:.0f} s)", startup, "CPU s"),
        _row("idle", f"CPU over {seconds} s idle (scaled to 60 s)", per_minute, "CPU s", "< 0.1", per_minute < 0.1),
        _row("idle", "peak memory (RSS)", rss, "MB", "< 100", rss < 100),
    ]


def workers(quick: bool = False) -> list[dict[str, Any]]:
    """Deliveries per second with 1, 2 and 4 worker processes on PostgreSQL at 100 ms latency."""
    import os
    import signal
    import subprocess
    import sys
    import uuid

    try:
        import psycopg

        base = os.environ.get("ONEYEARAGO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
        plain = base.replace("postgresql+psycopg://", "postgresql://")
        psycopg.connect(plain, connect_timeout=3).close()
    except Exception as exc:
        return [_row("workers", f"skipped: PostgreSQL not reachable ({type(exc).__name__})", 0, "")]
    count, lead = (45, 2.5) if quick else (300, 6)
    rates = {}
    for n in (1, 2, 4):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{base}?options=-csearch_path%3D{schema}"
        with tempfile.TemporaryDirectory() as tmp:
            settings = _settings(Path(tmp), database_url=url)
            store = Store(url)
            rng = random.Random(n)
            soon = dt.datetime.now(UTC) + dt.timedelta(seconds=lead)
            Planner(store, settings).load([_story(i, rng, _year_before(soon)) for i in range(count // 3)],
                                          now=dt.datetime.now(UTC), render=True)
            from sqlalchemy import delete, func, select

            from bot.models import DeliveryRow

            with store.session() as session:
                session.execute(delete(DeliveryRow).where(DeliveryRow.kind == "followup"))
            env = {k: v for k, v in os.environ.items() if not k.startswith("ONEYEARAGO_")}
            env.update({"ONEYEARAGO_DATABASE_URL": url, "ONEYEARAGO_TRANSCRIPT": str(Path(tmp) / "t.jsonl"),
                        "ONEYEARAGO_SANDBOX_LATENCY": "0.1", "ONEYEARAGO_BACKLOG_PACE": "0s",
                        "ONEYEARAGO_QUOTA_X_24H": "0", "ONEYEARAGO_QUOTA_X_15M": "0",
                        "ONEYEARAGO_QUOTA_REDDIT_24H": "0", "ONEYEARAGO_QUOTA_BLUESKY_24H": "0",
                        "ONEYEARAGO_QUOTA_BLUESKY_15M": "0", "ONEYEARAGO_RECHECK": "1s"})
            procs = [subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL) for _ in range(n)]
            try:
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline:
                    with store.session() as session:
                        left = session.scalar(select(func.count()).where(DeliveryRow.status != "posted"))
                    if left == 0:
                        break
                    time.sleep(0.2)
                with store.session() as session:
                    first, last = session.execute(select(func.min(DeliveryRow.posted_at),
                                                         func.max(DeliveryRow.posted_at))).one()
            finally:
                for proc in procs:
                    proc.send_signal(signal.SIGTERM)
                for proc in procs:
                    proc.wait(timeout=60)
            rates[n] = count / max((last - first).total_seconds(), 0.001)
            store.dispose()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    ratio = rates[4] / rates[1]
    return [_row("workers", f"{n} worker{'s' if n > 1 else ''}, {count} deliveries, 100 ms latency", rates[n],
                 "deliveries/s") for n in (1, 2, 4)] + [_row("workers", "4 workers / 1", ratio, "x", ">= 3", ratio >= 3)]


def growth(quick: bool = False) -> list[dict[str, Any]]:
    """How loading and ticking grow at 10x and 100x the base size."""
    loads = (100, 1000, 10_000) if quick else (500, 5000, 50_000)
    queues = (500, 5000, 50_000) if quick else (1000, 10_000, 100_000)
    load_rate, tick_ms = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in loads:
            folder = Path(tmp) / str(size)
            folder.mkdir()
            settings = _settings(folder)
            store = Store(settings.database_url)
            rng = random.Random(size)
            stories = [_story(i, rng) for i in range(size)]
            started = time.perf_counter()
            Planner(store, settings).load(stories, now=dt.datetime.now(UTC), render=False)
            load_rate[size] = size / (time.perf_counter() - started)
            store.dispose()
        for size in queues:
            tick_ms[size] = _tick_costs(Path(tmp), size, 10)["tick"]
    rows = [_row("growth", f"load {size:,} stories", load_rate[size], "stories/s") for size in loads]
    rows += [_row("growth", f"engine tick, {size:,} queued", tick_ms[size], "ms") for size in queues]
    for i in (1, 2):
        rows.append(_row("growth", f"load rate at {loads[i] // loads[0]}x / 1x", load_rate[loads[i]] / load_rate[loads[0]],
                         "x"))
    for i in (1, 2):
        rows.append(_row("growth", f"tick time at {queues[i] // queues[0]}x / 1x", tick_ms[queues[i]] / tick_ms[queues[0]],
                         "x"))
    return rows


ALL.update({"backlog": backlog, "tick": tick, "idle": idle, "workers": workers, "growth": growth})


def dashboard(quick: bool = False) -> list[dict[str, Any]]:
    """The dashboard's pages with a big queue: 100,000 stories loaded as a big load leaves them (story rows,
    rendered a day before they are due), the next two weeks rendered; and the Reddit preview of hostile text."""
    from sqlalchemy import event
    from starlette.testclient import TestClient

    from bot.web import create_app
    from bot.web.post_html import reddit_html

    count = 5_000 if quick else 100_000
    rng = random.Random(11)
    now = dt.datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp), **NO_QUOTAS)
        store = Store(settings.database_url)
        planner = Planner(store, settings)
        planner.load([_story(i, rng) for i in range(count)], now=now, render=False)
        rendered = planner.render_due(now + dt.timedelta(days=14), now=now, limit=count)
        client = TestClient(create_app(settings, store, clock=lambda: now), base_url="http://127.0.0.1:8080")
        writes: list[str] = []

        def watch(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE", "REPLACE"):
                writes.append(statement)

        event.listen(store.engine, "before_cursor_execute", watch)
        day = (now + dt.timedelta(days=21)).date().isoformat()
        pages = [("calendar, 2 weeks (rendered)", "/"),
                 ("calendar, 4 weeks (2 rendered, 2 not)", "/?weeks=4"),
                 ("calendar, 4 weeks from 3 weeks ahead (none rendered)", f"/?start={day}&weeks=4"),
                 ("a day's page 2", f"/?start={day}&day={day}&page=2"),
                 ("status", "/status"), ("story (rendered)", "/story/s4"), ("story (not rendered)", "/story/s200")]
        for label, path in pages:
            times, size = [], 0
            for _ in range(5):
                started = time.perf_counter()
                response = client.get(path)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, (path, response.status_code)
                size = len(response.content)
            seconds = statistics.median(times)
            rows.append(_row("dashboard", f"{label}, {count:,} stories queued ({size // 1024:,} KB)", seconds, "s",
                             "< 1", seconds < 1))
        rows.append(_row("dashboard", f"write statements during those GETs ({rendered:,} stories rendered before)",
                         len(writes), "", "0", not writes))
        store.dispose()
    for label, text in (("30,000 '['", "[" * 30_000), ("30,000 '*'", "*" * 30_000),
                        ("15,000 '>!'", ">!" * 15_000), ("8,000 '[a]('", "[a](" * 8_000)):
        started = time.perf_counter()
        reddit_html(text)
        seconds = time.perf_counter() - started
        rows.append(_row("dashboard", f"Reddit preview of {label}", seconds, "s", "< 1", seconds < 1))
    return rows


ALL["dashboard"] = dashboard
