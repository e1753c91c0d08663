"""The benchmark cases. Each returns rows: benchmark, metric, value, unit, target, verdict."""

from __future__ import annotations

import datetime as dt
import json
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
from bot.app import build_engine
from bot.config import load_settings
from bot.queue import Planner
from bot.runner import run_forever
from bot.store import Store
from posts.loader import load_stories
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


def _settings(folder: Path, **extra: str) -> Any:
    return load_settings({"database_url": f"sqlite:///{folder / 'bench.db'}",
                          "transcript": str(folder / "transcript.jsonl"), **extra}, environ={}, env_file=None)


def punctuality(quick: bool = False) -> list[dict[str, Any]]:
    """Sandbox mode in real time: how late each post goes out against its due time."""
    count, span = (150, 15) if quick else (500, 60)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = _settings(folder, platforms="x,reddit,bluesky", recheck="1s")
        store = Store(settings.database_url)
        rng = random.Random(7)
        start = dt.datetime.now(UTC) + dt.timedelta(seconds=3)
        per_platform = count // 3
        stories = []
        for i in range(per_platform):
            due = start + dt.timedelta(seconds=span * i / per_platform)
            stories.append(_story(i, rng, (due - dt.timedelta(days=365)).replace(tzinfo=UTC)))
        # A year earlier in UTC is the same wall time (2025 and 2026 have 365 days): exact due times.
        Planner(store, settings).load([_fix_year(s) for s in stories], now=dt.datetime.now(UTC), render=True)
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
        records = read_transcript(settings.transcript_path)
        due_by_key = {}
        from sqlalchemy import select

        from bot.models import DeliveryRow

        with store.session() as session:
            for row in session.scalars(select(DeliveryRow).where(DeliveryRow.kind == "root")):
                due_by_key[row.key] = row.due_at
        late = sorted((dt.datetime.fromisoformat(r["posted_at"]) - due_by_key[r["key"]]).total_seconds() * 1000
                      for r in records if r["key"] in due_by_key)
        store.dispose()
    p50, p99 = _pct(late, 50), _pct(late, 99)
    # Baseline: a loop that polls once a minute (cron-style) posts each item at the next whole minute.
    base = sorted(((60 - (i * span / per_platform + 3) % 60) % 60) * 1000 for i in range(per_platform))
    return [
        _row("punctuality", f"posts measured ({len(late)} of {per_platform * 3})", len(late), "posts"),
        _row("punctuality", "lateness p50", p50, "ms"),
        _row("punctuality", "lateness p99", p99, "ms", "<= 50 ms", p99 <= 50),
        _row("punctuality", "once-a-minute poller p50", _pct(base, 50), "ms"),
        _row("punctuality", "once-a-minute poller p99", _pct(base, 99), "ms"),
        _row("punctuality", "poller p99 / ours p99", _pct(base, 99) / max(p99, 0.001), "x"),
    ]


def _fix_year(story: Story) -> Story:
    import dataclasses

    assert isinstance(story.date, dt.datetime)
    return dataclasses.replace(story, date=story.date.replace(year=story.date.year))


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def rendering(quick: bool = False) -> list[dict[str, Any]]:
    """Render stories for all three platforms: stories per second."""
    count = 1000 if quick else 10_000
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
    return [_row("rendering", f"{count:,} stories x 3 platforms", statistics.median(runs), "stories/s")]


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
    conn.executemany("INSERT INTO stories VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.close()
    return time.perf_counter() - started


ALL: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "punctuality": punctuality,
    "rendering": rendering,
    "loading": loading,
}
