"""Who may reply on Bluesky, against the real local reference server (tests/pds_harness.py).

The bot's root goes out with its threadgate in one ``applyWrites`` commit; the bot's own follow-up replies
under it; a second account's reply is looked at for what this server does with it. What the local server
is: the reference PDS alone. A PDS stores whatever valid records an account writes to its own repository,
a reply to a gated thread included: the gate is enforced by the AppView (``getPostThread`` then marks the
reply as not allowed, the app hides its reply button), which the local setup does not run. These tests
prove what the server really does, and no more.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.bluesky import POST, THREADGATE, BlueskyAdapter, rkey_of
from bot.config import Settings
from bot.wiring import bluesky_config
from tests.adapters.bluesky_fixtures import (  # noqa: F401 - pytest fixtures
    BlueskyTarget,
    bluesky_account,
    bluesky_pds,
    bluesky_settings,
    server_record,
    server_records,
)
from tests.conftest import story
from tests.pds_harness import Account, LocalPDS
from tests.standins.bluesky_proxy import FaultProxy

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
APPLY = "com.atproto.repo.applyWrites"
GET = "com.atproto.repo.getRecord"
pytestmark = pytest.mark.pds


@contextlib.contextmanager
def engine(settings: Settings, **fields: Any) -> Iterator[Any]:
    """An engine on a simulated clock with story s1 (due at NOW, its reveal in three parts) queued."""
    from bot.engine import Engine
    from bot.planner import Planner
    from bot.store import Store

    store = Store(settings.database_url)
    clock = {"t": NOW - dt.timedelta(days=1)}
    reveal = " ".join(f"Sentence number {i} tells part of how things turned out." for i in range(12))
    try:
        Planner(store, settings).load([story("s1", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
                                             one_year_later=reveal, **fields)], now=clock["t"])
        run = Engine(store, {"bluesky": BlueskyAdapter(bluesky_config(settings))}, settings,
                     clock=lambda: clock["t"], worker="test")

        def at(moment: dt.datetime) -> list[str]:
            clock["t"] = moment
            return [e.action for e in run.run_once(moment).events]

        yield at
    finally:
        store.dispose()


def everything_due(at: Any, settings: Settings) -> None:
    """Run the root, then the follow-up parts (the engine paces them a few seconds apart)."""
    for moment in [NOW] + [NOW + settings.followup_delay + dt.timedelta(seconds=15 * i) for i in range(8)]:
        at(moment)


def session(pds: LocalPDS, account: Account) -> dict[str, str]:
    answer = httpx.post(f"{pds.url}/xrpc/com.atproto.server.createSession",
                        json={"identifier": account.handle, "password": account.password}, timeout=30)
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['accessJwt']}"}


def reply_as(pds: LocalPDS, account: Account, root: dict[str, Any], text: str) -> httpx.Response:
    """A reply to ``root`` written by ``account`` into its own repository, as any client would."""
    ref = {"uri": root["uri"], "cid": root["cid"]}
    record = {"$type": POST, "text": text, "createdAt": "2026-03-01T12:30:00.000Z",
              "reply": {"root": ref, "parent": ref}}
    return httpx.post(f"{pds.url}/xrpc/com.atproto.repo.createRecord",
                      json={"repo": account.did, "collection": POST, "record": record},
                      headers=session(pds, account), timeout=30)


def posts_and_gates(pds: LocalPDS, did: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return server_records(pds.url, did), server_records(pds.url, did, THREADGATE)


@pytest.mark.parametrize(("choice", "allow"), [
    ("nobody", []),
    ("followers", [{"$type": "app.bsky.feed.threadgate#followerRule"}]),
])
def test_the_root_and_its_threadgate_land_together_and_the_bots_followup_replies_under_the_gate(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path,  # noqa: F811
        choice: str, allow: list[dict[str, str]]) -> None:
    settings = bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account, replies_bluesky=choice)
    with engine(settings) as at:
        everything_due(at, settings)
    posts, gates = posts_and_gates(bluesky_pds, bluesky_account.did)
    roots = [r for r in posts if "reply" not in r["value"]]
    assert len(roots) == 1 and len(posts) >= 3  # the root and a follow-up of at least two parts
    root = roots[0]
    (gate,) = gates
    assert rkey_of(gate["uri"])[2] == rkey_of(root["uri"])[2]  # the same record key as the root
    assert gate["value"] == {"$type": THREADGATE, "post": root["uri"], "allow": allow,
                             "createdAt": root["value"]["createdAt"]}
    # every follow-up part is the bot's own reply in the gated thread, accepted and stored
    replies = [r for r in posts if "reply" in r["value"]]
    assert replies and all(r["value"]["reply"]["root"]["uri"] == root["uri"] for r in replies)


def test_the_local_pds_stores_a_strangers_reply_to_a_gated_thread_and_leaves_the_gate_to_the_appview(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path) -> None:  # noqa: F811
    """What the reference PDS really does: it stores the reply (a repository takes any valid record of its
    owner); the threadgate is enforced where threads are assembled, the AppView, which the PDS alone lacks."""
    settings = bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account, replies="nobody")
    with engine(settings) as at:
        everything_due(at, settings)
    stranger = bluesky_pds.create_account("reader")
    root = next(r for r in server_records(bluesky_pds.url, bluesky_account.did) if "reply" not in r["value"])
    answer = reply_as(bluesky_pds, stranger, root, "Can I still reply?")
    assert answer.status_code == 200, answer.text
    assert answer.json()["validationStatus"] == "valid"
    assert server_record(bluesky_pds.url, answer.json()["uri"]) is not None
    # The gate stays what the bot made: nothing the stranger can write changes it.
    (gate,) = server_records(bluesky_pds.url, bluesky_account.did, THREADGATE)
    assert gate["value"]["allow"] == []
    # No thread view here: the AppView, which applies the gate to such replies, is not part of this server.
    thread = httpx.get(f"{bluesky_pds.url}/xrpc/app.bsky.feed.getPostThread", params={"uri": root["uri"]},
                       headers=session(bluesky_pds, stranger), timeout=30)
    assert thread.status_code >= 400


def test_everyone_makes_no_threadgate(bluesky_pds: LocalPDS, bluesky_account: Account,  # noqa: F811
                                      tmp_path: Path) -> None:
    settings = bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account, replies_bluesky="followers")
    with engine(settings, replies="everyone") as at:  # the story's own field wins over the setting
        at(NOW)
    posts, gates = posts_and_gates(bluesky_pds, bluesky_account.did)
    assert len(posts) == 1 and gates == []


# ---------------------------------------------------------------- exactly once, with the gate


@pytest.fixture
def proxy(bluesky_pds: LocalPDS) -> Iterator[FaultProxy]:  # noqa: F811
    with FaultProxy(bluesky_pds.url) as running:
        yield running


def test_a_lost_answer_to_the_gated_create_is_settled_by_lookup_and_never_sent_again(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path, proxy: FaultProxy) -> None:  # noqa: F811
    settings = bluesky_settings(tmp_path, proxy.url, bluesky_account, replies="followers", http_timeout="3s")
    with engine(settings) as at:
        proxy.drop_next(APPLY)
        assert "posted" in at(NOW)
    assert ("POST", APPLY, "dropped") in proxy.log and proxy.counts[APPLY] == 1
    posts, gates = posts_and_gates(bluesky_pds, bluesky_account.did)
    assert len(posts) == 1 and len(gates) == 1 and gates[0]["value"]["post"] == posts[0]["uri"]


def test_a_5xx_before_the_gated_write_sends_post_and_gate_again_once_under_the_same_key(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path, proxy: FaultProxy) -> None:  # noqa: F811
    settings = bluesky_settings(tmp_path, proxy.url, bluesky_account, replies="mentioned", http_timeout="3s")
    with engine(settings) as at:
        proxy.respond_next(APPLY, 503)
        assert "retry-later" in at(NOW)
        assert posts_and_gates(bluesky_pds, bluesky_account.did) == ([], [])  # neither, as one commit
        at(NOW + dt.timedelta(minutes=3))  # certainly absent by now: sent again after its backoff
        assert "posted" in at(NOW + dt.timedelta(minutes=10))
    posts, gates = posts_and_gates(bluesky_pds, bluesky_account.did)
    assert len(posts) == 1 and len(gates) == 1 and proxy.counts[APPLY] == 2
    assert gates[0]["value"]["allow"] == [{"$type": "app.bsky.feed.threadgate#mentionRule"}]
    assert rkey_of(gates[0]["uri"])[2] == rkey_of(posts[0]["uri"])[2]


def test_sending_the_gated_root_again_after_it_landed_fails_unclear_and_find_gives_the_post(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path) -> None:  # noqa: F811
    from adapters.base import Outgoing
    from adapters.tid import next_tid
    from posts.errors import OutcomeUnknown
    from posts.render import render

    target = BlueskyTarget(bluesky_pds, bluesky_account, bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account))
    (root, *_rest) = render(story("s1", replies="nobody"), "bluesky")
    post = Outgoing("bluesky", "s1", "root", 1, root.payload, next_tid())
    ref = target.adapter.publish(post)
    with pytest.raises(OutcomeUnknown):  # the PDS answers 500 for a record key already used
        target.adapter.publish(post)
    assert target.adapter.find(post) == ref
    posts, gates = posts_and_gates(bluesky_pds, bluesky_account.did)
    assert len(posts) == 1 and len(gates) == 1
