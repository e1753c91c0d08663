"""The local Bluesky reference server harness, driven through the real ``atproto`` SDK.

SDK login on a bare PDS (the Bluesky adapter needs the same):
    ``client.login(handle, password)`` first creates the session, then fetches the account's
    profile with ``app.bsky.actor.getProfile``. A PDS without an AppView answers that with HTTP 400
    "No service configured for app.bsky.actor.getProfile", which atproto 0.0.73 does not count as
    "method not served", so plain ``login()`` raises although the session was created. Instead::

        client = Client(base_url=pds_url)
        client.login(handle, password, fetch_bsky_profile=False)   # only com.atproto.server.createSession
        did = client.com.atproto.server.get_session().did          # public API, served by every PDS

    ``client.me`` then stays ``None``, so every call that defaults its repo to ``client.me.did``
    (``send_post`` & co.) needs the DID passed explicitly (``profile_identify=did``), or use the record
    namespaces with ``repo=did`` as below (``send_post`` without it raises ``LoginRequiredError``).
    The same calls work unchanged on bsky.social. There, createSession also returns a DID document
    and the SDK moves its base URL to the account's PDS; the local PDS returns none, so the client
    stays on ``http://127.0.0.1:<port>``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import httpx
import pytest
from atproto import Client, models
from atproto_client.exceptions import BadRequestError, RequestErrorBase

from tests.pds_fixtures import pds, pds_account  # noqa: F401 - pytest fixtures
from tests.pds_harness import Account, LocalPDS

pytestmark = pytest.mark.pds

_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"


def make_tid(micros: int | None = None, clock_id: int = 0) -> str:
    """A record key in TID format: 53-bit microsecond timestamp + 10-bit clock id, base32-sortable."""
    if micros is None:
        micros = time.time_ns() // 1000
    value = (micros << 10) | (clock_id & 0x3FF)
    return "".join(_TID_ALPHABET[(value >> (5 * i)) & 0x1F] for i in reversed(range(13)))


def login(pds_url: str, account: Account) -> tuple[Client, str]:
    """Log in on a PDS that may have no AppView; return the client and the account's DID."""
    client = Client(base_url=pds_url)
    client.login(account.handle, account.password, fetch_bsky_profile=False)
    did = client.com.atproto.server.get_session().did
    return client, did


def post_record(client: Client, text: str) -> models.AppBskyFeedPost.Record:
    return models.AppBskyFeedPost.Record(text=text, created_at=client.get_current_time_iso())


def test_make_tid_format() -> None:
    tid = make_tid(1_700_000_000_000_000, 5)
    assert len(tid) == 13 and tid[0] in "234567abcdefghij"
    assert make_tid(1) < make_tid(2) < make_tid(2, 1)


def test_server_listens_on_loopback_only(pds: LocalPDS) -> None:  # noqa: F811
    assert pds.url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{pds.url}/xrpc/_health").status_code == 200
    desc = httpx.get(f"{pds.url}/xrpc/com.atproto.server.describeServer").json()
    assert desc["availableUserDomains"] == [".test"] and desc["inviteCodeRequired"] is True
    if shutil.which("ss") is None:
        pytest.skip("ss is not installed")
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    local = [line.split()[3] for line in out.splitlines() if f"pid={pds.pid}," in line]
    assert sorted(int(addr.rsplit(":", 1)[1]) for addr in local) == sorted([pds.port, pds.plc_port])
    assert all(addr.startswith("127.0.0.1:") for addr in local), local


def test_create_account(pds: LocalPDS, pds_account: Account) -> None:  # noqa: F811
    assert pds_account.did.startswith("did:plc:")
    assert pds_account.handle.endswith(".test") and pds_account.handle.startswith("bot")
    other = pds.create_account("another-long-prefix")
    assert other.did != pds_account.did and len(other.handle.removesuffix(".test")) <= 18


def test_post_with_chosen_rkey_is_idempotent(pds: LocalPDS, pds_account: Account) -> None:  # noqa: F811
    client, did = login(pds.url, pds_account)
    assert did == pds_account.did
    assert client.me is None

    rkey = make_tid()
    created = client.app.bsky.feed.post.create(did, post_record(client, "one year ago today"), rkey=rkey)
    assert created.uri == f"at://{did}/app.bsky.feed.post/{rkey}"

    got = client.app.bsky.feed.post.get(did, rkey)
    assert got.uri == created.uri and got.cid == created.cid
    assert got.value.text == "one year ago today"

    # Same rkey again: the PDS refuses (HTTP 500, not 409) and keeps the first record.
    with pytest.raises(RequestErrorBase) as excinfo:
        client.app.bsky.feed.post.create(did, post_record(client, "a second try"), rkey=rkey)
    assert excinfo.value.response is not None and excinfo.value.response.status_code == 500

    listed = client.app.bsky.feed.post.list(did)
    assert list(listed.records) == [created.uri]
    assert client.app.bsky.feed.post.get(did, rkey).cid == created.cid


def test_post_length_is_checked_in_graphemes(pds: LocalPDS, pds_account: Account) -> None:  # noqa: F811
    client, did = login(pds.url, pds_account)

    with pytest.raises(BadRequestError) as excinfo:
        client.app.bsky.feed.post.create(did, post_record(client, "a" * 301), rkey=make_tid())
    assert excinfo.value.response.status_code == 400
    assert excinfo.value.response.content.error == "InvalidRequest"

    # 300 graphemes pass even when they are 1200 bytes.
    ok = client.app.bsky.feed.post.create(did, post_record(client, "\U0001f600" * 300), rkey=make_tid())
    assert client.app.bsky.feed.post.get(did, ok.uri.rsplit("/", 1)[1]).value.text == "\U0001f600" * 300
    assert list(client.app.bsky.feed.post.list(did).records) == [ok.uri]


def test_local_pds_stops_cleanly_and_removes_its_data() -> None:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed: the local Bluesky server cannot run")
    with LocalPDS() as server:
        pid, tmp_dir = server.pid, server.tmp_dir
        assert server.running and tmp_dir is not None and tmp_dir.is_dir()
        os.kill(pid, 0)  # alive
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # exited and reaped
    assert not tmp_dir.exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.url}/xrpc/_health", timeout=2)
