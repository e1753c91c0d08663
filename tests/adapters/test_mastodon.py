"""MastodonAdapter: the real Mastodon.py code against recorded exchanges with a real Mastodon 4.6.4 (replayed
over HTTP on 127.0.0.1) and against the stateful stand-in ``mastodon-mock`` (its own process).

Where the stand-in differs from real Mastodon (``../shared/reference/mastodon.md``, "Local stand-in"),
the tests follow real Mastodon and say so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Adapter, Outgoing, PostRef, ThreadState
from adapters.mastodon import MastodonAdapter, MastodonConfig, html_text, parse_reset
from bot.wiring import mastodon_config
from posts.errors import AuthFailed, ConfigError, OutcomeUnknown, RateLimited, Rejected, Transient
from tests.adapters.mastodon_fixtures import (  # noqa: F401
    MastodonTarget,
    mastodon_mock,
    mastodon_server,
    mastodon_settings,
    mastodon_target,
)
from tests.standins.mastodon import (
    CASSETTES,
    OTHER_TOKEN,
    TOKEN,
    AnswerLossProxy,
    CassetteServer,
    MastodonMock,
    cassette,
    free_port,
)

UTC = dt.UTC
RECORDED_AT = dt.datetime(2026, 8, 1, 13, 53, 57, tzinfo=UTC)
"""When the cassettes were recorded (the create of ``test_status_post[...]``)."""
REPLAY_TOKEN = "replay-token-9f8e7d6c5b"
CW = "One year later — spoiler"
standin = pytest.mark.mastodon


def root(text: str, *, key: str | None = "key-root", language: str | None = "en") -> Outgoing:
    return Outgoing("mastodon", "s1", "root", 1, {"status": text, "language": language}, key)


def followup(text: str, parent: PostRef, root_ref: PostRef | None = None, *, part: int = 1,
             key: str | None = None, spoiler: str | None = CW) -> Outgoing:
    payload: dict[str, Any] = {"status": text, "language": "en"}
    if spoiler is not None:
        payload["spoiler_text"] = spoiler
    return Outgoing("mastodon", "s1", "followup", part, payload, key or f"key-followup-{part}", parent,
                    root_ref or parent)


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    for text in (str(exc), repr(exc), getattr(exc, "reason", "")):
        for secret in secrets:
            assert secret not in text


# ---------------------------------------------------------------------------- recorded exchanges


@pytest.fixture
def recorded() -> Iterator[CassetteServer]:
    server = CassetteServer().serve()
    try:
        yield server
    finally:
        server.stop()


def replaying(server: CassetteServer, *, visibility: str = "unlisted",
              clock: dt.datetime = RECORDED_AT) -> MastodonAdapter:
    config = MastodonConfig(api_base_url=server.url, access_token=REPLAY_TOKEN, visibility=visibility,
                            timeout=dt.timedelta(seconds=5))
    return MastodonAdapter(config, clock=lambda: clock)


def recorded_form(interaction: dict[str, Any]) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(interaction["request"]["body"], keep_blank_values=True))


@pytest.mark.parametrize(("name", "visibility", "spoiler"), [
    ("test_status_post[None-unlisted]", "unlisted", None),
    ("test_status_post[None-public]", "public", None),
    ("test_status_post[Content warning-unlisted]", "unlisted", "Content warning"),
])
def test_a_post_sends_what_mastodon_py_recorded_and_returns_the_servers_status(recorded, name, visibility, spoiler):
    (create, _delete) = recorded.replay(name)
    adapter = replaying(recorded, visibility=visibility)
    payload: dict[str, Any] = {"status": "Toot!", "language": None}
    if spoiler:
        payload["spoiler_text"] = spoiler
    ref = adapter.publish(Outgoing("mastodon", "s1", "root", 1, payload, "idem-0001"))

    answer = json.loads(create["response"]["body"]["string"])
    assert ref == PostRef("mastodon", answer["id"], answer["url"], {"uri": answer["uri"]})
    (sent,) = recorded.received
    assert (sent.method, sent.path) == ("POST", "/api/v1/statuses")
    # Mastodon.py 2.3.3 sends sensitive=0 where the recorded 2.2.2 sent nothing (a CW makes the server set
    # it anyway: the recorded answer says sensitive true); every other field is as recorded.
    assert {k: v for k, v in sent.form.items() if k != "sensitive"} == recorded_form(create)
    assert sent.form.get("sensitive", "0") == "0"
    assert sent.headers["Authorization"] == f"Bearer {REPLAY_TOKEN}"
    assert sent.headers["Idempotency-Key"] == "idem-0001"
    assert (answer["visibility"], answer["spoiler_text"], answer["sensitive"]) == (visibility, spoiler or "",
                                                                                  True)


def test_the_language_goes_out_as_rendered(recorded):
    create = cassette("test_status_post[None-unlisted]")[0]
    recorded.answer(create)
    replaying(recorded).publish(root("Toot!", language="de"))
    assert recorded.received[0].form["language"] == "de"


def test_a_reply_is_a_plain_status_post_under_its_parent_never_status_reply(recorded):
    interactions = cassette("test_status_reply")
    reply_answer = interactions[2]
    recorded.answer(reply_answer)
    parent = PostRef("mastodon", "117020583245459824", "http://localhost:3000/@mastodonpy_test/117020583245459824")

    ref = replaying(recorded, visibility="public").reply(followup("same!", parent, spoiler=CW))

    answer = json.loads(reply_answer["response"]["body"]["string"])
    assert ref.id == answer["id"] and answer["in_reply_to_id"] == parent.id
    (sent,) = recorded.received  # status_reply would have asked verify_credentials first
    assert sent.form["in_reply_to_id"] == parent.id == recorded_form(reply_answer)["in_reply_to_id"]
    assert sent.form["status"] == "same!"  # no "@account" put in front (status_reply's prefix)
    assert sent.form["spoiler_text"] == CW and sent.form["visibility"] == "public"
    assert sent.headers["Idempotency-Key"] == "key-followup-1"


@pytest.mark.parametrize(("name", "index", "message"), [
    ("test_status_empty", 0, "バリデーションに失敗しました: Textを入力してください"),
    ("test_lang_for_errors", 0, "Text上限は500文字です"),
    ("test_lang_for_errors", 1, "Gültigkeitsprüfung ist fehlgeschlagen: Text Begrenzung von 500 Zeichen überschritten"),
])
def test_a_refused_status_is_rejected_with_the_servers_own_localised_reason(recorded, name, index, message):
    recorded.answer(cassette(name)[index])
    with pytest.raises(Rejected) as caught:
        replaying(recorded).publish(root("Toot!"))
    assert caught.type is Rejected and message in caught.value.reason and "HTTP 422" in caught.value.reason


def test_a_refused_token_is_auth_failed_without_the_token(recorded):
    unauthorized = cassette("test_unauthed_home_tl_throws")[1]
    recorded.answer(unauthorized, to="POST /api/v1/statuses")
    recorded.answer(unauthorized, to="GET /api/v1/accounts/verify_credentials")
    adapter = replaying(recorded)
    with pytest.raises(AuthFailed) as caught:
        adapter.publish(root("Toot!"))
    assert "The access token is invalid" in caught.value.reason
    assert_no_secret(caught.value, REPLAY_TOKEN)
    with pytest.raises(AuthFailed):
        adapter.whoami()


def test_a_missing_status_is_gone_and_a_reply_to_it_is_rejected(recorded):
    missing = cassette("test_status_missing")[0]
    recorded.answer(missing)
    recorded.answer(missing, to="POST /api/v1/statuses")
    adapter = replaying(recorded)
    gone = PostRef("mastodon", "0", "")
    assert adapter.thread_state(gone) is ThreadState.GONE
    # Real Mastodon answers a reply to a missing status with 404 (the stand-in accepts it: see below).
    with pytest.raises(Rejected, match="the status replied to is gone"):
        adapter.reply(followup("late", gone))


def test_a_status_that_is_there_is_open(recorded):
    create, get, _ = cassette("test_status")
    recorded.answer(get)
    status_id = json.loads(create["response"]["body"]["string"])["id"]
    assert replaying(recorded).thread_state(PostRef("mastodon", status_id, "")) is ThreadState.OPEN


@pytest.mark.parametrize(("status", "create", "read"), [
    (403, AuthFailed, AuthFailed),       # a token without the scope, a suspended account
    (400, Rejected, Transient),
    (500, OutcomeUnknown, Transient),    # a repeated key can answer 500 although the status exists (#40399)
    (502, OutcomeUnknown, Transient),    # the proxy gave up; the server may have posted
    (504, OutcomeUnknown, Transient),
    (503, Transient, Transient),         # not taken; a resend carries the same key anyway
])
def test_each_http_status_becomes_its_error_on_a_create_and_on_a_read(recorded, status, create, read):
    answer = cassette("test_status_empty")[0]  # the recorded error envelope, with another status
    recorded.answer(answer, status=status, body='{"error":"Recorded envelope"}')
    recorded.answer(answer, status=status, body='{"error":"Recorded envelope"}', to="GET /api/v1/statuses/1")
    adapter = replaying(recorded)
    with pytest.raises(create) as on_create:
        adapter.publish(root("Toot!"))
    with pytest.raises(read) as on_read:
        adapter.thread_state(PostRef("mastodon", "1", ""))
    assert (on_create.type, on_read.type) == (create, read)
    assert f"HTTP {status}: Recorded envelope" in on_create.value.reason


def test_a_429_whose_reset_is_past_by_our_clock_waits_a_little_not_at_all(recorded):
    recorded.answer(cassette("test_status_context")[0], status=429, body='{"error":"Too many requests"}')
    later = RECORDED_AT + dt.timedelta(hours=2)  # past the recorded 15:00 reset
    with pytest.raises(RateLimited) as caught:
        replaying(recorded, clock=later).publish(root("Toot!"))
    assert caught.value.retry_at == later + dt.timedelta(seconds=5)


RECORDED_RESET = dt.datetime(2026, 8, 1, 15, 0, 0, 949515, tzinfo=UTC)
"""The ``x-ratelimit-reset`` of the recorded create in ``test_status_context.yaml`` (the 3-hour statuses limit)."""


def test_a_429_waits_until_the_recorded_iso_reset(recorded):
    create = cassette("test_status_context")[0]
    assert create["response"]["headers"]["x-ratelimit-reset"] == ["2026-08-01T15:00:00.949515Z"]
    recorded.answer(create, status=429, body='{"error":"Too many requests"}')
    with pytest.raises(RateLimited) as caught:
        replaying(recorded).publish(root("Toot!"))
    assert caught.value.retry_at == RECORDED_RESET


def test_a_429_reset_is_moved_onto_our_clock_by_the_servers_date(recorded):
    create = cassette("test_status_context")[0]
    # The server's clock is a minute behind ours: the wait is as long as the server means it.
    recorded.answer(create, status=429, body='{"error":"Too many requests"}',
                    headers={"Date": "Sat, 01 Aug 2026 13:53:00 GMT"})
    ours = dt.datetime(2026, 8, 1, 13, 54, 0, tzinfo=UTC)
    with pytest.raises(RateLimited) as caught:
        replaying(recorded, clock=ours).publish(root("Toot!"))
    assert caught.value.retry_at == RECORDED_RESET + dt.timedelta(minutes=1)


@pytest.mark.parametrize(("headers", "expected"), [
    ({"X-RateLimit-Reset": "1785600000"}, dt.datetime(2026, 8, 1, 16, 0, tzinfo=UTC)),  # Unix seconds
    ({"X-RateLimit-Reset": "2026-08-01T14:00:00+00:00"}, dt.datetime(2026, 8, 1, 14, 0, tzinfo=UTC)),
    ({"X-RateLimit-Reset": "", "Retry-After": "120"}, RECORDED_AT + dt.timedelta(seconds=120)),
    ({"X-RateLimit-Reset": "soon"}, RECORDED_AT + dt.timedelta(minutes=5)),  # unreadable: the fallback
])
def test_a_429_reset_may_also_be_unix_seconds_or_retry_after(recorded, headers, expected):
    recorded.answer(cassette("test_status_context")[0], status=429, body='{"error":"Too many requests"}',
                    headers=headers)
    with pytest.raises(RateLimited) as caught:
        replaying(recorded).publish(root("Toot!"))
    assert caught.value.retry_at == expected


def test_every_recorded_rate_limit_reset_is_iso_8601_with_microseconds_on_a_window_boundary():
    resets = []
    for path in sorted(CASSETTES.glob("*.yaml")):
        for interaction in cassette(path.stem):
            resets += interaction["response"]["headers"].get("x-ratelimit-reset", [])
    assert len(resets) > 40
    for value in resets:
        when = parse_reset(value)
        assert when is not None and when.tzinfo is not None, value
        assert "T" in value and value.endswith("Z") and len(value.split(".")[1]) == 7  # 6 digits + Z
        # Mastodon's windows (5 min, 30 min, 3 h) are aligned to the epoch: resets fall on 5-minute marks.
        assert when.minute % 5 == 0 and when.second == 0, value


def test_whoami_replays_the_recorded_verify_credentials(recorded):
    recorded.replay("test_verify_credentials")
    adapter = replaying(recorded)
    host = recorded.url.removeprefix("http://")
    assert adapter.whoami() == f"@mastodonpy_test@{host}"
    assert [r.path for r in recorded.received] == ["/api/v1/accounts/verify_credentials"]


def test_the_instance_limits_come_from_the_recorded_v2_instance(recorded):
    recorded.replay("test_instance")
    adapter = replaying(recorded)
    limits = adapter.limits()
    assert (limits.max_characters, limits.characters_reserved_per_url, limits.max_media_attachments,
            limits.description_limit) == (500, 23, 4, 10000)
    assert adapter.limits() is limits  # read once
    assert [r.path.rstrip("/") for r in recorded.received] == ["/api/v2/instance"]


def test_find_pages_back_through_the_recorded_statuses_by_their_link_headers(recorded):
    interactions = cassette("test_fetch_next_previous")
    me, pages = interactions[0], [i for i in interactions if i["request"]["method"] == "GET"][1:]
    recorded.answer(me)
    recorded.answer(pages[0])
    recorded.answer(pages[1])
    recorded.answer(pages[1], body="[]", headers={"link": ""})  # no older statuses
    statuses = {s["content"]: s for page in pages[:2] for s in json.loads(page["response"]["body"]["string"])}
    wanted = statuses["<p>Toot number 2!</p>"]
    adapter = replaying(recorded)

    found = adapter.find(root("Toot number 2!"), since=dt.datetime(2026, 8, 1, 13, 0, tzinfo=UTC))

    assert found is not None and found.id == wanted["id"]
    gets = [r for r in recorded.received if r.path.endswith("/statuses")]
    assert [g.query for g in gets] == [{"limit": "40"}, {"limit": "40", "max_id": "117020580489281910"},
                                       {"limit": "40", "max_id": "117020580452511285"}]


def test_find_stops_at_since_and_says_absent(recorded):
    interactions = cassette("test_fetch_next_previous")
    recorded.answer(interactions[0])
    first_page = [i for i in interactions if i["request"]["method"] == "GET"][1]
    recorded.answer(first_page)
    newest = json.loads(first_page["response"]["body"]["string"])
    # Only the newest status is after ``since``: the page's older ones end the search; no second page.
    since = dt.datetime.fromisoformat(newest[0]["created_at"].replace("Z", "+00:00")) - dt.timedelta(milliseconds=1)
    assert replaying(recorded).find(root("Toot number 2!"), since=since) is None
    assert len([r for r in recorded.received if r.path.endswith("/statuses")]) == 1


def test_html_content_reads_back_as_the_text_posted():
    content = ('<p>Hello &lt;world&gt; &amp; <a href="https://example.com/a?b=1" rel="nofollow noopener" '
               'target="_blank"><span class="invisible">https://</span><span class="ellipsis">example.com/a'
               '</span><span class="invisible">?b=1</span></a></p><p>second<br />line <a href="https://m.example/'
               'tags/news" class="mention hashtag" rel="tag">#<span>news</span></a></p>')
    assert html_text(content) == "Hello <world> & https://example.com/a?b=1\n\nsecond\nline #news"


def test_the_configuration_is_checked_when_the_adapter_is_made():
    with pytest.raises(ConfigError, match="http"):
        MastodonAdapter(MastodonConfig("mastodon.example", "tok-0001"))
    with pytest.raises(ConfigError, match="visibility"):
        MastodonAdapter(MastodonConfig("https://mastodon.example", "tok-0001", visibility="direct"))
    assert "tok-0001" not in repr(MastodonConfig("https://mastodon.example", "tok-0001"))


def test_the_key_is_a_fresh_uuid_for_every_delivery():
    adapter = MastodonAdapter(MastodonConfig("https://mastodon.example", "tok-0001"))
    keys = {adapter.new_key() for _ in range(50)}
    assert len(keys) == 50 and all(len(k) == 32 and int(k, 16) >= 0 for k in keys)
    assert isinstance(adapter, Adapter)


# ---------------------------------------------------------------------------- the stateful stand-in


def live(server: MastodonMock, tmp_path: Path, **options: Any) -> MastodonAdapter:
    return MastodonAdapter(mastodon_config(mastodon_settings(tmp_path, server.url, **options)))


def recent() -> dt.datetime:
    return dt.datetime.now(UTC) - dt.timedelta(minutes=5)


@standin
def test_the_same_idempotency_key_twice_makes_one_status(mastodon_target: MastodonTarget):  # noqa: F811
    adapter, server = mastodon_target.adapter, mastodon_target.server
    post = root("Once only")
    first, second = adapter.publish(post), adapter.publish(post)
    assert first == second
    assert [s["id"] for s in server.statuses()] == [first.id]
    other_key = adapter.publish(dataclasses.replace(post, key="another-key"))
    assert other_key.id != first.id  # the key, not the text, is what the server recognises


@standin
def test_the_status_is_posted_as_rendered_with_the_configured_visibility(mastodon_mock, tmp_path):  # noqa: F811
    adapter = live(mastodon_mock, tmp_path, mastodon_visibility="private")
    ref = adapter.publish(root("Ein Jahr her: https://example.com/x?y=1 #news", language="de"))
    status = mastodon_mock.status(ref.id)
    assert (status["visibility"], status["language"], status["in_reply_to_id"]) == ("private", "de", None)
    assert html_text(status["content"]) == "Ein Jahr her: https://example.com/x?y=1 #news"


@standin
def test_a_503_is_transient_and_nothing_is_posted(mastodon_target: MastodonTarget):  # noqa: F811
    mastodon_target.server.fault("/api/v1/statuses", {"type": "status", "status": 503})
    with pytest.raises(Transient) as caught:
        mastodon_target.adapter.publish(root("Try later"))
    assert caught.type is Transient and "503" in caught.value.reason
    assert mastodon_target.server.statuses() == []


@standin
def test_a_500_on_a_create_is_an_outcome_to_look_up_never_a_resend(mastodon_target: MastodonTarget):  # noqa: F811
    mastodon_target.server.fault("/api/v1/statuses", {"type": "status", "status": 500})
    with pytest.raises(OutcomeUnknown):
        mastodon_target.adapter.publish(root("Maybe posted"))


@standin
def test_a_create_that_times_out_is_outcome_unknown_and_a_resend_with_its_key_makes_one_status(
        mastodon_mock, tmp_path):  # noqa: F811
    adapter = live(mastodon_mock, tmp_path, http_timeout="0.5s")
    mastodon_mock.fault("/api/v1/statuses", {"type": "latency", "delay_ms": 1500})
    post = root("Slow server")
    with pytest.raises(OutcomeUnknown) as caught:
        adapter.publish(post)
    assert "no answer in time" in caught.value.reason
    time.sleep(1.5)  # whatever the server did with the first request, it is done now
    again = adapter.publish(post)
    assert [s["id"] for s in mastodon_mock.statuses()] == [again.id]


@standin
def test_a_read_that_times_out_is_transient(mastodon_mock, tmp_path):  # noqa: F811
    adapter = live(mastodon_mock, tmp_path, http_timeout="0.5s")
    ref = adapter.publish(root("Read me"))
    mastodon_mock.fault(f"/api/v1/statuses/{ref.id}", {"type": "latency", "delay_ms": 1500}, methods=("GET",))
    with pytest.raises(Transient):
        adapter.thread_state(ref)


@standin
def test_an_unreadable_answer_to_a_create_is_outcome_unknown(mastodon_target: MastodonTarget):  # noqa: F811
    mastodon_target.server.fault("/api/v1/statuses", {"type": "malformed"})
    with pytest.raises(OutcomeUnknown):
        mastodon_target.adapter.publish(root("Garbled"))


@standin
def test_a_rate_limit_is_rate_limited_until_the_reset(mastodon_target: MastodonTarget):  # noqa: F811
    # The stand-in sends the reset as Unix seconds (real Mastodon: ISO 8601, tested on the recordings above)
    # and adds Retry-After: 300, which real Mastodon does not send.
    mastodon_target.server.fault("/api/v1/statuses", {"type": "ratelimit"})
    before = dt.datetime.now(UTC)
    with pytest.raises(RateLimited) as caught:
        mastodon_target.adapter.publish(root("Too fast"))
    assert before + dt.timedelta(seconds=290) <= caught.value.retry_at <= before + dt.timedelta(seconds=310)
    assert mastodon_target.server.statuses() == []


@standin
def test_a_wrong_token_is_auth_failed_and_never_shown(mastodon_mock, tmp_path):  # noqa: F811
    adapter = live(mastodon_mock, tmp_path, mastodon_access_token="wrong-token-123456")
    with pytest.raises(AuthFailed) as caught:
        adapter.publish(root("Who am I"))
    assert_no_secret(caught.value, "wrong-token-123456")
    with pytest.raises(AuthFailed):
        adapter.whoami()


@standin
def test_nothing_listening_is_transient_even_for_a_create(tmp_path):
    adapter = MastodonAdapter(MastodonConfig(f"http://127.0.0.1:{free_port()}", TOKEN,
                                             timeout=dt.timedelta(seconds=2)))
    with pytest.raises(Transient) as caught:
        adapter.publish(root("Nobody home"))
    assert caught.type is Transient and "connection failed" in caught.value.reason


@standin
def test_a_reply_threads_under_the_root_behind_the_warning(mastodon_target: MastodonTarget):  # noqa: F811
    adapter, server = mastodon_target.adapter, mastodon_target.server
    top = adapter.publish(root("The story"))
    first = adapter.reply(followup("The reveal, part one", top))
    second = adapter.reply(followup("The reveal, part two", first, top, part=2))
    descendants = server.context(top.id)["descendants"]
    assert [(d["id"], d["in_reply_to_id"], d["spoiler_text"]) for d in descendants] == [
        (first.id, top.id, CW), (second.id, first.id, CW)]
    assert html_text(descendants[0]["content"]) == "The reveal, part one"  # no "@newsbot" in front


@standin
def test_whoami_names_the_account_and_host(mastodon_target: MastodonTarget):  # noqa: F811
    host = mastodon_target.server.url.removeprefix("http://")
    assert mastodon_target.adapter.whoami() == f"@newsbot@{host}"


@standin
def test_thread_state_says_gone_once_the_root_is_deleted(mastodon_target: MastodonTarget):  # noqa: F811
    top = mastodon_target.adapter.publish(root("Soon deleted"))
    assert mastodon_target.adapter.thread_state(top) is ThreadState.OPEN
    mastodon_target.server.delete(top.id)
    assert mastodon_target.adapter.thread_state(top) is ThreadState.GONE


@standin
def test_a_reply_to_a_deleted_root_is_caught_by_the_thread_check_first(mastodon_target: MastodonTarget):  # noqa: F811
    # The stand-in accepts a reply to a missing status (real Mastodon: 404, tested on the recording above);
    # what keeps the bot from replying into nothing is thread_state, which the engine asks first.
    top = mastodon_target.adapter.publish(root("Deleted before the reveal"))
    mastodon_target.server.delete(top.id)
    assert mastodon_target.adapter.thread_state(top) is ThreadState.GONE


@standin
def test_find_matches_parent_warning_and_text_and_ignores_everything_else(mastodon_target: MastodonTarget):  # noqa: F811
    adapter, server = mastodon_target.adapter, mastodon_target.server
    top = adapter.publish(root("Story & <things> https://example.com/a?b=1\n\nSecond   paragraph"))
    reply = adapter.reply(followup("The reveal", top))
    server.post_as(TOKEN, "The reveal", in_reply_to_id=top.id, spoiler_text="another warning")
    server.post_as(TOKEN, "The reveal", spoiler_text=CW)  # not a reply
    server.post_as(OTHER_TOKEN, "The reveal", in_reply_to_id=top.id, spoiler_text=CW)  # someone else
    since = recent()
    assert adapter.find(root("Story & <things> https://example.com/a?b=1\n\nSecond paragraph"), since=since) == top
    assert adapter.find(followup("The reveal", top), since=since) == reply
    assert adapter.find(followup("The reveal", reply), since=since) is None
    assert adapter.find(followup("The reveal, not sent", top), since=since) is None
    assert adapter.find(root("Story"), since=dt.datetime.now(UTC) + dt.timedelta(minutes=1)) is None


@standin
def test_find_keeps_the_oldest_of_two_identical_statuses(mastodon_target: MastodonTarget):  # noqa: F811
    adapter = mastodon_target.adapter
    first = adapter.publish(root("Twice", key="k1"))
    adapter.publish(root("Twice", key="k2"))
    assert adapter.find(root("Twice"), since=recent()) == first


@standin
def test_find_cannot_tell_when_there_are_more_statuses_than_it_reads(mastodon_target: MastodonTarget,  # noqa: F811
                                                                       monkeypatch: pytest.MonkeyPatch):
    adapter = mastodon_target.adapter
    for i in range(4):
        adapter.publish(root(f"Status {i}", key=f"k{i}"))
    monkeypatch.setattr("adapters.mastodon.FIND_PAGE", 1)
    monkeypatch.setattr("adapters.mastodon.FIND_PAGES", 2)
    with pytest.raises(OutcomeUnknown, match="there are more"):
        adapter.find(root("Status 9"), since=recent())
    monkeypatch.setattr("adapters.mastodon.FIND_PAGES", 10)
    assert adapter.find(root("Status 0"), since=recent()) is not None


# ---------------------------------------------------------------------------- answers lost on the way


@pytest.fixture
def proxy(mastodon_mock: MastodonMock) -> Iterator[AnswerLossProxy]:  # noqa: F811
    with AnswerLossProxy(mastodon_mock.url) as running:
        yield running


@standin
def test_a_status_made_whose_answer_was_lost_is_outcome_unknown_then_found_and_never_doubled(
        mastodon_mock, proxy, tmp_path):  # noqa: F811
    adapter = MastodonAdapter(mastodon_config(mastodon_settings(tmp_path, proxy.url)))
    post = root("Posted, answer lost")
    proxy.lose_next_create()
    with pytest.raises(OutcomeUnknown) as caught:
        adapter.publish(post)
    assert "may have been made" in caught.value.reason
    (made,) = mastodon_mock.statuses()  # the server made it
    found = adapter.find(post, since=recent())
    assert found is not None and found.id == made["id"]
    assert adapter.publish(post).id == made["id"]  # sent again under its key: the same status
    assert [s["id"] for s in mastodon_mock.statuses()] == [made["id"]]


@standin
def test_a_500_on_a_repeated_key_is_outcome_unknown_and_find_finds_the_first(mastodon_mock, proxy, tmp_path):  # noqa: F811
    # mastodon/mastodon#40399: a repeated Idempotency-Key can answer HTTP 500 although the first status exists.
    # The stand-in returns the first status instead; the proxy plays the real server's 500.
    adapter = MastodonAdapter(mastodon_config(mastodon_settings(tmp_path, proxy.url)))
    post = root("First try landed")
    first = adapter.publish(post)
    proxy.fail_next_create(500, {"error": "We're sorry, but something went wrong on our end."})
    with pytest.raises(OutcomeUnknown):
        adapter.publish(post)
    assert adapter.find(post, since=recent()) == first
    assert [s["id"] for s in mastodon_mock.statuses()] == [first.id]
