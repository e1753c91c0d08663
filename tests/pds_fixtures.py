"""pytest fixtures for the local Bluesky reference server (see tests/pds_harness.py).

Import them where needed: ``from tests.pds_fixtures import pds, pds_account``.

``pds`` skips only when Node.js is missing. When node is there, a failed install or start is an
error of every test that uses it, with the server log in the message: a broken harness must not
pass silently as a skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pds_harness import Account, LocalPDS, PDSError, ensure_installed, node_available


@pytest.fixture(scope="session")
def pds() -> Iterator[LocalPDS]:
    """One local PDS (+ in-memory PLC) on 127.0.0.1 for the whole test session."""
    if not node_available():
        pytest.skip("Node.js is not installed: the local Bluesky server cannot run")
    try:
        ensure_installed()
    except PDSError as e:
        pytest.fail(f"could not install the local Bluesky server: {e}", pytrace=False)
    server = LocalPDS()
    try:
        server.start(install=False)
    except PDSError as e:
        pytest.fail(f"could not start the local Bluesky server: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pds_account(pds: LocalPDS) -> Account:
    """A fresh account (handle ``bot<hex>.test``) on the session's local PDS."""
    return pds.create_account("bot")
