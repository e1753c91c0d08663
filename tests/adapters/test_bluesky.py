"""The Bluesky adapter: the real atproto SDK against the real local PDS, and against MockTransport for errors.

The ``pds``-marked tests run the reference server (tests/pds_harness.py), sometimes behind a
fault-injecting proxy (tests/standins/bluesky_proxy.py); they skip only where Node.js is missing.
The others answer the SDK's HTTP requests with ``httpx.MockTransport`` (passed through the SDK's
``Request(**httpx_kwargs)``) to pin down the exact requests and the mapping of every error.

The session file holds what the SDK exports and nothing else: ``handle:::did:::accessJwt:::
refreshJwt:::pds``. Those two tokens are secrets in their own right (the file is 0600); the app
password is never written.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import Adapter, Outgoing, PostRef, ThreadState
from adapters.bluesky import POST, BlueskyAdapter, BlueskyConfig, sniff_image
from adapters.tid import encode, next_tid
from bot.config import Settings, load_settings
from bot.wiring import bluesky_config, live_adapter_class, missing_settings
from posts.errors import AdapterError, AuthFailed, OutcomeUnknown, RateLimited, Rejected, Transient
from posts.media import Image
from posts.render import RenderOptions, bluesky_record, render
from tests.adapters.bluesky_fixtures import (  # noqa: F401 - pytest fixtures
    BlueskyTarget,
    bluesky_account,
    bluesky_pds,
    bluesky_settings,
    bluesky_target,
    server_record,
    server_records,
)
from tests.conftest import story
from tests.pds_harness import Account, LocalPDS
from tests.replies import replying
from tests.standins.bluesky_proxy import FaultProxy

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CREATED_AT = "2026-03-01T12:00:00.123Z"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
"""A 1x1 PNG (70 bytes)."""
CREATE = "com.atproto.repo.createRecord"
GET = "com.atproto.repo.getRecord"
LOGIN = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"
UPLOAD = "com.atproto.repo.uploadBlob"


def outgoing(text: str = "One year ago today https://example.com/story #news", *, key: str | None = None,
             kind: str = "root", part: int = 1, card: bool = True, thumb: bytes | None = None,
             **record: Any) -> Outgoing:
    embed = {"$type": "app.bsky.embed.external",
             "external": {"uri": "https://example.com/story", "title": "The story", "description": "What happened"}}
    payload = bluesky_record(text, lang="en", created_at=CREATED_AT, embed=embed if card else None)
    payload.update(record)
    return Outgoing("bluesky", "s1", kind, part, payload, key or next_tid(),
                    attachments={"thumb": thumb_image(thumb)} if thumb else {})


def write_story(folder: Path, name: str, fields: dict[str, Any]) -> Path:
    path = folder / name
    path.write_text(json.dumps(fields) + "\n")
    return path


def thumb_image(data: bytes = PNG) -> Image:
    """A thumbnail as the engine hands it over: bytes prepared and stored when the story was loaded."""
    return Image.of(data, "image/png", 1, 1)


def expected_record(post: Outgoing, *, thumb: dict | None = None, parent: PostRef | None = None,
                    root: PostRef | None = None) -> dict[str, Any]:
    record = json.loads(json.dumps(dict(post.payload)))
    if thumb is not None:
        record["embed"]["external"]["thumb"] = thumb
    if parent is not None and root is not None:
        record["reply"] = {"root": {"uri": root.extra["uri"], "cid": root.extra["cid"]},
                           "parent": {"uri": parent.extra["uri"], "cid": parent.extra["cid"]}}
    return record


def counting_hooks() -> tuple[collections.Counter[str], dict[str, Any]]:
    """httpx event hooks that count the XRPC methods an adapter calls."""
    seen: collections.Counter[str] = collections.Counter()

    def hook(request: httpx.Request) -> None:
        seen[request.url.path.removeprefix("/xrpc/")] += 1

    return seen, {"event_hooks": {"request": [hook]}}


# ================================================================ against the real PDS


@pytest.fixture
def proxy(bluesky_pds: LocalPDS) -> Iterator[FaultProxy]:  # noqa: F811
    with FaultProxy(bluesky_pds.url) as running:
        yield running


@pytest.fixture
def behind_proxy(bluesky_pds: LocalPDS, proxy: FaultProxy, bluesky_account: Account,  # noqa: F811
                 tmp_path: Path) -> BlueskyTarget:
    """An adapter that reaches the PDS through the fault-injecting proxy (3 s timeout).

    ``records()`` and ``server_record`` still read the PDS directly.
    """
    settings = bluesky_settings(tmp_path, proxy.url, bluesky_account, http_timeout="3s")
    return BlueskyTarget(bluesky_pds, bluesky_account, settings)


@pytest.mark.pds
def test_a_story_goes_out_as_a_root_with_a_card_and_thumbnail_then_two_replies_exactly_as_rendered(
        bluesky_target: BlueskyTarget, tmp_path: Path) -> None:  # noqa: F811
    item = story("s1", headline="Déjà vu: the city votes 🎉", summary="Voters decided on the new tram line.",
                 url="https://example.com/news/tram?id=7", image="thumb.png", tags=("tram", "OneYearAgo"),
                 one_year_later="The tram opened in May.")
    parts = render(item, "bluesky", RenderOptions(created_at=CREATED_AT))
    assert [p.kind for p in parts] == ["root", "followup"]
    adapter = bluesky_target.adapter
    did, pds_url = bluesky_target.account.did, bluesky_target.pds.url

    root_post = Outgoing("bluesky", "s1", "root", 1, parts[0].payload, next_tid(), attachments={"thumb": thumb_image()})
    root = adapter.publish(root_post)
    first_post = Outgoing("bluesky", "s1", "followup", 1, parts[1].payload, next_tid())
    first = adapter.reply(replying(first_post, root, root))
    second_post = outgoing("And a second reply, under the first.", card=False, kind="followup", part=2)
    second = adapter.reply(replying(second_post, first, root))

    for ref, post in ((root, root_post), (first, first_post), (second, second_post)):
        rkey = post.key
        assert ref == PostRef("bluesky", f"at://{did}/{POST}/{rkey}",
                              f"https://bsky.app/profile/{bluesky_target.account.handle}/post/{rkey}",
                              {"uri": f"at://{did}/{POST}/{rkey}", "cid": ref.extra["cid"], "rkey": rkey})
    stored = {r["uri"]: r for r in server_records(pds_url, did)}
    assert set(stored) == {root.id, first.id, second.id}
    assert {uri: r["cid"] for uri, r in stored.items()} == {r.id: r.extra["cid"] for r in (root, first, second)}

    # The root: text, link + tag facets (UTF-8 byte offsets), langs, createdAt, the card and its thumbnail.
    value = stored[root.id]["value"]
    thumb = value["embed"]["external"]["thumb"]
    assert thumb["$type"] == "blob" and thumb["mimeType"] == "image/png" and thumb["size"] == len(PNG)
    assert thumb["ref"]["$link"].startswith("bafkrei")
    assert value == expected_record(root_post, thumb=thumb)
    assert value["createdAt"] == CREATED_AT and value["langs"] == ["en"]
    text = value["text"].encode()
    features = [(text[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode(), f["features"][0])
                for f in value["facets"]]
    assert ("example.com/news/tram?id=7", {"$type": "app.bsky.richtext.facet#link",
                                           "uri": "https://example.com/news/tram?id=7"}) in features
    assert ("#tram", {"$type": "app.bsky.richtext.facet#tag", "tag": "tram"}) in features
    assert value["embed"]["external"]["uri"] == "https://example.com/news/tram?id=7"
    blob = httpx.get(f"{pds_url}/xrpc/com.atproto.sync.getBlob", params={"did": did, "cid": thumb["ref"]["$link"]})
    assert blob.content == PNG

    # The replies: root and parent strong refs, and the record exactly as rendered otherwise.
    assert stored[first.id]["value"] == expected_record(first_post, parent=root, root=root)
    assert stored[second.id]["value"] == expected_record(second_post, parent=first, root=root)
    assert stored[second.id]["value"]["reply"] == {"root": {"uri": root.id, "cid": root.extra["cid"]},
                                                  "parent": {"uri": first.id, "cid": first.extra["cid"]}}


@pytest.mark.pds
def test_sending_the_same_post_again_leaves_one_record_that_find_gives_as_the_same_ref(
        bluesky_target: BlueskyTarget, tmp_path: Path) -> None:  # noqa: F811
    adapter = bluesky_target.adapter
    root_post = outgoing(thumb=PNG)
    root = adapter.publish(root_post)
    with pytest.raises(OutcomeUnknown, match="HTTP 500"):  # the PDS answers 500 "already a value at key"
        adapter.publish(root_post)
    reply_post = outgoing("How it turned out.", card=False, kind="followup")
    reply = adapter.reply(replying(reply_post, root, root))
    with pytest.raises(OutcomeUnknown, match="HTTP 500"):
        adapter.reply(replying(reply_post, root, root))
    assert sorted(r["uri"] for r in bluesky_target.records()) == sorted([root.id, reply.id])
    assert adapter.find(root_post) == root and adapter.find(reply_post) == reply


@pytest.mark.pds
def test_a_post_that_landed_before_a_crash_is_recognised_and_not_posted_again(
        bluesky_target: BlueskyTarget) -> None:  # noqa: F811
    post = outgoing()
    # The first attempt reached the server, then the bot died before recording the answer.
    other = BlueskyAdapter(bluesky_config(bluesky_target.settings))
    landed = other.publish(post)

    adapter = bluesky_target.adapter
    assert adapter.find(post, since=NOW) == landed
    with pytest.raises(OutcomeUnknown):  # sent again, the create is refused: the engine settles it by find
        adapter.publish(post)
    assert [r["uri"] for r in bluesky_target.records()] == [landed.id]


@pytest.mark.pds
def test_the_engine_records_a_post_that_landed_before_a_crash_as_posted_without_sending_it_again(
        bluesky_target: BlueskyTarget) -> None:  # noqa: F811
    from bot.engine.sweep import Claimed

    with engine_run(bluesky_target.settings) as first:
        claimed = first.engine.claim("bluesky", NOW)  # the intent is committed, key included
        assert isinstance(claimed, Claimed) and claimed.row.key
        # The create reached the server, then the bot died before recording the answer.
        landed = BlueskyAdapter(bluesky_config(bluesky_target.settings)).publish(claimed.post)
        assert landed.extra["rkey"] == claimed.row.key
        restarted = EngineRun(engine_for(bluesky_target.settings, first.store, first.clock), first.store,
                              first.clock)
        first.clock["t"] = NOW + dt.timedelta(minutes=3)
        actions = [e.action for e in restarted.engine.reconcile(first.clock["t"], all_sending=True).events]
        row = restarted.root()
    assert actions == ["posted"] and row.status == "posted" and row.remote_id == landed.id
    assert [r["uri"] for r in bluesky_target.records()] == [landed.id]


@pytest.mark.pds
def test_a_post_the_server_refuses_is_rejected_with_its_reason_and_nothing_is_stored(
        bluesky_target: BlueskyTarget, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    # The adapter's own lexicon check would refuse this record before the request (tested below with
    # MockTransport); without it, as for a rule the bundled lexicons do not know, the server's answer counts.
    monkeypatch.setattr("adapters.bluesky._validate", lambda record, rkey: None)
    post = outgoing(card=False)
    post = dataclasses.replace(post, payload={**post.payload, "text": "a" * 301, "facets": []})  # past the renderer
    with pytest.raises(Rejected) as caught:
        bluesky_target.adapter.publish(post)
    assert "HTTP 400 InvalidRequest" in caught.value.reason and "grapheme" in caught.value.reason
    assert bluesky_target.records() == []
    assert bluesky_target.adapter.find(post) is None


@pytest.mark.pds
def test_a_record_key_that_holds_another_post_is_not_taken_for_ours(
        bluesky_target: BlueskyTarget) -> None:  # noqa: F811
    post = outgoing()
    BlueskyAdapter(bluesky_config(bluesky_target.settings)).publish(dataclasses.replace(
        post, payload={**post.payload, "text": "something else", "facets": []}))
    assert bluesky_target.adapter.find(post) is None
    with pytest.raises(OutcomeUnknown):  # the key is taken; the engine finds no post of ours under it
        bluesky_target.adapter.publish(post)
    assert len(bluesky_target.records()) == 1
    assert bluesky_target.records()[0]["value"]["text"] == "something else"


@pytest.mark.pds
def test_the_session_is_saved_0600_and_reused_by_the_next_run_without_logging_in(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path) -> None:  # noqa: F811
    settings = bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account)
    seen, hooks = counting_hooks()
    first = BlueskyAdapter(bluesky_config(settings), request_kwargs=hooks)
    assert seen[LOGIN] == 0  # no network call before the first use
    first.publish(outgoing())
    first.publish(outgoing("A second post, same session."))
    assert seen[LOGIN] == 1

    path = settings.bluesky_session_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = path.read_text()
    handle, did, access, refresh, endpoint = saved.split(":::")
    assert (handle, did, endpoint) == (bluesky_account.handle, bluesky_account.did, f"{bluesky_pds.url}/xrpc")
    assert access.count(".") == 2 and refresh.count(".") == 2 and access != refresh
    assert bluesky_account.password not in saved
    assert not list(path.parent.glob(".bluesky-session-*"))  # no temporary file left behind

    seen2, hooks2 = counting_hooks()
    second = BlueskyAdapter(bluesky_config(settings), request_kwargs=hooks2)
    assert second.whoami() == f"@{bluesky_account.handle} ({bluesky_account.did}) on {bluesky_pds.url}"
    second.publish(outgoing("Posted by the next run."))
    assert seen2[LOGIN] == 0 and seen2[REFRESH] == 0
    assert len(server_records(bluesky_pds.url, bluesky_account.did)) == 3


def fake_jwt(exp: dt.datetime, sub: str = "did:plc:fake", scope: str = "com.atproto.access") -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return ".".join([part({"alg": "HS256", "typ": "at+jwt"}),
                     part({"scope": scope, "sub": sub, "exp": int(exp.timestamp())}), "c2lnbmF0dXJl"])


def session_string(handle: str, did: str, access: str, refresh: str, endpoint: str) -> str:
    return ":::".join([handle, did, access, refresh, endpoint])


@pytest.mark.pds
@pytest.mark.parametrize("expired", [True, False], ids=["expired-access-token", "forged-tokens"])
def test_a_saved_session_the_server_refuses_is_replaced_by_one_password_login(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path, expired: bool) -> None:  # noqa: F811
    settings = bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account)
    now = dt.datetime.now(UTC)
    access = fake_jwt(now - dt.timedelta(hours=1) if expired else now + dt.timedelta(hours=1), bluesky_account.did)
    refresh = fake_jwt(now + dt.timedelta(days=30), bluesky_account.did, "com.atproto.refresh")
    stale = session_string(bluesky_account.handle, bluesky_account.did, access, refresh, f"{bluesky_pds.url}/xrpc")
    settings.bluesky_session_path.write_text(stale)
    seen, hooks = counting_hooks()
    adapter = BlueskyAdapter(bluesky_config(settings), request_kwargs=hooks)
    ref = adapter.publish(outgoing())
    assert seen[LOGIN] == 1 and seen[REFRESH] == (1 if expired else 0)
    assert [r["uri"] for r in server_records(bluesky_pds.url, bluesky_account.did)] == [ref.id]
    renewed = settings.bluesky_session_path.read_text()
    assert renewed != stale and stat.S_IMODE(settings.bluesky_session_path.stat().st_mode) == 0o600
    adapter.publish(outgoing("Still the same session."))
    assert seen[LOGIN] == 1


@pytest.mark.pds
def test_a_wrong_app_password_is_auth_failed_and_never_shown(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path) -> None:  # noqa: F811
    wrong = dataclasses.replace(bluesky_account, password="wrong-pass-1234-abcd")
    adapter = BlueskyAdapter(bluesky_config(bluesky_settings(tmp_path, bluesky_pds.url, wrong)))
    with pytest.raises(AuthFailed) as caught:
        adapter.publish(outgoing())
    assert "HTTP 401" in str(caught.value)
    assert "wrong-pass-1234-abcd" not in str(caught.value) + repr(caught.value)
    with pytest.raises(AuthFailed):
        adapter.whoami()
    assert not (tmp_path / "bluesky-session").exists()


@pytest.mark.pds
def test_thread_state_is_open_while_the_post_exists_even_with_a_threadgate_and_gone_once_deleted(
        bluesky_target: BlueskyTarget) -> None:  # noqa: F811
    adapter = bluesky_target.adapter
    root = adapter.publish(outgoing())
    assert adapter.thread_state(root) is ThreadState.OPEN
    gate = {"$type": "app.bsky.feed.threadgate", "post": root.id, "allow": [], "createdAt": CREATED_AT}
    adapter._procedure(CREATE, json.dumps({"repo": bluesky_target.account.did, "collection":
                                           "app.bsky.feed.threadgate", "rkey": root.extra["rkey"],
                                           "record": gate}).encode(), "application/json", write=True)
    assert adapter.thread_state(root) is ThreadState.OPEN
    assert adapter.reply(replying(outgoing("Our own reply is still allowed.", card=False), root, root))
    bluesky_target.remove(root)
    assert adapter.thread_state(root) is ThreadState.GONE
    with pytest.raises(pytest.skip.Exception, match="always reply"):
        bluesky_target.lock(root)


@pytest.mark.pds
def test_whoami_names_the_account_and_its_server(bluesky_target: BlueskyTarget) -> None:  # noqa: F811
    account = bluesky_target.account
    assert bluesky_target.adapter.whoami() == f"@{account.handle} ({account.did}) on {bluesky_target.pds.url}"
    assert isinstance(bluesky_target.adapter, Adapter)


@pytest.mark.pds
def test_the_engine_posts_a_story_and_its_multi_part_followup_as_one_thread(
        bluesky_pds: LocalPDS, bluesky_account: Account, tmp_path: Path) -> None:  # noqa: F811
    from PIL import Image as PILImage

    from bot.engine import Engine
    from bot.planner import Planner
    from bot.sources.stories import load_stories
    from bot.store import Store

    settings = bluesky_settings(tmp_path, bluesky_pds.url, bluesky_account)
    store = Store(settings.database_url)
    clock = {"t": dt.datetime(2026, 1, 1, tzinfo=UTC)}
    try:
        engine = Engine(store, {"bluesky": BlueskyAdapter(bluesky_config(settings))}, settings, clock=lambda: clock["t"],
                        worker="test")
        reveal = " ".join(f"Sentence number {i} tells part of how things turned out." for i in range(12))
        when = dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
        # The image is read when the story is loaded; then the file goes away and another takes its name.
        picture = tmp_path / "stories" / "thumb.png"
        picture.parent.mkdir()
        PILImage.new("RGB", (60, 40), "teal").save(picture)
        (loaded,) = load_stories([write_story(picture.parent, "s.jsonl", {
            "id": "s1", "date": when.isoformat(), "headline": "Headline of s1", "url": "https://example.com/s1",
            "one_year_later": reveal, "image": "thumb.png"})])
        Planner(store, settings).load([loaded], now=clock["t"])
        kept = loaded.prepared_image
        picture.unlink()
        PILImage.new("RGB", (60, 40), "orange").save(picture)
        # The root on time, then the follow-up; the engine may pace its parts a few seconds apart.
        moments = [NOW] + [NOW + settings.followup_delay + dt.timedelta(seconds=15 * i) for i in range(8)]
        for moment in moments:
            clock["t"] = moment
            engine.run_once(moment)
    finally:
        store.dispose()
    records = sorted(server_records(bluesky_pds.url, bluesky_account.did), key=lambda r: r["value"]["createdAt"])
    by_uri = {r["uri"]: r for r in records}
    roots = [r for r in records if "reply" not in r["value"]]
    assert len(roots) == 1 and len(records) >= 3
    root = roots[0]
    thumb = root["value"]["embed"]["external"]["thumb"]
    assert thumb["mimeType"] == "image/png" and thumb["size"] == kept.size
    blob = httpx.get(f"{bluesky_pds.url}/xrpc/com.atproto.sync.getBlob",
                     params={"did": bluesky_account.did, "cid": thumb["ref"]["$link"]})
    assert blob.content == kept.data  # the bytes stored at load time, not the file there now
    chain, parent = [], root
    while True:
        children = [r for r in records if r["value"].get("reply", {}).get("parent", {}).get("uri") == parent["uri"]]
        if not children:
            break
        assert len(children) == 1
        child = children[0]
        assert child["value"]["reply"] == {"root": {"uri": root["uri"], "cid": root["cid"]},
                                           "parent": {"uri": parent["uri"], "cid": parent["cid"]}}
        chain.append(child)
        parent = child
    assert len(chain) == len(records) - 1 and set(by_uri) == {root["uri"], *(c["uri"] for c in chain)}


# ---------------------------------------------------------------- faults injected in front of the PDS


@dataclasses.dataclass
class EngineRun:
    """An engine on a simulated clock, with the Bluesky adapter as its one platform and story s1 queued."""

    engine: Any
    store: Any
    clock: dict[str, dt.datetime]

    def at(self, moment: dt.datetime) -> list[str]:
        """Run a sweep at ``moment``; the actions of its events."""
        self.clock["t"] = moment
        return [e.action for e in self.engine.run_once(moment).events]

    def root(self) -> Any:
        from sqlalchemy import select

        from bot.models import DeliveryRow
        with self.store.session() as session:
            return session.scalar(select(DeliveryRow).where(DeliveryRow.platform == "bluesky",
                                                            DeliveryRow.kind == "root"))


def engine_for(settings: Settings, store: Any, now: dict[str, dt.datetime], **adapter: Any) -> Any:
    """An engine whose clock reads ``now["t"]``; ``adapter`` are the Bluesky adapter's keyword arguments."""
    from bot.engine import Engine

    return Engine(store, {"bluesky": BlueskyAdapter(bluesky_config(settings), **adapter)}, settings, clock=lambda: now["t"],
                  worker="test")


@contextlib.contextmanager
def engine_run(settings: Settings, **adapter: Any) -> Iterator[EngineRun]:
    """An :class:`EngineRun` whose story s1 is due at ``NOW`` (its root; the follow-up a day later)."""
    from bot.planner import Planner
    from bot.store import Store

    store = Store(settings.database_url)
    clock = {"t": NOW - dt.timedelta(days=1)}
    try:
        Planner(store, settings).load([story("s1", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC))], now=clock["t"])
        yield EngineRun(engine_for(settings, store, clock, **adapter), store, clock)
    finally:
        store.dispose()



@pytest.mark.pds
def test_a_create_the_server_applied_but_whose_answer_was_lost_is_recorded_posted_with_its_ref(
        behind_proxy: BlueskyTarget, proxy: FaultProxy) -> None:
    with engine_run(behind_proxy.settings) as run:
        proxy.drop_next(CREATE)
        assert "posted" in run.at(NOW)
        row = run.root()
    assert ("POST", CREATE, "dropped") in proxy.log
    assert row.status == "posted" and [r["uri"] for r in behind_proxy.records()] == [row.remote_id]
    assert server_record(behind_proxy.pds.url, row.remote_id)["cid"] == row.remote_extra["cid"]
    assert proxy.counts[CREATE] == 1


@pytest.mark.pds
def test_a_lost_answer_and_a_failing_lookup_stay_unknown_until_a_later_lookup_finds_the_post(
        behind_proxy: BlueskyTarget, proxy: FaultProxy) -> None:
    with engine_run(behind_proxy.settings) as run:
        proxy.drop_next(CREATE)
        proxy.respond_next(GET, 503)
        assert "retry-later" in run.at(NOW)
        waiting = run.root()
        assert waiting.status == "sending" and "503" in waiting.last_error
        assert "posted" in run.at(NOW + dt.timedelta(minutes=3))
        row = run.root()
    assert row.status == "posted" and [r["uri"] for r in behind_proxy.records()] == [row.remote_id]
    assert proxy.counts[CREATE] == 1  # never sent again while its outcome was not known


@pytest.mark.pds
def test_a_5xx_before_the_write_is_looked_up_and_the_post_then_sent_once_under_the_same_key(
        behind_proxy: BlueskyTarget, proxy: FaultProxy) -> None:
    with engine_run(behind_proxy.settings) as run:
        proxy.respond_next(CREATE, 503)
        assert "retry-later" in run.at(NOW)  # not on the server yet; it may still land
        assert run.root().status == "sending" and behind_proxy.records() == []
        # certainly absent past ONEYEARAGO_SETTLE: a failed attempt, sent again after its backoff
        assert "retry-later" in run.at(NOW + dt.timedelta(minutes=3)) and run.root().status == "pending"
        assert "posted" in run.at(NOW + dt.timedelta(minutes=10))
        row = run.root()
    assert row.status == "posted" and [r["uri"] for r in behind_proxy.records()] == [row.remote_id]
    assert row.remote_id.endswith(f"/{row.key}") and proxy.counts[CREATE] == 2


@pytest.mark.pds
def test_a_slow_create_that_lands_after_the_timeout_is_still_posted_once(
        behind_proxy: BlueskyTarget, proxy: FaultProxy) -> None:
    with engine_run(behind_proxy.settings) as run:
        run.engine.adapters["bluesky"].whoami()
        proxy.delay_next(CREATE, 4.5)  # the adapter gives up after 3 s; the proxy forwards at 4.5 s
        first = run.at(NOW)
        deadline = dt.datetime.now(UTC) + dt.timedelta(seconds=10)
        while not behind_proxy.records() and dt.datetime.now(UTC) < deadline:
            threading.Event().wait(0.2)
        run.at(NOW + dt.timedelta(minutes=3))  # the lookup under the same key finds it
        row = run.root()
    assert "posted" in first or "retry-later" in first
    assert row.status == "posted" and [r["uri"] for r in behind_proxy.records()] == [row.remote_id]
    assert proxy.counts[CREATE] == 1


@pytest.mark.pds
def test_a_429_waits_until_the_servers_reset_time_and_sends_nothing(
        behind_proxy: BlueskyTarget, proxy: FaultProxy) -> None:
    reset = int(dt.datetime.now(UTC).timestamp()) + 600
    proxy.respond_next(CREATE, 429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                       {"RateLimit-Limit": "5000", "RateLimit-Remaining": "0", "RateLimit-Reset": str(reset),
                        "RateLimit-Policy": "5000;w=3600"})
    with pytest.raises(RateLimited) as caught:
        behind_proxy.adapter.publish(outgoing())
    assert caught.value.retry_at == dt.datetime.fromtimestamp(reset, UTC)
    assert behind_proxy.records() == []
    assert proxy.counts[GET] == 0  # a 429 is certain: nothing to look up


# ================================================================ unit: MockTransport, no server

DID = "did:plc:abcdefghijklmnopqrstuvwx"
HANDLE = "oneyearago.test"
PASSWORD = "abcd-efgh-ijkl-mnop"
PDS_URL = "http://127.0.0.1:9"
ACCESS = fake_jwt(NOW + dt.timedelta(days=3650), DID)
REFRESH_TOKEN = fake_jwt(NOW + dt.timedelta(days=3650), DID, "com.atproto.refresh")


@dataclasses.dataclass
class Seen:
    method: str
    nsid: str
    params: dict[str, str]
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class MockPDS:
    """Answers the SDK's requests like a PDS would, with scripted answers per method first."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.script: dict[str, collections.deque[Any]] = collections.defaultdict(collections.deque)
        self.records: dict[str, dict[str, Any]] = {}
        self.password = PASSWORD

    def then(self, nsid: str, *answers: Any) -> MockPDS:
        """Queue answers for ``nsid``: an ``httpx.Response``, an exception class, or a callable."""
        self.script[nsid].extend(answers)
        return self

    def calls(self, nsid: str) -> list[Seen]:
        return [s for s in self.seen if s.nsid == nsid]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        nsid = request.url.path.removeprefix("/xrpc/")
        self.seen.append(Seen(request.method, nsid, dict(request.url.params), request.headers, request.read()))
        if self.script[nsid]:
            answer = self.script[nsid].popleft()
            if isinstance(answer, type) and issubclass(answer, Exception):
                raise answer("injected", request=request)
            if callable(answer):
                return answer(request)
            return answer
        return getattr(self, "_" + nsid.rsplit(".", 1)[1])(request)

    def _createSession(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.read())
        if body["password"] != self.password:
            return xrpc_error(401, "AuthenticationRequired", "Invalid identifier or password")
        return httpx.Response(200, json={"did": DID, "handle": HANDLE, "accessJwt": ACCESS,
                                         "refreshJwt": REFRESH_TOKEN, "active": True})

    def _getSession(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"did": DID, "handle": HANDLE, "active": True})

    def _createRecord(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.read())
        uri = f"at://{body['repo']}/{body['collection']}/{body['rkey']}"
        if uri in self.records:
            return xrpc_error(500, "InternalServerError", "Internal Server Error")
        self.records[uri] = body["record"]
        return httpx.Response(200, json={"uri": uri, "cid": cid_of(uri), "validationStatus": "valid"})

    def _getRecord(self, request: httpx.Request) -> httpx.Response:
        p = request.url.params
        uri = f"at://{p['repo']}/{p['collection']}/{p['rkey']}"
        if uri not in self.records:
            return xrpc_error(400, "RecordNotFound", f"Could not locate record: {uri}")
        return httpx.Response(200, json={"uri": uri, "cid": cid_of(uri), "value": self.records[uri]})

    def _uploadBlob(self, request: httpx.Request) -> httpx.Response:
        data = request.read()
        return httpx.Response(200, json={"blob": {"$type": "blob", "ref": {"$link": "bafkreifakeblob"},
                                                  "mimeType": request.headers["content-type"], "size": len(data)}})


def cid_of(uri: str) -> str:
    return "bafyrei" + base64.b32encode(uri.encode()).decode().lower().rstrip("=")[:52]


def xrpc_error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "message": message}, headers=headers)


@pytest.fixture
def mock_pds() -> MockPDS:
    return MockPDS()


@pytest.fixture
def unit_settings(tmp_path: Path) -> Settings:
    return load_settings({"database_url": f"sqlite:///{tmp_path / 'queue.db'}", "mode": "live",
                          "platforms": "bluesky", "bluesky_handle": HANDLE, "bluesky_app_password": PASSWORD,
                          "bluesky_pds_url": PDS_URL, "bluesky_session_file": str(tmp_path / "session"),
                          "http_timeout": "5s"}, environ={}, env_file=None)


@pytest.fixture
def make_adapter(mock_pds: MockPDS, unit_settings: Settings) -> Callable[..., BlueskyAdapter]:
    def make(settings: Settings = unit_settings) -> BlueskyAdapter:
        return BlueskyAdapter(bluesky_config(settings), clock=lambda: NOW, request_kwargs={"transport": mock_pds.transport()})

    return make


@pytest.fixture
def adapter(make_adapter: Callable[..., BlueskyAdapter]) -> BlueskyAdapter:
    return make_adapter()


def test_the_adapter_is_the_live_bluesky_adapter_and_names_its_required_settings(
        adapter: BlueskyAdapter, tmp_path: Path) -> None:
    assert isinstance(adapter, Adapter) and adapter.platform == "bluesky"
    assert live_adapter_class("bluesky") is BlueskyAdapter
    empty = load_settings({"database_url": f"sqlite:///{tmp_path / 'q.db'}"}, environ={}, env_file=None)
    assert missing_settings(empty, "bluesky") == ["ONEYEARAGO_BLUESKY_HANDLE", "ONEYEARAGO_BLUESKY_APP_PASSWORD"]


def test_the_record_is_sent_byte_for_byte_under_the_chosen_key_after_one_login(
        adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    post = outgoing()
    before = json.dumps(dict(post.payload))
    ref = adapter.publish(post)
    (login,) = mock_pds.calls(LOGIN)
    assert login.json() == {"identifier": HANDLE, "password": PASSWORD}
    (create,) = mock_pds.calls(CREATE)
    assert create.method == "POST" and create.headers["content-type"] == "application/json"
    assert create.headers["authorization"] == f"Bearer {ACCESS}"
    # The SDK's models would add "$type" to the facet index and the card: the record goes as rendered.
    assert create.json() == {"repo": DID, "collection": POST, "rkey": post.key, "record": dict(post.payload)}
    assert json.dumps(dict(post.payload)) == before  # the caller's payload is untouched
    uri = f"at://{DID}/{POST}/{post.key}"
    assert ref == PostRef("bluesky", uri, f"https://bsky.app/profile/{HANDLE}/post/{post.key}",
                          {"uri": uri, "cid": cid_of(uri), "rkey": post.key})
    assert [s.nsid for s in mock_pds.seen] == [LOGIN, CREATE]


def test_a_reply_adds_root_and_parent_strong_refs_to_the_record(adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    root = adapter.publish(outgoing())
    parent = adapter.reply(replying(outgoing("Part one.", card=False), root, root))
    post = outgoing("Part two.", card=False)
    adapter.reply(replying(post, parent, root))
    record = mock_pds.calls(CREATE)[-1].json()["record"]
    assert record == {**post.payload, "reply": {"root": {"uri": root.id, "cid": root.extra["cid"]},
                                               "parent": {"uri": parent.id, "cid": parent.extra["cid"]}}}


def test_a_reply_to_a_ref_without_uri_and_cid_is_rejected_before_sending(
        adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    bare = PostRef("bluesky", "at://x/y/z", "")
    with pytest.raises(Rejected, match="no uri and cid"):
        adapter.reply(replying(outgoing(), bare, bare))
    assert mock_pds.calls(CREATE) == []


@pytest.mark.parametrize("key", ["", "not-a-tid", "3l25zusnsfck", "zl25zusnsfck2"])
def test_a_record_key_that_is_not_a_tid_is_rejected_before_sending(
        adapter: BlueskyAdapter, mock_pds: MockPDS, key: str) -> None:
    with pytest.raises(Rejected, match="not a TID"):
        adapter.publish(dataclasses.replace(outgoing(), key=key))
    assert mock_pds.seen == []


@pytest.mark.parametrize(("record", "where"), [
    ({"text": "x" * 301}, "record/text"),
    ({"createdAt": "yesterday"}, "record/createdAt"),
    ({"langs": ["not a language tag"]}, "record/langs/0"),
    ({"facets": [{"index": {"byteStart": 0, "byteEnd": 3},
                  "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "not a uri"}]}]},
     "record/facets/0/features/0/uri"),
], ids=["text-too-long", "bad-created-at", "bad-language", "bad-link-facet"])
@pytest.mark.parametrize("reply", [False, True], ids=["root", "followup"])
def test_a_record_that_does_not_match_the_lexicon_is_rejected_before_any_request(
        adapter: BlueskyAdapter, mock_pds: MockPDS, record: dict[str, Any], where: str, reply: bool) -> None:
    post = outgoing(thumb=PNG, **record)
    with pytest.raises(Rejected, match=f"does not match the app.bsky.feed.post lexicon: {where}"):
        if reply:
            parent = PostRef("bluesky", "at://did:plc:abc/app.bsky.feed.post/3l25zusnsfck2", "",
                             {"uri": "at://did:plc:abc/app.bsky.feed.post/3l25zusnsfck2", "cid": "bafyparent"})
            adapter.reply(dataclasses.replace(post, kind="followup", parent=parent, root=parent))
        else:
            adapter.publish(post)
    assert mock_pds.seen == []


def test_a_reply_whose_strong_refs_are_malformed_is_rejected_before_any_request(
        adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    parent = PostRef("bluesky", "not-a-uri", "", {"uri": "not-a-uri", "cid": "bafyparent"})
    with pytest.raises(Rejected, match="record/reply/root/uri"):
        adapter.reply(dataclasses.replace(outgoing(), kind="followup", parent=parent, root=parent))
    assert mock_pds.seen == []


def test_a_429_waits_until_the_ratelimit_reset_header(adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    reset = int((NOW + dt.timedelta(minutes=42)).timestamp())
    mock_pds.then(CREATE, xrpc_error(429, "RateLimitExceeded", "Rate Limit Exceeded",
                                     {"RateLimit-Reset": str(reset), "RateLimit-Remaining": "0"}))
    with pytest.raises(RateLimited) as caught:
        adapter.publish(outgoing())
    assert caught.value.retry_at == NOW + dt.timedelta(minutes=42)
    assert "HTTP 429 RateLimitExceeded" in caught.value.reason
    assert mock_pds.calls(GET) == []


def test_a_429_without_a_reset_waits_five_minutes(adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    mock_pds.then(CREATE, xrpc_error(429, "RateLimitExceeded", "slow down"))
    with pytest.raises(RateLimited) as caught:
        adapter.publish(outgoing())
    assert caught.value.retry_at == NOW + dt.timedelta(minutes=5)


def test_a_429_whose_reset_has_passed_tries_again_shortly(adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    mock_pds.then(CREATE, xrpc_error(429, "RateLimitExceeded", "slow down", {"RateLimit-Reset": "1"}))
    with pytest.raises(RateLimited) as caught:
        adapter.publish(outgoing())
    assert caught.value.retry_at == NOW + dt.timedelta(seconds=10)


def test_a_429_on_a_read_is_rate_limited_too(adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    mock_pds.then(GET, xrpc_error(429, "RateLimitExceeded", "slow down", {"Retry-After": "30"}))
    with pytest.raises(RateLimited) as caught:
        adapter.find(outgoing())
    assert caught.value.retry_at == NOW + dt.timedelta(seconds=30)


def test_a_wrong_password_is_auth_failed_after_a_single_login_attempt(
        adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    mock_pds.password = "another"
    with pytest.raises(AuthFailed) as caught:
        adapter.publish(outgoing())
    assert caught.value.reason == "com.atproto.server.createSession: HTTP 401 AuthenticationRequired: " \
                                  "Invalid identifier or password"
    assert len(mock_pds.calls(LOGIN)) == 1 and mock_pds.calls(CREATE) == []


@pytest.mark.parametrize("answer", [
    xrpc_error(401, "AuthenticationRequired", "Authentication Required"),
    xrpc_error(400, "ExpiredToken", "Token has expired"),
    xrpc_error(400, "InvalidToken", "Token could not be verified"),
], ids=["401", "400-ExpiredToken", "400-InvalidToken"])
def test_a_refused_fresh_session_is_auth_failed_without_logging_in_again(
        adapter: BlueskyAdapter, mock_pds: MockPDS, answer: httpx.Response) -> None:
    mock_pds.then(CREATE, answer)
    with pytest.raises(AuthFailed):
        adapter.publish(outgoing())
    assert len(mock_pds.calls(LOGIN)) == 1 and len(mock_pds.calls(CREATE)) == 1


def save_session(settings: Settings, access: str = ACCESS, refresh: str = REFRESH_TOKEN,
                 handle: str = HANDLE, did: str = DID) -> str:
    text = session_string(handle, did, access, refresh, f"{PDS_URL}/xrpc")
    settings.bluesky_session_path.write_text(text)
    return text


def test_a_saved_session_is_used_without_logging_in(
        make_adapter: Callable[..., BlueskyAdapter], mock_pds: MockPDS, unit_settings: Settings) -> None:
    save_session(unit_settings)
    adapter = make_adapter()
    assert adapter.whoami() == f"@{HANDLE} ({DID}) on {PDS_URL}"
    adapter.publish(outgoing())
    assert mock_pds.calls(LOGIN) == [] and mock_pds.calls(REFRESH) == []
    assert mock_pds.calls(CREATE)[0].headers["authorization"] == f"Bearer {ACCESS}"


def test_a_saved_session_the_server_refuses_is_replaced_by_one_login_and_the_post_is_sent(
        make_adapter: Callable[..., BlueskyAdapter], mock_pds: MockPDS, unit_settings: Settings) -> None:
    old_access = fake_jwt(NOW + dt.timedelta(days=3000), DID)
    stale = save_session(unit_settings, access=old_access)
    mock_pds.then(CREATE, xrpc_error(400, "ExpiredToken", "Token has been revoked"))
    ref = make_adapter().publish(outgoing())
    assert ref.id.startswith(f"at://{DID}/")
    assert len(mock_pds.calls(LOGIN)) == 1 and len(mock_pds.calls(CREATE)) == 2
    saved = unit_settings.bluesky_session_path.read_text()
    assert saved != stale and ACCESS in saved and stat.S_IMODE(unit_settings.bluesky_session_path.stat().st_mode) \
        == 0o600


def test_a_saved_session_and_then_the_password_both_refused_is_auth_failed(
        make_adapter: Callable[..., BlueskyAdapter], mock_pds: MockPDS, unit_settings: Settings) -> None:
    save_session(unit_settings)
    mock_pds.then(CREATE, xrpc_error(401, "AuthenticationRequired", "no"))
    mock_pds.password = "changed"
    with pytest.raises(AuthFailed, match="createSession: HTTP 401"):
        make_adapter().publish(outgoing())
    assert len(mock_pds.calls(LOGIN)) == 1


def test_an_expired_access_token_is_refreshed_and_the_new_session_saved(
        make_adapter: Callable[..., BlueskyAdapter], mock_pds: MockPDS, unit_settings: Settings) -> None:
    # The SDK reads the real clock to decide; a token that expired in 2001 is due whatever the date.
    save_session(unit_settings, access=fake_jwt(dt.datetime(2001, 1, 1, tzinfo=UTC), DID))
    new_access = fake_jwt(NOW + dt.timedelta(days=3651), DID)
    mock_pds.then(REFRESH, httpx.Response(200, json={"did": DID, "handle": HANDLE, "accessJwt": new_access,
                                                     "refreshJwt": REFRESH_TOKEN}))
    make_adapter().publish(outgoing())
    (refresh,) = mock_pds.calls(REFRESH)
    assert refresh.headers["authorization"] == f"Bearer {REFRESH_TOKEN}"
    assert mock_pds.calls(LOGIN) == []
    assert mock_pds.calls(CREATE)[0].headers["authorization"] == f"Bearer {new_access}"
    assert unit_settings.bluesky_session_path.read_text().split(":::")[2] == new_access


@pytest.mark.parametrize("content", [
    "garbage",
    session_string(HANDLE, DID, "not-a-jwt", "not-a-jwt", PDS_URL),
    session_string(HANDLE, DID, ACCESS, fake_jwt(NOW - dt.timedelta(days=1), DID, "com.atproto.refresh"), PDS_URL),
    session_string("someone-else.test", "did:plc:someoneelse", ACCESS, REFRESH_TOKEN, PDS_URL),
], ids=["not-a-session", "unreadable-tokens", "refresh-token-expired", "another-account"])
def test_an_unusable_session_file_is_ignored_and_the_password_used_once(
        make_adapter: Callable[..., BlueskyAdapter], mock_pds: MockPDS, unit_settings: Settings,
        content: str) -> None:
    unit_settings.bluesky_session_path.write_text(content)
    make_adapter().publish(outgoing())
    assert [s.nsid for s in mock_pds.seen] == [LOGIN, CREATE]
    assert unit_settings.bluesky_session_path.read_text().split(":::")[:2] == [HANDLE, DID]


def test_a_session_that_cannot_be_saved_is_logged_and_posting_goes_on(
        make_adapter: Callable[..., BlueskyAdapter], mock_pds: MockPDS, unit_settings: Settings,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    settings = dataclasses.replace(unit_settings, bluesky_session_file=blocked / "session")
    with caplog.at_level(logging.WARNING, logger="adapters.bluesky"):
        make_adapter(settings).publish(outgoing())
    assert "cannot save the session" in caplog.text and PASSWORD not in caplog.text


def test_a_400_invalid_request_is_rejected_with_the_servers_message(
        adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    mock_pds.then(CREATE, xrpc_error(400, "InvalidRequest", "Invalid app.bsky.feed.post record: "
                                                           "Record/text must not be longer than 300 graphemes"))
    with pytest.raises(Rejected) as caught:
        adapter.publish(outgoing())
    assert caught.value.reason == ("com.atproto.repo.createRecord: HTTP 400 InvalidRequest: Invalid "
                                   "app.bsky.feed.post record: Record/text must not be longer than 300 graphemes")
    assert mock_pds.calls(GET) == []


def test_a_500_on_create_with_our_record_already_there_is_reported_unknown_and_find_gives_its_ref(
        adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    post = outgoing()
    first = adapter.publish(post)
    with pytest.raises(OutcomeUnknown, match="HTTP 500"):
        adapter.publish(post)  # the adapter reports; the engine settles (by find, below)
    assert [s.nsid for s in mock_pds.seen] == [LOGIN, CREATE, CREATE]
    assert adapter.find(post) == first and len(mock_pds.records) == 1
    assert mock_pds.calls(GET)[0].params == {"repo": DID, "collection": POST, "rkey": post.key}


UNCLEAR = pytest.mark.parametrize("failure", [
    xrpc_error(500, "InternalServerError", "Internal Server Error"),
    xrpc_error(502, "UpstreamFailure", "Bad Gateway"),
    xrpc_error(503, "NotEnoughResources", "try later"),
    httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError,
], ids=["500", "502", "503", "read-timeout", "write-timeout", "disconnected", "read-error"])


@UNCLEAR
def test_an_unclear_create_failure_is_reported_as_unknown_without_a_lookup(
        adapter: BlueskyAdapter, mock_pds: MockPDS, failure: Any) -> None:
    adapter.whoami()
    mock_pds.then(CREATE, failure)
    with pytest.raises(OutcomeUnknown):
        adapter.publish(outgoing())
    assert mock_pds.calls(GET) == []  # settling is the engine's (bot/engine/settle.py)


def applied_then(mock_pds: MockPDS, failure: Any) -> Callable[[httpx.Request], httpx.Response]:
    """A create the server applies, whose answer is then lost (``failure``)."""
    def answer(request: httpx.Request) -> httpx.Response:
        mock_pds._createRecord(request)
        if isinstance(failure, httpx.Response):
            return failure
        raise failure("injected", request=request)

    return answer


@pytest.fixture
def unit_engine(mock_pds: MockPDS, unit_settings: Settings) -> Iterator[EngineRun]:
    with engine_run(unit_settings, clock=lambda: NOW, request_kwargs={"transport": mock_pds.transport()}) as run:
        yield run


@UNCLEAR
def test_the_engine_settles_an_unclear_create_that_landed_as_posted_once_with_its_ref(
        unit_engine: EngineRun, mock_pds: MockPDS, failure: Any) -> None:
    mock_pds.then(CREATE, applied_then(mock_pds, failure))
    assert "posted" in unit_engine.at(NOW)
    row = unit_engine.root()
    assert row.status == "posted" and list(mock_pds.records) == [row.remote_id]
    assert row.remote_id == f"at://{DID}/{POST}/{row.key}" and row.remote_extra["cid"] == cid_of(row.remote_id)
    assert len(mock_pds.calls(CREATE)) == 1 and mock_pds.calls(GET)[0].params["rkey"] == row.key


@UNCLEAR
def test_the_engine_sends_an_unclear_create_found_absent_again_under_the_same_key_once(
        unit_engine: EngineRun, mock_pds: MockPDS, failure: Any) -> None:
    mock_pds.then(CREATE, failure)
    assert "retry-later" in unit_engine.at(NOW)  # not found yet: it may still land, so nothing is resent
    assert unit_engine.root().status == "sending" and len(mock_pds.calls(CREATE)) == 1
    unit_engine.at(NOW + dt.timedelta(minutes=3))  # past ONEYEARAGO_SETTLE: certainly absent, a failed attempt
    row = unit_engine.root()
    assert row.status == "pending" and row.not_before is not None and len(mock_pds.calls(CREATE)) == 1
    unit_engine.at(NOW + dt.timedelta(minutes=10))  # past the backoff: sent again
    row = unit_engine.root()
    assert row.status == "posted" and list(mock_pds.records) == [row.remote_id]
    first, second = mock_pds.calls(CREATE)
    assert first.json()["rkey"] == second.json()["rkey"] == row.key and first.body == second.body


@UNCLEAR
def test_the_engine_leaves_an_unclear_create_whose_lookup_fails_sending_and_settles_it_later(
        unit_engine: EngineRun, mock_pds: MockPDS, failure: Any) -> None:
    mock_pds.then(CREATE, applied_then(mock_pds, failure)).then(GET, xrpc_error(503, "Unavailable", "down"))
    assert "retry-later" in unit_engine.at(NOW)
    row = unit_engine.root()
    assert row.status == "sending" and row.remote_id is None and "looking it up failed" in row.last_error
    unit_engine.at(NOW + dt.timedelta(minutes=3))
    row = unit_engine.root()
    assert row.status == "posted" and list(mock_pds.records) == [row.remote_id]
    assert len(mock_pds.calls(CREATE)) == 1  # never resent while its outcome was not known


def test_the_engine_never_takes_another_post_under_its_record_key_for_ours(
        unit_engine: EngineRun, mock_pds: MockPDS) -> None:
    from sqlalchemy import update

    from bot.models import DeliveryRow
    key = next_tid()
    with unit_engine.store.session() as session:
        session.execute(update(DeliveryRow).where(DeliveryRow.platform == "bluesky", DeliveryRow.kind == "root")
                        .values(key=key))
    other = f"at://{DID}/{POST}/{key}"
    mock_pds.records[other] = {**outgoing().payload, "text": "not ours"}
    for minutes in (0, 3, 6, 9):
        unit_engine.at(NOW + dt.timedelta(minutes=minutes))
        row = unit_engine.root()
        assert row.status != "posted" and row.remote_id is None
    assert list(mock_pds.records) == [other] and mock_pds.records[other]["text"] == "not ours"
    assert {c.json()["rkey"] for c in mock_pds.calls(CREATE)} == {key}


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_a_create_that_never_left_is_transient_without_a_lookup(
        adapter: BlueskyAdapter, mock_pds: MockPDS, failure: type[Exception]) -> None:
    adapter.whoami()
    mock_pds.then(CREATE, failure)
    with pytest.raises(Transient, match="cannot connect"):
        adapter.publish(outgoing())
    assert mock_pds.calls(GET) == []


@pytest.mark.parametrize("failure", [
    httpx.ReadTimeout, httpx.ConnectError, httpx.RemoteProtocolError,
    xrpc_error(500, "InternalServerError", "boom"), xrpc_error(502, "UpstreamFailure", "bad gateway"),
], ids=["read-timeout", "connect-error", "disconnected", "500", "502"])
@pytest.mark.parametrize("call", ["find", "thread_state", "whoami"])
def test_a_failed_read_is_transient(adapter: BlueskyAdapter, mock_pds: MockPDS, failure: Any, call: str) -> None:
    adapter.whoami()
    ref = adapter.publish(outgoing())
    mock_pds.then(GET, failure).then("com.atproto.server.getSession", failure)
    with pytest.raises(Transient):
        {"find": lambda: adapter.find(outgoing(key=ref.extra["rkey"])), "thread_state": lambda: adapter.thread_state(ref),
         "whoami": adapter.whoami}[call]()


def test_thread_state_is_gone_when_the_record_is_not_found_and_open_when_found(
        adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    ref = adapter.publish(outgoing())
    assert adapter.thread_state(ref) is ThreadState.OPEN
    assert [s.params["collection"] for s in mock_pds.calls(GET)] == [POST, "app.bsky.feed.threadgate"]
    mock_pds.records.clear()
    assert adapter.thread_state(ref) is ThreadState.GONE
    mock_pds.then(GET, xrpc_error(400, "InvalidRequest", "Could not locate record"))
    assert adapter.thread_state(ref) is ThreadState.GONE


def test_find_returns_our_post_by_its_key_and_ignores_another_one(adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    post = outgoing()
    assert adapter.find(post, since=NOW) is None
    ref = adapter.publish(post)
    assert adapter.find(post, since=NOW) == ref
    mock_pds.records[ref.id] = {**post.payload, "text": "not ours"}
    assert adapter.find(post, since=NOW) is None


def test_the_thumbnail_is_uploaded_as_a_blob_and_put_into_the_card(
        adapter: BlueskyAdapter, mock_pds: MockPDS, tmp_path: Path) -> None:
    post = outgoing(thumb=PNG)
    adapter.publish(post)
    (upload,) = mock_pds.calls(UPLOAD)
    assert upload.headers["content-type"] == "image/png" and upload.body == PNG
    record = mock_pds.calls(CREATE)[0].json()["record"]
    assert record["embed"]["external"]["thumb"] == {"$type": "blob", "ref": {"$link": "bafkreifakeblob"},
                                                     "mimeType": "image/png", "size": len(PNG)}
    assert "thumb" not in post.payload["embed"]["external"]


@pytest.mark.parametrize(("data", "message"), [
    (PNG + b"\0" * 1_000_000, "1,000,070 bytes; a link card allows 1,000,000"),
    (b"%PDF-1.7 not an image", "is not a PNG, JPEG, GIF or WebP image"),
], ids=["too-big", "not-an-image"])
def test_an_unusable_thumbnail_is_rejected_before_anything_is_sent(
        adapter: BlueskyAdapter, mock_pds: MockPDS, data: bytes, message: str) -> None:
    # load never stores such bytes (posts.media re-encodes every image); the adapter checks again all the same
    with pytest.raises(Rejected, match=message):
        adapter.publish(outgoing(thumb=data))
    assert mock_pds.calls(UPLOAD) == [] and mock_pds.calls(CREATE) == []


def test_a_thumbnail_without_a_card_is_not_uploaded(adapter: BlueskyAdapter, mock_pds: MockPDS,
                                                    tmp_path: Path) -> None:
    adapter.publish(outgoing(card=False, thumb=PNG))
    assert mock_pds.calls(UPLOAD) == []


def test_a_failed_upload_is_not_an_unknown_outcome(adapter: BlueskyAdapter, mock_pds: MockPDS,
                                                   tmp_path: Path) -> None:
    mock_pds.then(UPLOAD, httpx.ReadTimeout, xrpc_error(413, "PayloadTooLarge", "request entity too large"))
    with pytest.raises(Transient, match="no answer within 5s"):
        adapter.publish(outgoing(thumb=PNG))
    with pytest.raises(Rejected, match="HTTP 413"):
        adapter.publish(outgoing(thumb=PNG))
    assert mock_pds.calls(CREATE) == []


@pytest.mark.parametrize(("data", "mime"), [
    (PNG, "image/png"), (b"\xff\xd8\xff\xe0rest", "image/jpeg"), (b"GIF89a...", "image/gif"),
    (b"RIFF\x10\0\0\0WEBPVP8 ", "image/webp"), (b"RIFF\x10\0\0\0WAVEfmt ", None), (b"<svg/>", None),
])
def test_images_are_recognised_by_their_signature(data: bytes, mime: str | None) -> None:
    assert sniff_image(data) == mime


def test_no_mapped_error_shows_the_password_or_a_token(
        make_adapter: Callable[..., BlueskyAdapter], mock_pds: MockPDS, unit_settings: Settings) -> None:
    leaky = f"echo {PASSWORD} {ACCESS} {REFRESH_TOKEN}"
    scripts = [[xrpc_error(400, "InvalidRequest", leaky)],
               [xrpc_error(401, "AuthenticationRequired", leaky)] * 2,  # the second after logging in again
               [xrpc_error(429, "RateLimitExceeded", leaky)],
               [xrpc_error(500, "InternalServerError", leaky)],
               [xrpc_error(502, "UpstreamFailure", leaky)],
               [httpx.ReadTimeout], [httpx.ConnectError]]
    errors: list[AdapterError] = []
    adapter = make_adapter()
    for script in scripts:
        mock_pds.then(CREATE, *script)
        with pytest.raises(AdapterError) as caught:
            adapter.publish(outgoing())
        errors.append(caught.value)
    mock_pds.then(GET, xrpc_error(503, "Unavailable", leaky))
    with pytest.raises(Transient) as looked_up:  # the lookup that settles an unknown outcome
        adapter.find(outgoing())
    shown = f"{looked_up.value} {looked_up.value!r} {looked_up.value.reason}"
    assert "echo ********" in shown and PASSWORD not in shown and ACCESS not in shown
    mock_pds.password = "other"
    save_session(unit_settings, access="x")
    with pytest.raises(AuthFailed) as caught:
        make_adapter().publish(outgoing())
    errors.append(caught.value)
    assert [type(e) for e in errors] == [Rejected, AuthFailed, RateLimited, OutcomeUnknown, OutcomeUnknown,
                                         OutcomeUnknown, Transient, AuthFailed]
    for exc in errors:
        shown = f"{exc} {exc!r} {exc.reason}"
        assert PASSWORD not in shown and ACCESS not in shown and REFRESH_TOKEN not in shown
    assert "echo ********" in errors[0].reason


def test_the_tid_of_a_retry_is_the_same_record_key(adapter: BlueskyAdapter, mock_pds: MockPDS) -> None:
    key = encode(1_724_171_495_793_000, 512)
    assert key == "3l25zusnsfck2"
    post = outgoing(key=key)
    mock_pds.then(CREATE, httpx.ReadTimeout)
    with pytest.raises(OutcomeUnknown):
        adapter.publish(post)
    adapter.publish(post)
    assert [c.json()["rkey"] for c in mock_pds.calls(CREATE)] == [key, key]
    assert mock_pds.calls(CREATE)[0].body == mock_pds.calls(CREATE)[1].body


def test_the_adapter_is_built_from_its_own_config_alone(mock_pds: MockPDS, tmp_path: Path) -> None:
    config = BlueskyConfig(handle=HANDLE, app_password=PASSWORD, session_path=tmp_path / "session",
                           pds_url=PDS_URL, timeout=dt.timedelta(seconds=5))
    assert PASSWORD not in repr(config)
    adapter = BlueskyAdapter(config, clock=lambda: NOW, request_kwargs={"transport": mock_pds.transport()})
    adapter.publish(outgoing())
    assert [s.nsid for s in mock_pds.seen] == [LOGIN, CREATE]
    assert (tmp_path / "session").exists()
