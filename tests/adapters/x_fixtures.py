"""X as a target of the shared adapter contract test: the real adapter against the stand-in."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from adapters.base import PostRef
from adapters.x import XAdapter
from bot.config import Settings, load_settings
from bot.wiring import x_config
from tests.standins.x import XStandin

CREDENTIALS = ("ck-consumer-key-0001", "cs-consumer-secret-0002", "at-access-token-0003", "ts-token-secret-0004")
"""Made-up OAuth 1.0a keys; the stand-in checks every request is signed with them."""


def x_settings(tmp_path: Path, **options: Any) -> Settings:
    """Live settings for X with the made-up credentials (``options`` override)."""
    values = {"database_url": f"sqlite:///{tmp_path / 'queue.db'}", "mode": "live", "platforms": "x",
              "x_consumer_key": CREDENTIALS[0], "x_consumer_secret": CREDENTIALS[1],
              "x_access_token": CREDENTIALS[2], "x_access_token_secret": CREDENTIALS[3], "http_timeout": "5s"}
    values.update({k: str(v) for k, v in options.items()})
    return load_settings(values, environ={}, env_file=None)


@dataclasses.dataclass
class XTarget:
    adapter: XAdapter
    standin: XStandin
    mock: responses.RequestsMock

    def remove(self, ref: PostRef) -> None:
        """Delete the post on the stand-in (``thread_state`` then says GONE)."""
        self.standin.delete(ref.id)

    def lock(self, ref: PostRef) -> None:
        pytest.skip("X cannot close a post to its own author's replies (reply settings bind others only)")


@pytest.fixture
def x_target(tmp_path: Path) -> Iterator[XTarget]:
    standin = XStandin(credentials=CREDENTIALS)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        standin.install(mock)
        yield XTarget(XAdapter(x_config(x_settings(tmp_path))), standin, mock)
