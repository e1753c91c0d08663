"""pytest fixtures for the Bluesky adapter against the real local PDS (tests/pds_harness.py).

Import what you use: ``from tests.adapters.bluesky_fixtures import bluesky_target`` (it needs no
other fixture), or ``bluesky_pds`` and ``bluesky_account``.

The server is one per test session however many modules import these fixtures: it is kept on the
pytest config and stopped when pytest finishes (a session-scoped fixture imported into several
modules is set up once per module). Without Node.js the fixtures skip; a broken install or start
fails.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import PostRef
from adapters.bluesky import POST, BlueskyAdapter, rkey_of
from bot.config import Settings, load_settings
from bot.wiring import bluesky_config
from tests.pds_fixtures import shared_pds
from tests.pds_harness import Account, LocalPDS


@pytest.fixture(scope="session")
def bluesky_pds(request: pytest.FixtureRequest) -> LocalPDS:
    """One local PDS (+ in-memory PLC) on 127.0.0.1 for the whole test session."""
    return shared_pds(request.config)


@pytest.fixture
def bluesky_account(bluesky_pds: LocalPDS) -> Account:
    """A fresh account (``bot<hex>.test``) on the session's PDS."""
    return bluesky_pds.create_account("bot")


def bluesky_settings(tmp_path: Path, pds_url: str, account: Account, **options: Any) -> Settings:
    """Live settings for ``account`` on ``pds_url``, the session kept in ``tmp_path``."""
    values = {"database_url": f"sqlite:///{tmp_path / 'queue.db'}", "mode": "live", "platforms": "bluesky",
              "bluesky_handle": account.handle, "bluesky_app_password": account.password,
              "bluesky_pds_url": pds_url, "bluesky_session_file": str(tmp_path / "bluesky-session"),
              "http_timeout": "20s"}
    values.update({k: str(v) for k, v in options.items()})
    return load_settings(values, environ={}, env_file=None)


def server_records(pds_url: str, did: str, collection: str = POST) -> list[dict[str, Any]]:
    """Every record of ``collection`` in ``did``'s repo, straight from the server (no adapter)."""
    answer = httpx.get(f"{pds_url}/xrpc/com.atproto.repo.listRecords",
                       params={"repo": did, "collection": collection, "limit": 100}, timeout=30)
    answer.raise_for_status()
    return answer.json()["records"]


def server_record(pds_url: str, uri: str) -> dict[str, Any] | None:
    """One record ``{uri, cid, value}`` straight from the server, or ``None``."""
    repo, collection, rkey = rkey_of(uri)
    answer = httpx.get(f"{pds_url}/xrpc/com.atproto.repo.getRecord",
                       params={"repo": repo, "collection": collection, "rkey": rkey}, timeout=30)
    if answer.status_code == 400 and answer.json().get("error") == "RecordNotFound":
        return None
    answer.raise_for_status()
    return answer.json()


class BlueskyTarget:
    """A ready adapter on a fresh account, and what the contract test does to its posts."""

    def __init__(self, pds: LocalPDS, account: Account, settings: Settings,
                 clock: Callable[[], dt.datetime] | None = None):
        """``settings`` may point the adapter elsewhere (a proxy); ``remove`` and ``records`` use ``pds``."""
        self.pds = pds
        self.account = account
        self.settings = settings
        self.adapter = BlueskyAdapter(bluesky_config(settings), **({"clock": clock} if clock else {}))

    def remove(self, ref: PostRef) -> None:
        """Delete the post on the server (``thread_state`` then says GONE)."""
        repo, collection, rkey = rkey_of(ref.extra.get("uri") or ref.id)
        answer = httpx.post(f"{self.pds.url}/xrpc/com.atproto.repo.deleteRecord",
                            json={"repo": repo, "collection": collection, "rkey": rkey},
                            headers={"Authorization": f"Bearer {self._access_token()}"}, timeout=30)
        answer.raise_for_status()

    def lock(self, ref: PostRef) -> None:
        pytest.skip("Bluesky: our own account can always reply (a threadgate only limits others)")

    def records(self) -> list[dict[str, Any]]:
        """The account's posts on the server."""
        return server_records(self.pds.url, self.account.did)

    def _access_token(self) -> str:
        answer = httpx.post(f"{self.pds.url}/xrpc/com.atproto.server.createSession",
                            json={"identifier": self.account.handle, "password": self.account.password},
                            timeout=30)
        answer.raise_for_status()
        return answer.json()["accessJwt"]


@pytest.fixture
def bluesky_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlueskyTarget]:
    """A Bluesky adapter posting to a fresh account on the session's local PDS.

    It asks for no other fixture by name, so importing it alone is enough.
    """
    server = shared_pds(request.config)
    account = server.create_account("bot")
    target = BlueskyTarget(server, account, bluesky_settings(tmp_path, server.url, account))
    yield target
    target.adapter.client.request.close()
