"""Fixtures of the dashboard tests: settings, a store with stories, a TestClient, and a story file."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bot.config import Settings, load_settings
from bot.planner import Planner
from bot.store import Store
from bot.web import create_app
from posts.loader import load_stories
from tests.web.helpers import BASE, NOW, STORIES


@pytest.fixture
def web_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**options: Any) -> Settings:
        base = {"database_url": f"sqlite:///{tmp_path / 'queue.db'}",
                "transcript": str(tmp_path / "transcript.jsonl")}
        base.update({k: str(v) for k, v in options.items()})
        return load_settings(base, environ={}, env_file=None)

    return make


@pytest.fixture
def settings(web_settings: Callable[..., Settings]) -> Settings:
    return web_settings()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    db = Store(settings.database_url)
    yield db
    db.dispose()


@pytest.fixture
def story_file(tmp_path: Path) -> Path:
    path = tmp_path / "stories.yaml"
    path.write_text(STORIES, encoding="utf-8")
    return path


@pytest.fixture
def loaded(store: Store, settings: Settings, story_file: Path) -> Store:
    """The store with the three stories of :data:`STORIES` queued (as `oneyearago load` does)."""
    Planner(store, settings).load(load_stories([story_file]), now=NOW)
    return store


@pytest.fixture
def make_client(settings: Settings, store: Store) -> Callable[..., TestClient]:
    def make(*, settings_: Settings | None = None, **kwargs: Any) -> TestClient:
        kwargs.setdefault("clock", lambda: NOW)
        app = create_app(settings_ or settings, store, **kwargs)
        return TestClient(app, base_url=BASE, follow_redirects=False)

    return make


@pytest.fixture
def client(make_client: Callable[..., TestClient], loaded: Store) -> TestClient:
    return make_client()
