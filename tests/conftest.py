"""Shared fixtures: settings, a fresh store, stories, and a guard that keeps tests off the network."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from adapters.fake import FakeAdapter, FakeConfig
from bot.config import Settings, load_settings
from bot.engine import Engine
from bot.planner import Planner
from bot.store import Store
from bot.web.security import is_loopback
from posts.story import PLATFORMS, Story

# CI runs every property test on the same examples (derandomized), so a submission's result does not
# depend on luck; a run without the profile explores new examples each time, as development should.
hypothesis_settings.register_profile("ci", derandomize=True)
if os.environ.get("HYPOTHESIS_PROFILE"):
    hypothesis_settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])

UTC = dt.UTC
DATA = Path(__file__).parent / "data"

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
        if not is_loopback(host):
            raise OSError(f"tests may only connect to loopback, not {host!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit and integration tests talk to loopback servers only."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)


POSTGRES_URL = os.environ.get("ONEYEARAGO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_reachable() -> str | None:
    """Why PostgreSQL cannot be used for the tests, or None when it can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        psycopg.connect(POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3).close()
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_available() -> str | None:
    return _postgres_reachable()


@pytest.fixture
def postgres_url(postgres_available: str | None) -> Iterator[str]:
    """A PostgreSQL URL whose search path is a schema of this test's own, dropped afterwards."""
    if postgres_available:
        if os.environ.get("CI"):
            pytest.fail(postgres_available)
        pytest.skip(postgres_available)
    with postgres_schema() as url:
        yield url


@contextlib.contextmanager
def postgres_schema() -> Iterator[str]:
    """A PostgreSQL URL whose search path is a new schema, dropped when the block ends."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The queue database of a test: each test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def make_settings(tmp_path: Path, db_url: str) -> Callable[..., Settings]:
    def make(**options: Any) -> Settings:
        base = {"database_url": db_url,
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
def fakes(clock: dict[str, dt.datetime]) -> dict[str, FakeAdapter]:
    """In-memory platforms on the tests' clock: they date each post by it, and find posts since a time."""
    return {p: FakeAdapter(FakeConfig(p), clock=lambda: clock["t"]) for p in PLATFORMS}


@pytest.fixture
def clock() -> dict[str, dt.datetime]:
    return {"t": dt.datetime(2026, 1, 1, tzinfo=UTC)}


@pytest.fixture
def engine(store: Store, settings: Settings, fakes: dict[str, FakeAdapter], clock: dict[str, dt.datetime]) -> Engine:
    return Engine(store, fakes, settings, clock=lambda: clock["t"], worker="test-worker")


@pytest.fixture
def planner(store: Store, settings: Settings) -> Planner:
    return Planner(store, settings)


from tests.adapters.reddit_fixtures import reddit_target  # noqa: E402, F401 - real praw on the Reddit stand-in
from tests.pds_fixtures import pds, pds_account  # noqa: E402, F401 - the local Bluesky server, for every test
from tests.reference_fixtures import reference  # noqa: E402, F401 - twitter-text and friends, for every test

PDS_FIXTURES = frozenset({"pds", "pds_account", "bluesky_pds", "bluesky_account", "bluesky_target"})
"""The fixtures that start the local Bluesky server (tests/pds_fixtures.py, tests/adapters/bluesky_fixtures.py)."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``pds`` every test that asks, directly or through another fixture, for one that starts the
    Bluesky server, before ``-m`` selects: ``-m "not pds"`` then never starts it. (A test that reaches
    the server through ``request.getfixturevalue`` is marked by hand, as the contract test's case is.)"""
    for item in items:
        if PDS_FIXTURES.intersection(getattr(item, "fixturenames", ())) and item.get_closest_marker("pds") is None:
            item.add_marker(pytest.mark.pds)
