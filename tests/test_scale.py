"""The engine's per-tick database work must not grow with the length of the queue.

Counted in SQLite virtual-machine steps (a progress handler), not in seconds: the count is the same
on a busy machine and a quiet one, and a query that reads every queued row shows up as a count that
grows with the queue. Timings at scale are in the benchmarks (``python -m bench tick growth``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert

from adapters.fake import FakeAdapter, FakeConfig
from bot.config import load_settings
from bot.engine import Engine
from bot.models import DeliveryRow, StoryRow
from bot.store import Store

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 1, 12, 0, 1, tzinfo=UTC)
FAR = dt.datetime(2030, 1, 1, tzinfo=UTC)


def _queue(folder: Path, size: int) -> tuple[Store, Engine, FakeAdapter]:
    """``size`` stories queued on X for 2030, plus one due now, with a few held back by a backoff."""
    settings = load_settings({"database_url": f"sqlite:///{folder / f'q{size}.db'}", "platforms": "x",
                              "transcript": str(folder / "t.jsonl")}, environ={}, env_file=None)
    store = Store(settings.database_url)
    stories, deliveries = [], []
    for i in range(size + 1):
        due = NOW - dt.timedelta(seconds=1) if i == 0 else FAR + dt.timedelta(minutes=i)
        stories.append({"id": f"s{i}", "seq": i + 1, "content": {}, "content_hash": "h", "origin": "", "window_day": None,
                        "root_due": due, "rendered": True, "created_at": NOW, "updated_at": NOW})
        deliveries.append({"story_id": f"s{i}", "platform": "x", "kind": "root", "part": 1, "parts": 1,
                           "due_at": due, "status": "pending", "payload": {"text": "t"}, "text": "t", "length": 1,
                           "limit": 280, "unit": "w", "attempts": 0, "created_at": NOW, "updated_at": NOW,
                           "not_before": FAR + dt.timedelta(days=1) if i % 1000 == 999 else None})
    with store.session() as session:
        session.execute(insert(StoryRow), stories)
        session.execute(insert(DeliveryRow), deliveries)
    fake = FakeAdapter(FakeConfig("x"))
    return store, Engine(store, {"x": fake}, settings, clock=lambda: NOW, worker="scale-test"), fake


def _steps(store: Store, work: Any) -> int:
    """SQLite virtual-machine steps that ``work()`` costs, over every connection it uses."""
    counted = [0]

    def count() -> int:
        counted[0] += 1
        return 0

    def attach(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.set_progress_handler(count, 1)

    store.engine.dispose()  # new connections only, each with the handler
    event.listen(store.engine, "connect", attach)
    try:
        work()
    finally:
        event.remove(store.engine, "connect", attach)
        store.engine.dispose()
    return counted[0]


def test_a_tick_costs_the_same_with_a_short_and_a_long_queue(tmp_path: Path) -> None:
    costs = {}
    for size in (500, 20_000):
        store, engine, fake = _queue(tmp_path, size)
        costs[size] = _steps(store, lambda engine=engine: (engine.run_once(NOW), engine.next_wake(NOW)))
        assert len(fake.posts) == 1, "the tick posts the one due delivery"
        store.dispose()
    # 40 times the queue: a query that reads the platform's rows would cost about 40 times as much
    assert costs[20_000] < 2 * costs[500], costs
