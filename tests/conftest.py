"""Shared fixtures: settings, a fresh store, stories, and a guard that keeps tests off the network."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.fake import FakeAdapter
from bot.config import Settings, load_settings
from bot.engine import Engine
from bot.queue import Planner
from bot.store import Store
from posts.story import Story

UTC = dt.UTC
DATA = Path(__file__).parent / "data"

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
        if not (host.startswith("127.") or host in ("localhost", "::1")):
            raise OSError(f"tests may only connect to loopback, not {host!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit and integration tests talk to loopback servers only."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**options: Any) -> Settings:
        base = {"database_url": f"sqlite:///{tmp_path / 'queue.db'}",
                "transcript": str(tmp_path / "transcript.jsonl")}
        base.update({k: str(v) for k, v in options.items()})
        return load_settings(base, environ={}, env_file=None)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    db = Store(settings.database_url)
    yield db
    db.dispose()


def story(sid: str = "s1", date: dt.date | dt.datetime = dt.date(2025, 3, 1), **fields: Any) -> Story:
    """A story with sensible defaults for tests."""
    values: dict[str, Any] = {
        "headline": f"Headline of {sid}",
        "summary": "A short summary.",
        "url": f"https://example.com/{sid}",
        "one_year_later": "It turned out fine.",
    }
    values.update(fields)
    return Story(id=sid, date=date, **values)


@pytest.fixture
def fakes() -> dict[str, FakeAdapter]:
    return {p: FakeAdapter(p) for p in ("x", "reddit", "bluesky")}


@pytest.fixture
def clock() -> dict[str, dt.datetime]:
    return {"t": dt.datetime(2026, 1, 1, tzinfo=UTC)}


@pytest.fixture
def engine(store: Store, settings: Settings, fakes: dict[str, FakeAdapter], clock: dict[str, dt.datetime]) -> Engine:
    return Engine(store, fakes, settings, clock=lambda: clock["t"], worker="test-worker")


@pytest.fixture
def planner(store: Store, settings: Settings) -> Planner:
    return Planner(store, settings)
