"""Who may reply on Bluesky, against the real local reference server (tests/pds_harness.py).

The bot's root goes out with its threadgate in one ``applyWrites`` commit; the bot's own follow-up replies
under it; other accounts on the same server reply, reply to replies, follow the bot and quote it. The PDS
stores whatever valid records an account writes to its own repository, a reply to a gated thread included;
the gate is applied where threads are assembled, the AppView, which the reference PDS alone does not run
(its ``getPostThread`` answers 400). Threads are therefore read through
:class:`~tests.standins.bluesky_appview.AppViewStandin`, which builds ``getPostThread`` from the PDS's real
records and applies threadgates as the AppView's ``violatesThreadGate`` / ``userReplyDisabled`` do. What is
proven here: what the PDS stores (real), and what the thread view and the sweep's ``conversation()`` make of
it under the AppView's rules (mirrored in the stand-in, not the AppView itself).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import Outgoing, PostRef
from adapters.bluesky import POST, THREADGATE, BlueskyAdapter, rkey_of
from adapters.tid import next_tid
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
from tests.standins.bluesky_appview import AppViewStandin
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

        at.store = store  # type: ignore[attr-defined]
        yield at
    finally:
        store.dispose()


def everything_due(at: Any, settings: Settings) -> None:
    """Run the root, then the follow-up parts (the engine paces them a few seconds apart)."""
    for moment in [NOW] + [NOW + settings.followup_delay + dt.timedelta(seconds=15 * i) for i in range(8)]:
        at(moment)


def session(pds: LocalPDS | AppViewStandin, account: Account) -> dict[str, str]:
    """A signed-in account's headers (an access token from the PDS, which an AppView request carries too)."""
    url = pds.pds if isinstance(pds, AppViewStandin) else pds.url
    answer = httpx.post(f"{url}/xrpc/com.atproto.server.createSession",
                        json={"identifier": account.handle, "password": account.password}, timeout=30)
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['accessJwt']}"}


def reply_as(pds: LocalPDS, account: Account, root: dict[str, Any], text: str,
             parent: dict[str, Any] | None = None) -> str:
    """A reply to ``parent`` (default: ``root``) in ``root``'s thread, written by ``account`` into its own
    repository as any client would; the PDS takes it (a valid record) whatever the threadgate says."""
    record = {"$type": POST, "text": text, "createdAt": dt.datetime.now(UTC).isoformat().replace("+00:00", "Z"),
              "reply": {"root": strong(root), "parent": strong(parent or root)}}
    answer = httpx.post(f"{pds.url}/xrpc/com.atproto.repo.createRecord",
                        json={"repo": account.did, "collection": POST, "record": record},
                        headers=session(pds, account), timeout=30)
    assert answer.status_code == 200 and answer.json()["validationStatus"] == "valid", answer.text
    assert server_record(pds.url, answer.json()["uri"]) is not None
    return str(answer.json()["uri"])


def write_as(pds: LocalPDS, account: Account, collection: str, record: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(f"{pds.url}/xrpc/com.atproto.repo.createRecord",
                        json={"repo": account.did, "collection": collection, "record": record},
                        headers=session(pds, account), timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def follow(pds: LocalPDS, follower: Account, followed: Account) -> None:
    """A follow record in the follower's repository, which is all a follow is."""
    write_as(pds, follower, "app.bsky.graph.follow", {"$type": "app.bsky.graph.follow", "subject": followed.did,
                                                       "createdAt": "2026-03-01T11:00:00.000Z"})


def quote_as(pds: LocalPDS, account: Account, post: dict[str, Any]) -> str:
    record = {"$type": POST, "text": "Look at this", "createdAt": "2026-03-01T12:40:00Z",
              "embed": {"$type": "app.bsky.embed.record", "record": strong(post)}}
    return str(write_as(pds, account, POST, record)["uri"])


def strong(record: dict[str, Any]) -> dict[str, str]:
    return {"uri": record["uri"], "cid": record["cid"]}


def ref(record: dict[str, Any]) -> PostRef:
    return PostRef("bluesky", record["uri"], "", {"uri": record["uri"], "cid": record["cid"]})


def posts_and_gates(pds: LocalPDS, did: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return server_records(pds.url, did), server_records(pds.url, did, THREADGATE)


def bot_thread(pds: LocalPDS, bot: Account) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The bot's root and its follow-up parts, oldest first, as stored on the PDS."""
    posts = sorted(server_records(pds.url, bot.did), key=lambda r: r["value"]["createdAt"])
    (root,) = [r for r in posts if "reply" not in r["value"]]
    return root, [r for r in posts if "reply" in r["value"]]


@pytest.fixture
def appview(bluesky_pds: LocalPDS) -> Iterator[AppViewStandin]:  # noqa: F811
    with AppViewStandin(bluesky_pds.url) as running:
        yield running


def thread_view(appview: AppViewStandin, uri: str, viewer: Account | None = None) -> dict[str, Any]:
    """``getPostThread`` on ``uri``, 100 levels deep, as ``viewer`` (signed in) or signed out."""
    headers = {} if viewer is None else session(appview, viewer)
    answer = httpx.get(f"{appview.url}/xrpc/app.bsky.feed.getPostThread", params={"uri": uri, "depth": 100},
                       headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json()["thread"])


def shown(thread: dict[str, Any]) -> set[str]:
    """Every reply in a thread view, at any depth."""
    found: set[str] = set()
    pending = list(thread.get("replies") or [])
    while pending:
        node = pending.pop()
        found.add(node["post"]["uri"])
        pending += node.get("replies") or []
    return found


def conversation(appview: AppViewStandin, tmp_path: Path, bot: Account, root: dict[str, Any],
                 parts: list[dict[str, Any]]) -> Any:
    """What the conversation sweep reads: the bot's adapter's ``conversation()``, through the AppView."""
    adapter = BlueskyAdapter(bluesky_config(bluesky_settings(tmp_path / "sweep", appview.url, bot)))
    try:
        return adapter.conversation(ref(root), tuple(ref(p) for p in parts), limit=10)
    finally:
        adapter.client.request.close()


@contextlib.contextmanager
def followers_only(pds: LocalPDS, bot: Account, tmp_path: Path) -> Iterator[Any]:
    """The engine's thread under ``replies: followers`` (root and follow-up out), with two other accounts:
    a stranger and a fan who follows the bot. Yields (the engine's ``at``, settings, root, parts,
    stranger, fan); the queue stays open inside the block."""
    settings = bluesky_settings(tmp_path, pds.url, bot, replies="followers")
    with engine(settings) as at:
        everything_due(at, settings)
        root, parts = bot_thread(pds, bot)
        stranger, fan = pds.create_account("stranger"), pds.create_account("fan")
        follow(pds, fan, bot)
        yield at, settings, root, parts, stranger, fan


@pytest.mark.parametrize(("choice", "allow"), [
    ("nobody", []),
    ("followers", [{"$type": "app.bsky.feed.threadgate#followerRule"}]),
    ("mentioned", [{"$type": "app.bsky.feed.threadgate#mentionRule"}]),
])
def test_the_root_and_its_threadgate_land_together_and_the_bots_followup_is_shown_under_the_gate(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path, appview: AppViewStandin,  # noqa: F811
        choice: str, allow: list[dict[str, str]]) -> None:
    settings = bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account, replies_bluesky=choice)
    with engine(settings) as at:
        everything_due(at, settings)
    posts, gates = posts_and_gates(bluesky_pds, bluesky_account.did)
    root, parts = bot_thread(bluesky_pds, bluesky_account)
    assert len(parts) >= 2  # a follow-up of at least two parts
    (gate,) = gates
    assert rkey_of(gate["uri"])[2] == rkey_of(root["uri"])[2]  # the same record key as the root
    assert gate["value"] == {"$type": THREADGATE, "post": root["uri"], "allow": allow,
                             "createdAt": root["value"]["createdAt"]}
    assert all(r["value"]["reply"]["root"]["uri"] == root["uri"] for r in parts)
    # the gate never holds back the thread's author: every part is in the thread view, signed in or not
    for viewer in (None, bluesky_account):
        view = thread_view(appview, root["uri"], viewer)
        assert shown(view) == {p["uri"] for p in parts}
        assert view["post"]["threadgate"]["record"]["allow"] == allow
    assert thread_view(appview, root["uri"], bluesky_account)["post"]["viewer"]["replyDisabled"] is False
    assert conversation(appview, tmp_path, bluesky_account, root, parts).total == 0


def test_under_followers_a_strangers_reply_is_stored_but_left_out_and_a_followers_is_shown_and_swept(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path,  # noqa: F811
        appview: AppViewStandin) -> None:
    with followers_only(bluesky_pds, bluesky_account, tmp_path) as (_at, _settings, root, parts, stranger, fan):
        pass
    follow(bluesky_pds, bluesky_account, stranger)  # the bot following the stranger is not what counts

    refused = reply_as(bluesky_pds, stranger, root, "Not a follower, replying anyway")  # the PDS stores it
    allowed = reply_as(bluesky_pds, fan, root, "A follower", parent=parts[-1])
    under = reply_as(bluesky_pds, stranger, root, "Under the follower's reply",
                     parent=server_record(bluesky_pds.url, allowed))
    quote = quote_as(bluesky_pds, stranger, root)

    # The PDS alone has no thread view: the gate is not the PDS's to apply.
    alone = httpx.get(f"{bluesky_pds.url}/xrpc/app.bsky.feed.getPostThread", params={"uri": root["uri"]},
                      headers=session(bluesky_pds, stranger), timeout=30)
    assert alone.status_code == 400

    for viewer in (None, stranger, fan, bluesky_account):
        view = thread_view(appview, root["uri"], viewer)
        assert shown(view) == {p["uri"] for p in parts} | {allowed}  # the stranger's two replies left out
        assert view["post"]["replyCount"] == 1  # the first part; not the stranger's reply
        assert view["post"]["quoteCount"] == 1 and quote not in shown(view)  # a quote is not a reply
    assert thread_view(appview, root["uri"])["post"].get("viewer") is None  # signed out: no viewer state
    assert thread_view(appview, root["uri"], stranger)["post"]["viewer"]["replyDisabled"] is True
    assert thread_view(appview, root["uri"], fan)["post"]["viewer"]["replyDisabled"] is False
    assert thread_view(appview, root["uri"], bluesky_account)["post"]["viewer"]["replyDisabled"] is False
    # Looked at on its own, a refused reply stands alone, its reply button off for everyone.
    own = thread_view(appview, refused, fan)
    assert "parent" not in own and "replies" not in own and own["post"]["viewer"]["replyDisabled"] is True
    assert "parent" in thread_view(appview, allowed, fan)

    talk = conversation(appview, tmp_path, bluesky_account, root, parts)
    assert talk.total == 1 and [r.id for r in talk.replies] == [allowed]
    assert {refused, under, quote}.isdisjoint(r.id for r in talk.replies)

    # Hiding works under the gate: the rules stay, the reply is marked hidden and still counted.
    adapter = BlueskyAdapter(bluesky_config(bluesky_settings(tmp_path / "hide", appview.url, bluesky_account)))
    try:
        adapter.hide_reply(ref(root), allowed)
    finally:
        adapter.client.request.close()
    (gate,) = server_records(bluesky_pds.url, bluesky_account.did, THREADGATE)
    assert gate["value"]["allow"] == [{"$type": "app.bsky.feed.threadgate#followerRule"}]
    assert gate["value"]["hiddenReplies"] == [allowed]
    talk = conversation(appview, tmp_path, bluesky_account, root, parts)
    assert talk.total == 1 and talk.replies[0].hidden is True


def test_the_sweep_keeps_what_the_gate_shows_and_a_hide_from_the_queue_reaches_the_server(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path,  # noqa: F811
        appview: AppViewStandin) -> None:
    """End to end on the real server: the engine posts the gated thread, others reply, the conversation
    sweep keeps the follower's reply (not the stranger's, nor the quote), ``bot.conversation.hide`` (what
    the dashboard's Hide calls) writes the threadgate's hidden replies, and the next pass keeps it hidden."""
    from bot.conversation import ConversationSweep, hide, threads

    with followers_only(bluesky_pds, bluesky_account, tmp_path) as (at, settings, root, parts, stranger, fan):
        reply_as(bluesky_pds, stranger, root, "Not a follower, replying anyway")
        allowed = reply_as(bluesky_pds, fan, root, "A follower", parent=parts[-1])
        quote_as(bluesky_pds, stranger, root)
        reader = BlueskyAdapter(bluesky_config(bluesky_settings(tmp_path / "sweep", appview.url, bluesky_account)))
        try:
            now = NOW + dt.timedelta(hours=12)
            (done,) = ConversationSweep(at.store, settings, {"bluesky": reader}, clock=lambda: now).sweep(now)
            assert done.threads == 1 and done.errors == 0
            (kept,) = threads(at.store, "s1")
            assert kept.total == 1 and [(r.id, r.author, r.hidden) for r in kept.replies] == [
                (allowed, f"@{fan.handle}", False)]
            assert hide(at.store, reader, "s1", "bluesky", allowed).hidden
            (gate,) = server_records(bluesky_pds.url, bluesky_account.did, THREADGATE)
            assert gate["value"]["hiddenReplies"] == [allowed]
            assert gate["value"]["allow"] == [{"$type": "app.bsky.feed.threadgate#followerRule"}]
            later = now + settings.conversation_every
            (done,) = ConversationSweep(at.store, settings, {"bluesky": reader}, clock=lambda: later).sweep(later)
            assert done.threads == 1
            (kept,) = threads(at.store, "s1")
            assert kept.total == 1 and kept.replies[0].hidden is True  # as the server's view says
        finally:
            reader.client.request.close()


def test_under_nobody_no_one_elses_reply_is_shown_follower_or_not(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path,  # noqa: F811
        appview: AppViewStandin) -> None:
    settings = bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account, replies="nobody")
    with engine(settings) as at:
        everything_due(at, settings)
    root, parts = bot_thread(bluesky_pds, bluesky_account)
    stranger, fan = bluesky_pds.create_account("stranger"), bluesky_pds.create_account("fan")
    follow(bluesky_pds, fan, bluesky_account)
    follow(bluesky_pds, bluesky_account, fan)
    stored = [reply_as(bluesky_pds, stranger, root, "Can I still reply?"),
              reply_as(bluesky_pds, fan, root, "Me neither?", parent=parts[-1])]

    for viewer in (stranger, fan):
        view = thread_view(appview, root["uri"], viewer)
        assert shown(view) == {p["uri"] for p in parts}
        assert view["post"]["viewer"]["replyDisabled"] is True
    assert thread_view(appview, root["uri"], bluesky_account)["post"]["viewer"]["replyDisabled"] is False
    assert all(server_record(bluesky_pds.url, uri) is not None for uri in stored)  # stored, not shown
    assert conversation(appview, tmp_path, bluesky_account, root, parts).total == 0
    (gate,) = server_records(bluesky_pds.url, bluesky_account.did, THREADGATE)
    assert gate["value"]["allow"] == []  # nothing the others wrote changed the bot's gate


def test_under_mentioned_the_bots_text_mentions_no_one_so_a_named_account_is_still_refused(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path,  # noqa: F811
        appview: AppViewStandin) -> None:
    """The rendered root has no mention facets (a handle in plain text cannot be turned into the DID a
    mention needs), and the AppView's ``mentionRule`` reads the root's facets, not its text."""
    named = bluesky_pds.create_account("named")
    settings = bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account, replies="mentioned")
    with engine(settings, summary=f"As @{named.handle} reported.") as at:
        everything_due(at, settings)
    root, parts = bot_thread(bluesky_pds, bluesky_account)
    assert f"@{named.handle}" in root["value"]["text"]
    assert not any(feature.get("$type") == "app.bsky.richtext.facet#mention"
                   for facet in root["value"].get("facets") or [] for feature in facet["features"])
    reply_as(bluesky_pds, named, root, "You named me")
    view = thread_view(appview, root["uri"], named)
    assert shown(view) == {p["uri"] for p in parts} and view["post"]["viewer"]["replyDisabled"] is True
    assert conversation(appview, tmp_path, bluesky_account, root, parts).total == 0


def test_under_mentioned_an_account_the_roots_facets_mention_may_reply_and_no_other(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path,  # noqa: F811
        appview: AppViewStandin) -> None:
    named, other = bluesky_pds.create_account("named"), bluesky_pds.create_account("other")
    follow(bluesky_pds, other, bluesky_account)  # following does not count under mentionRule
    text = f"@{named.handle} was there"
    mention = {"index": {"byteStart": 0, "byteEnd": len(named.handle.encode()) + 1},
               "features": [{"$type": "app.bsky.richtext.facet#mention", "did": named.did}]}
    payload = {"$type": POST, "text": text, "facets": [mention], "createdAt": "2026-03-01T12:00:00.000Z",
               "threadgate": {"$type": THREADGATE, "allow": [{"$type": "app.bsky.feed.threadgate#mentionRule"}],
                              "createdAt": "2026-03-01T12:00:00.000Z"}}
    target = BlueskyAdapter(bluesky_config(bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account)))
    try:
        posted = target.publish(Outgoing("bluesky", "s1", "root", 1, payload, next_tid()))
    finally:
        target.client.request.close()
    root = server_record(bluesky_pds.url, posted.extra["uri"])
    assert root is not None
    allowed = reply_as(bluesky_pds, named, root, "I was")
    reply_as(bluesky_pds, other, root, "So was I")

    assert shown(thread_view(appview, root["uri"])) == {allowed}
    assert thread_view(appview, root["uri"], named)["post"]["viewer"]["replyDisabled"] is False
    assert thread_view(appview, root["uri"], other)["post"]["viewer"]["replyDisabled"] is True
    talk = conversation(appview, tmp_path, bluesky_account, root, [])
    assert talk.total == 1 and [r.id for r in talk.replies] == [allowed]


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
