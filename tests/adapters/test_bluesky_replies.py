"""BlueskyAdapter.conversation and hide_reply against the real local PDS.

The local PDS serves no ``app.bsky`` views (``400 InvalidRequest: No service configured for
app.bsky.feed.getPostThread``), so the adapter reaches it through :class:`AppViewStandin`, which answers
``getPostThread`` from the PDS's real records as the AppView builds it (threadgate rules applied as the
AppView applies them) and forwards everything else. The threadgate the adapter writes is a real record on the
real PDS (its lexicon checked by the PDS). The bot's own gates (followers, mentioned, nobody) against a second
account are in ``test_bluesky_gates.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import HidesReplies, Outgoing, PostRef, ReadsReplies
from adapters.bluesky import THREADGATE, BlueskyAdapter, rkey_of
from adapters.tid import next_tid
from bot.wiring import bluesky_config
from posts.errors import RateLimited, Rejected
from tests.adapters.bluesky_fixtures import bluesky_pds, bluesky_settings, server_record  # noqa: F401
from tests.pds_harness import Account, LocalPDS
from tests.standins.bluesky_appview import AppViewStandin

pytestmark = pytest.mark.pds
UTC = dt.UTC
POST = "app.bsky.feed.post"


class Fan:
    """Another account on the same PDS, posting with plain XRPC calls as any other client would."""

    def __init__(self, pds: LocalPDS, account: Account):
        self.pds, self.account = pds, account
        answer = httpx.post(f"{pds.url}/xrpc/com.atproto.server.createSession",
                            json={"identifier": account.handle, "password": account.password}, timeout=30)
        answer.raise_for_status()
        self.headers = {"Authorization": f"Bearer {answer.json()['accessJwt']}"}

    def post(self, text: str, *, reply_to: PostRef | dict[str, str] | None = None,
             root: PostRef | None = None, quote: PostRef | None = None, at: dt.datetime | None = None
             ) -> dict[str, str]:
        record: dict[str, Any] = {"$type": POST, "text": text,
                                  "createdAt": (at or dt.datetime.now(UTC)).isoformat().replace("+00:00", "Z")}
        if reply_to is not None and root is not None:
            parent = reply_to if isinstance(reply_to, dict) else strong(reply_to)
            record["reply"] = {"root": strong(root), "parent": parent}
        if quote is not None:
            record["embed"] = {"$type": "app.bsky.embed.record", "record": strong(quote)}
        return self.call("com.atproto.repo.createRecord", {"repo": self.account.did, "collection": POST,
                                                           "record": record})

    def call(self, nsid: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = httpx.post(f"{self.pds.url}/xrpc/{nsid}", json=body, headers=self.headers, timeout=30)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


def strong(ref: PostRef | dict[str, str]) -> dict[str, str]:
    if isinstance(ref, dict):
        return {"uri": ref["uri"], "cid": ref["cid"]}
    return {"uri": ref.extra["uri"], "cid": ref.extra["cid"]}


def ref_of(created: dict[str, str]) -> PostRef:
    return PostRef("bluesky", created["uri"], "", {"uri": created["uri"], "cid": created["cid"]})


class World:
    def __init__(self, pds: LocalPDS, appview: AppViewStandin, tmp_path: Path):
        self.pds, self.appview = pds, appview
        self.bot = pds.create_account("bot")
        self.adapter = BlueskyAdapter(bluesky_config(bluesky_settings(tmp_path, appview.url, self.bot)))
        self.own = Fan(pds, self.bot)
        self.fan = Fan(pds, pds.create_account("fan"))

    def post(self, text: str, parent: PostRef | None = None, root: PostRef | None = None) -> PostRef:
        payload = {"$type": POST, "text": text, "createdAt": dt.datetime.now(UTC).isoformat().replace("+00:00", "Z")}
        outgoing = Outgoing("bluesky", "s1", "root" if parent is None else "followup", 1, payload, next_tid(),
                            parent, root)
        return self.adapter.publish(outgoing) if parent is None else self.adapter.reply(outgoing)

    def gate(self, root: PostRef) -> dict[str, Any] | None:
        repo, _, rkey = rkey_of(root.id)
        found = server_record(self.pds.url, f"at://{repo}/{THREADGATE}/{rkey}")
        return None if found is None else dict(found["value"])


@pytest.fixture
def world(bluesky_pds: LocalPDS, tmp_path: Path) -> Iterator[World]:  # noqa: F811
    with AppViewStandin(bluesky_pds.url) as appview:
        made = World(bluesky_pds, appview, tmp_path)
        yield made
        made.adapter.client.request.close()


def thread(world: World) -> tuple[PostRef, PostRef, list[str]]:
    """The bot's root and follow-up; replies by the fan (one to a reply, one to the follow-up), a quote, and
    an answer by the bot's own account."""
    top = world.post("A year ago today")
    reveal = world.post("One year later", top, top)
    base = dt.datetime.now(UTC) - dt.timedelta(minutes=10)
    first = world.fan.post("First!", reply_to=top, root=top, at=base)
    second = world.fan.post("What a year", reply_to=reveal, root=top, at=base + dt.timedelta(minutes=1))
    world.own.post("Thanks", reply_to=first, root=top, at=base + dt.timedelta(minutes=2))
    third = world.fan.post("Replying to myself", reply_to=first, root=top, at=base + dt.timedelta(minutes=3))
    world.fan.post("Look at this", quote=top)
    return top, reveal, [first["uri"], second["uri"], third["uri"]]


def test_bluesky_reads_and_hides_replies(world: World):
    assert isinstance(world.adapter, ReadsReplies) and isinstance(world.adapter, HidesReplies)


def test_the_local_pds_alone_has_no_thread_view(world: World):
    answer = httpx.get(f"{world.pds.url}/xrpc/app.bsky.feed.getPostThread", params={"uri": "at://x/y/z"},
                       timeout=30)
    assert answer.status_code == 400 and "No service configured" in answer.json()["message"]


def test_conversation_lists_replies_by_others_at_any_depth_newest_first(world: World):
    top, reveal, (first, second, third) = thread(world)

    talk = world.adapter.conversation(top, (reveal,), limit=10)

    assert talk.total == 3  # not the follow-up, the bot's own answer, nor the quote
    assert [r.id for r in talk.replies] == [third, second, first]
    newest = talk.replies[0]
    handle = world.fan.account.handle
    assert (newest.author, newest.text, newest.parent_id) == (f"@{handle}", "Replying to myself", first)
    assert newest.url == f"https://bsky.app/profile/{handle}/post/{third.rsplit('/', 1)[1]}"
    assert talk.replies[1].parent_id == reveal.id
    assert newest.at.tzinfo is not None and newest.hidden is False
    assert talk.requests == 1
    assert world.appview.counts["app.bsky.feed.getPostThread"] == 1


def test_conversation_returns_at_most_limit_replies(world: World):
    top, reveal, (_first, second, third) = thread(world)
    talk = world.adapter.conversation(top, (reveal,), limit=2)
    assert talk.total == 3 and [r.id for r in talk.replies] == [third, second]
    assert world.adapter.conversation(top, (reveal,), limit=0).replies == ()


def test_long_replies_are_capped(world: World, monkeypatch: pytest.MonkeyPatch):
    # A valid post holds at most 300 graphemes (the PDS refuses more), below the 2,000 kept: the cap is
    # shown working at a smaller size.
    top = world.post("Say it at length")
    world.fan.post("word " * 50, reply_to=top, root=top)
    monkeypatch.setattr("adapters.bluesky.REPLY_TEXT_LIMIT", 12)
    [reply] = world.adapter.conversation(top, (), limit=5).replies
    assert reply.text == "word word wo"


def test_hiding_creates_a_threadgate_that_lets_everyone_reply_and_the_view_marks_the_reply(world: World):
    top, reveal, (first, second, _third) = thread(world)
    assert world.gate(top) is None

    world.adapter.hide_reply(top, second)

    gate = world.gate(top)
    assert gate is not None and gate["hiddenReplies"] == [second] and gate["post"] == top.id
    assert "allow" not in gate  # no rules: everyone may still reply
    talk = world.adapter.conversation(top, (reveal,), limit=10)
    assert {r.id: r.hidden for r in talk.replies} == {first: False, second: True, talk.replies[0].id: False}
    assert talk.total == 3  # still in the thread view, and counted

    writes = world.appview.counts["com.atproto.repo.putRecord"]
    world.adapter.hide_reply(top, second)  # already hidden: nothing written
    assert world.appview.counts["com.atproto.repo.putRecord"] == writes
    world.adapter.hide_reply(top, second, hidden=False)
    assert world.gate(top)["hiddenReplies"] == []  # type: ignore[index]
    assert not any(r.hidden for r in world.adapter.conversation(top, (reveal,), limit=10).replies)


def test_the_following_and_list_rules_admit_whom_the_bot_follows_and_whom_its_list_holds(world: World):
    """The rules the bot does not write itself, as the AppView applies them to a threadgate set by another
    client: ``followingRule`` (the root's author follows the replier) and ``listRule`` (a list item names
    the replier); replying to a reply counts the same."""
    followed, listed, other = (world.pds.create_account(name) for name in ("followed", "listed", "other"))
    top = world.post("Gated by hand")
    rkey = top.id.rsplit("/", 1)[1]
    roster = world.own.call("com.atproto.repo.createRecord", {
        "repo": world.bot.did, "collection": "app.bsky.graph.list",
        "record": {"$type": "app.bsky.graph.list", "name": "Guests", "purpose": "app.bsky.graph.defs#curatelist",
                   "createdAt": "2026-01-01T00:00:00.000Z"}})["uri"]
    world.own.call("com.atproto.repo.createRecord", {
        "repo": world.bot.did, "collection": "app.bsky.graph.listitem",
        "record": {"$type": "app.bsky.graph.listitem", "list": roster, "subject": listed.did,
                   "createdAt": "2026-01-01T00:00:00.000Z"}})
    world.own.call("com.atproto.repo.createRecord", {
        "repo": world.bot.did, "collection": "app.bsky.graph.follow",
        "record": {"$type": "app.bsky.graph.follow", "subject": followed.did,
                   "createdAt": "2026-01-01T00:00:00Z"}})
    Fan(world.pds, other).call("com.atproto.repo.createRecord", {  # following the bot is not what counts here
        "repo": other.did, "collection": "app.bsky.graph.follow",
        "record": {"$type": "app.bsky.graph.follow", "subject": world.bot.did,
                   "createdAt": "2026-01-01T00:00:00Z"}})
    world.own.call("com.atproto.repo.createRecord", {
        "repo": world.bot.did, "collection": THREADGATE, "rkey": rkey,
        "record": {"$type": THREADGATE, "post": top.id, "createdAt": "2026-01-01T00:00:00.000Z",
                   "allow": [{"$type": "app.bsky.feed.threadgate#followingRule"},
                             {"$type": "app.bsky.feed.threadgate#listRule", "list": roster}]}})
    first = Fan(world.pds, followed).post("Followed", reply_to=top, root=top)
    second = Fan(world.pds, listed).post("Listed", reply_to=first, root=top)
    Fan(world.pds, other).post("Neither", reply_to=top, root=top)
    Fan(world.pds, other).post("Neither, deeper", reply_to=second, root=top)

    talk = world.adapter.conversation(top, (), limit=10)

    assert talk.total == 2 and {r.id for r in talk.replies} == {first["uri"], second["uri"]}


def test_hiding_keeps_the_rules_of_an_existing_threadgate(world: World):
    top, _reveal, (first, second, _) = thread(world)
    rkey = top.id.rsplit("/", 1)[1]
    rules = [{"$type": "app.bsky.feed.threadgate#mentionRule"}]
    world.own.call("com.atproto.repo.createRecord", {
        "repo": world.bot.did, "collection": THREADGATE, "rkey": rkey,
        "record": {"$type": THREADGATE, "post": top.id, "allow": rules, "createdAt": "2026-01-01T00:00:00.000Z"}})

    world.adapter.hide_reply(top, first)
    world.adapter.hide_reply(top, second)

    gate = world.gate(top)
    assert gate is not None and gate["allow"] == rules and gate["hiddenReplies"] == [first, second]
    assert gate["createdAt"] == "2026-01-01T00:00:00.000Z"


def test_a_threadgate_changed_meanwhile_is_read_again_and_the_change_kept(world: World,
                                                                           monkeypatch: pytest.MonkeyPatch):
    top, _reveal, (first, second, _) = thread(world)
    world.adapter.hide_reply(top, first)
    rkey = top.id.rsplit("/", 1)[1]
    real = world.adapter._get_record
    raced: list[bool] = []

    def read_then_someone_writes(repo: str, collection: str, key: str) -> dict[str, Any] | None:
        found = real(repo, collection, key)
        if collection == THREADGATE and not raced:  # another client sets reply rules in between
            raced.append(True)
            value = dict(found["value"]) if found else {}
            value["allow"] = [{"$type": "app.bsky.feed.threadgate#followingRule"}]
            world.own.call("com.atproto.repo.putRecord", {"repo": world.bot.did, "collection": THREADGATE,
                                                          "rkey": rkey, "record": value})
        return found

    monkeypatch.setattr(world.adapter, "_get_record", read_then_someone_writes)
    world.adapter.hide_reply(top, second)

    gate = world.gate(top)
    assert gate is not None and gate["hiddenReplies"] == [first, second]
    assert gate["allow"] == [{"$type": "app.bsky.feed.threadgate#followingRule"}]  # not lost
    writes = [status for method, nsid, status in world.appview.log if nsid == "com.atproto.repo.putRecord"]
    assert writes == [200, 400, 200]  # the first hide; the write on the stale version refused; the retry


def test_the_threadgate_holds_at_most_300_hidden_replies(world: World):
    top = world.post("Popular")
    rkey = top.id.rsplit("/", 1)[1]
    full = [f"at://{world.fan.account.did}/{POST}/{next_tid()}" for _ in range(300)]
    world.own.call("com.atproto.repo.createRecord", {
        "repo": world.bot.did, "collection": THREADGATE, "rkey": rkey,
        "record": {"$type": THREADGATE, "post": top.id, "hiddenReplies": full, "createdAt": "2026-01-01T00:00:00Z"}})
    one_more = world.fan.post("And me", reply_to=top, root=top)["uri"]
    with pytest.raises(Rejected, match="300"):
        world.adapter.hide_reply(top, one_more)
    world.adapter.hide_reply(top, full[0], hidden=False)  # showing one again makes room
    world.adapter.hide_reply(top, one_more)
    assert world.gate(top)["hiddenReplies"][-1] == one_more  # type: ignore[index]


def test_only_replies_under_the_accounts_own_posts_can_be_hidden(world: World):
    theirs = ref_of(world.fan.post("My own thread"))
    reply = world.fan.post("Self reply", reply_to=theirs, root=theirs)["uri"]
    with pytest.raises(Rejected, match="not a post of this account"):
        world.adapter.hide_reply(theirs, reply)
    top = world.post("Ours")
    with pytest.raises(Rejected, match="not a post"):
        world.adapter.hide_reply(top, f"at://{world.fan.account.did}/app.bsky.feed.like/{next_tid()}")


def test_conversation_errors_are_translated(world: World):
    top = world.post("Busy")
    world.adapter.whoami()
    reset = int(dt.datetime.now(UTC).timestamp()) + 120
    world.appview.respond_next("app.bsky.feed.getPostThread", 429,
                               {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                               {"ratelimit-reset": str(reset), "ratelimit-remaining": "0"})
    with pytest.raises(RateLimited) as caught:
        world.adapter.conversation(top, (), limit=5)
    assert caught.value.retry_at == dt.datetime.fromtimestamp(reset, UTC)
    gone = PostRef("bluesky", f"at://{world.bot.did}/{POST}/{next_tid()}", "")
    with pytest.raises(Rejected, match="NotFound"):
        world.adapter.conversation(gone, (), limit=5)


def test_a_refused_session_is_replaced_and_both_reads_are_counted(world: World):
    top, reveal, _ = thread(world)
    world.adapter.whoami()
    world.appview.respond_next("app.bsky.feed.getPostThread", 400,
                               {"error": "ExpiredToken", "message": "Token has been revoked"})
    logins = world.appview.counts["com.atproto.server.createSession"]

    talk = world.adapter.conversation(top, (reveal,), limit=5)

    assert talk.total == 3 and talk.requests == 2
    assert world.appview.counts["com.atproto.server.createSession"] == logins + 1


def test_the_sweep_stays_within_its_bluesky_budget_as_the_server_side_counts_it(world: World, tmp_path: Path):
    """Bluesky's budget counted where the requests arrive (the proxy in front of the real PDS): the
    session the adapter makes, then one getPostThread a thread, never more than the pass's budget, and
    the threads left over are read by the next pass."""
    from sqlalchemy import select

    from bot.conversation import ConversationSweep, threads
    from bot.models import DeliveryRow
    from bot.planner import Planner
    from bot.store import Store
    from tests.conftest import story

    (tmp_path / "queue").mkdir()
    settings = bluesky_settings(tmp_path / "queue", world.appview.url, world.bot)
    store = Store(settings.database_url)
    now = dt.datetime.now(UTC).replace(microsecond=0)
    try:
        ids = [f"s{i}" for i in range(6)]
        Planner(store, settings).load([story(sid, (now - dt.timedelta(days=366)).date()) for sid in ids],
                                      now=now - dt.timedelta(days=2))
        roots = {sid: world.post(f"A year ago today: {sid}") for sid in ids}
        world.fan.post("A reply", reply_to=roots["s0"], root=roots["s0"])
        with store.session() as session:
            for row in session.scalars(select(DeliveryRow).where(DeliveryRow.kind == "root")):
                ref = roots[row.story_id]
                row.status, row.remote_id, row.remote_extra = "posted", ref.id, dict(ref.extra)
                row.posted_at = now - dt.timedelta(hours=1)
        before = sum(world.appview.counts.values())
        (done,) = ConversationSweep(store, settings, {"bluesky": world.adapter}, clock=lambda: now,
                                    budget={"bluesky": 4}).sweep(now)
        received = sum(world.appview.counts.values()) - before
        assert received == done.requests <= 4 and done.threads >= 3, (done, world.appview.counts)
        later = now + settings.conversation_every
        before = sum(world.appview.counts.values())
        (done,) = ConversationSweep(store, settings, {"bluesky": world.adapter}, clock=lambda: later,
                                    budget={"bluesky": 4}).sweep(later)
        assert sum(world.appview.counts.values()) - before == done.requests <= 4
        assert {t.story_id for t in threads(store)} == set(ids)
        assert [t.total for t in threads(store, "s0")] == [1]
    finally:
        store.dispose()
