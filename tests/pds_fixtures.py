"""pytest fixtures for the local Bluesky reference server (see tests/pds_harness.py).

They are registered for every test by tests/conftest.py. The server is one per test session: it is
kept on the pytest config and stopped when pytest finishes. ``pds`` skips only when Node.js is
missing; when node is there, a failed install or start is an error of every test that uses it,
with the server log in the message: a broken harness must not pass silently as a skip.
"""

from __future__ import annotations

import pytest

from tests.pds_harness import Account, LocalPDS, PDSError, ensure_installed, node_available

_SERVER = pytest.StashKey[LocalPDS]()
_FAILURE = pytest.StashKey[str]()


def shared_pds(config: pytest.Config) -> LocalPDS:
    """The session's local PDS, started on first use and stopped when pytest ends."""
    if not node_available():
        pytest.skip("Node.js is not installed: the local Bluesky server cannot run")
    if _FAILURE in config.stash:
        pytest.fail(config.stash[_FAILURE], pytrace=False)
    if _SERVER not in config.stash:
        try:
            ensure_installed()
            server = LocalPDS().start(install=False)
        except PDSError as exc:
            config.stash[_FAILURE] = f"could not install or start the local Bluesky server: {exc}"
            pytest.fail(config.stash[_FAILURE], pytrace=False)
        config.stash[_SERVER] = server
        config.add_cleanup(server.stop)
    return config.stash[_SERVER]


@pytest.fixture(scope="session")
def pds(request: pytest.FixtureRequest) -> LocalPDS:
    """One local PDS (+ in-memory PLC) on 127.0.0.1 for the whole test session."""
    return shared_pds(request.config)


@pytest.fixture
def pds_account(pds: LocalPDS) -> Account:
    """A fresh account (handle ``bot<hex>.test``) on the session's local PDS."""
    return pds.create_account("bot")
