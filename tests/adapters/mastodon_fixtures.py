"""Mastodon as a target of the shared adapter contract test: Mastodon.py against the stateful stand-in."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import PostRef
from adapters.mastodon import MastodonAdapter
from bot.config import Settings, load_settings
from bot.wiring import mastodon_config
from tests.standins.mastodon import TOKEN, MastodonMock


def mastodon_settings(tmp_path: Path, url: str, **options: Any) -> Settings:
    """Live settings for Mastodon on the stand-in at ``url`` (``options`` override)."""
    values = {"database_url": f"sqlite:///{tmp_path / 'queue.db'}", "mode": "live",
              "transcript": str(tmp_path / "transcript.jsonl"),
              "mastodon_api_base_url": url, "mastodon_access_token": TOKEN, "http_timeout": "10s"}
    values.update({k: str(v) for k, v in options.items()})
    return load_settings(values, environ={}, env_file=None)


@pytest.fixture(scope="session")
def mastodon_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MastodonMock]:
    """One stand-in per test session (and per xdist worker); it starts in about two seconds."""
    server = MastodonMock(tmp_path_factory.mktemp("mastodon-mock")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mastodon_mock(mastodon_server: MastodonMock) -> MastodonMock:
    """The stand-in, emptied of statuses and faults for this test."""
    mastodon_server.reset()
    return mastodon_server


@dataclasses.dataclass
class MastodonTarget:
    adapter: MastodonAdapter
    server: MastodonMock
    settings: Settings

    def remove(self, ref: PostRef) -> None:
        """The account deletes the status (``thread_state`` then says GONE)."""
        self.server.delete(ref.id)

    def lock(self, ref: PostRef) -> None:
        pytest.skip("Mastodon cannot close a status to replies (no reply controls for the author's own thread)")


@pytest.fixture
def mastodon_target(mastodon_mock: MastodonMock, tmp_path: Path) -> MastodonTarget:
    settings = mastodon_settings(tmp_path, mastodon_mock.url)
    return MastodonTarget(MastodonAdapter(mastodon_config(settings)), mastodon_mock, settings)
