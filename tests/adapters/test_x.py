"""XAdapter: the real tweepy code against recorded X exchanges and a stateful stand-in of the API."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import responses
import yaml
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError

from adapters.base import Outgoing, PostRef, ThreadState
from adapters.x import DEFAULT_WAIT, MIN_WAIT, TWEEPY_HOST, XAdapter, XConfig
from bot.wiring import x_config
from posts.errors import (
    AdapterError,
    AuthFailed,
    Duplicate,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    Transient,
)
from tests.adapters.x_fixtures import CREDENTIALS, XTarget, x_settings, x_target  # noqa: F401
from tests.replies import replying
from tests.standins.x import ME, UNAUTHORIZED, XStandin, observed_body

DATA = Path(__file__).resolve().parents[1] / "data" / "x"
UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TWEETS = f"{TWEEPY_HOST}/2/tweets"
SECRETS = CREDENTIALS + ("cs-consumer-secret-0002", "ts-token-secret-0004")


def cassette(name: str) -> list[dict[str, Any]]:
    return yaml.safe_load((DATA / name).read_text(encoding="utf-8"))["interactions"]


def replay(mock: responses.RequestsMock, interaction: dict[str, Any]) -> None:
    """Register one recorded exchange: the recorded status, headers and (gzip) body bytes."""
    recorded = interaction["response"]
    headers = {name: ", ".join(values) for name, values in recorded["headers"].items()}
    mock.add(interaction["request"]["method"], interaction["request"]["uri"], status=recorded["status"]["code"],
             body=recorded["body"]["string"], content_type=headers.pop("content-type"), headers=headers)


def post(text: str, *, kind: str = "root", part: int = 1, parent: PostRef | None = None,
         root: PostRef | None = None) -> Outgoing:
    return Outgoing("x", "s1", kind, part, {"text": text}, f"key-{kind}-{part}", parent, root)


def sent_json(call: Any) -> Any:
    return json.loads(call.request.body)


def assert_oauth1(headers: Any) -> None:
    auth = headers["Authorization"]
    auth = auth.decode() if isinstance(auth, bytes) else auth
    assert auth.startswith("OAuth ")
    for field in ("oauth_consumer_key", "oauth_token", 'oauth_signature_method="HMAC-SHA1"', "oauth_signature",
                  "oauth_nonce", "oauth_timestamp"):
        assert field in auth
    assert "cs-consumer-secret-0002" not in auth and "ts-token-secret-0004" not in auth


def assert_no_secret(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), getattr(exc, "reason", "")):
        for secret in SECRETS:
            assert secret not in text


@pytest.fixture
def settings_x(tmp_path: Path):
    return x_settings(tmp_path)


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def adapter(settings_x) -> XAdapter:
    return XAdapter(x_config(settings_x), clock=lambda: NOW)


@pytest.fixture
def standin(mock: responses.RequestsMock) -> XStandin:
    server = XStandin(credentials=CREDENTIALS)
    server.install(mock)
    return server


@pytest.fixture
def live(settings_x, standin: XStandin) -> XAdapter:
    """The adapter on the stand-in, with the real clock (the stand-in stamps posts with real time)."""
    return XAdapter(x_config(settings_x))


def recent() -> dt.datetime:
    return dt.datetime.now(UTC) - dt.timedelta(minutes=5)


# ---------------------------------------------------------------------------- recorded exchanges


def test_publishing_replays_the_recorded_create_and_sends_exactly_the_text(adapter, mock):
    create, _delete = cassette("test_client_create_and_delete_tweet.yaml")
    replay(mock, create)
    replay(mock, cassette("test_client_get_me.yaml")[0])

    ref = adapter.publish(post("Test Tweet"))

    assert ref == PostRef("x", "1456012973835788293", "https://x.com/TweepyDev/status/1456012973835788293")
    sent = mock.calls[0].request
    assert (sent.method, sent.url) == ("POST", TWEETS)
    assert sent.body == create["request"]["body"].encode()  # byte for byte what tweepy 4.2 sent
    assert sent_json(mock.calls[0]) == {"text": "Test Tweet"}
    assert sent.headers["Content-Type"] == "application/json"
    assert_oauth1(sent.headers)
    assert mock.calls[0].request.req_kwargs["timeout"] == 5.0
    assert [(c.request.method, c.request.url) for c in mock.calls[1:]] == [("GET", f"{TWEEPY_HOST}/2/users/me")]


def test_whoami_replays_the_recorded_get_me(adapter, mock):
    replay(mock, cassette("test_client_get_me.yaml")[0])

    assert adapter.whoami() == "@TweepyDev (id 1072250532645998596)"
    sent = mock.calls[0].request
    assert (sent.method, sent.url, sent.body) == ("GET", f"{TWEEPY_HOST}/2/users/me", None)
    assert_oauth1(sent.headers)


def test_the_stand_in_answers_in_the_recorded_shapes(settings_x, standin, mock):
    create, delete = cassette("test_client_create_and_delete_tweet.yaml")
    me = cassette("test_client_get_me.yaml")[0]
    decoded = json.loads((DATA / "test_client_create_and_delete_tweet.decoded.json").read_text())
    auth = XAdapter(x_config(settings_x)).client  # sign like tweepy does
    for interaction, body in ((create, create["request"]["body"]), (me, None)):
        request = interaction["request"]
        answer = auth.request(request["method"], urlsplit(request["uri"]).path,
                              json=json.loads(body) if body else None, user_auth=True)
        recorded = interaction["response"]
        assert answer.status_code == recorded["status"]["code"]
        expected = json.loads(decoded[0]["response"]["body"]) if interaction is create else {
            "data": {"id": "1072250532645998596", "name": "Tweepy Testing", "username": "TweepyDev"}}
        assert set(answer.json()["data"]) == set(expected["data"])
        recorded_names = {n for n in recorded["headers"] if n.startswith("x-rate-limit") or n in
                          ("location", "content-type", "x-access-level")}
        assert recorded_names <= {n.lower() for n in answer.headers}
    answer = auth.request("DELETE", urlsplit(delete["request"]["uri"]).path.replace(
        "1456012973835788293", standin.live()[0].id), user_auth=True)
    assert answer.json() == json.loads(decoded[1]["response"]["body"]) == {"data": {"deleted": True}}
    assert standin.live() == []


# ---------------------------------------------------------------------------- error mapping

TOO_LONG_400 = {"errors": [{"parameters": {}, "message": "Your Tweet text is too long. For more information on "
                            "how Twitter determines text length see https://github.com/twitter/twitter-text."}],
                "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.twitter.com/2/problems/invalid-request"}
TOO_LONG_403 = {"detail": "Your Tweet text is too long.", "type": "about:blank", "title": "Forbidden", "status": 403}
OAUTH1_PERMISSIONS = {"title": "Forbidden", "type": "https://api.twitter.com/2/problems/oauth1-permissions",
                      "status": 403, "detail": "Your client app is not configured with the appropriate oauth1 app "
                      "permissions for this endpoint."}
NOT_ENROLLED = {"client_id": "12345", "detail": "When authenticating requests to the Twitter API v2 endpoints, you "
                "must use keys and tokens from a Twitter developer App that is attached to a Project. You can "
                "create a project via the developer portal.", "registration_url":
                "https://developer.twitter.com/en/docs/projects/overview", "title": "Client Forbidden",
                "required_enrollment": "Appropriate Level of API Access", "reason": "client-not-enrolled",
                "type": "https://api.twitter.com/2/problems/client-forbidden"}
REPLY_GONE = {"detail": "You attempted to reply to a Tweet that is deleted or not visible to you.",
              "type": "about:blank", "title": "Forbidden", "status": 403}
NOT_FOUND = {"title": "Not Found Error", "type": "https://api.twitter.com/2/problems/resource-not-found",
             "status": 404, "detail": "Not Found"}
RESET = 1772366700  # 2026-03-01 12:05:00 UTC
URL = "https://api.twitter.com/2/tweets"


def _refused() -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, URL, NewConnectionError(  # type: ignore[arg-type]
        None, "Failed to establish a new connection: [Errno 111] Connection refused")))


def _dropped(cause: Exception) -> requests.ConnectionError:
    return requests.ConnectionError(ProtocolError("Connection aborted.", cause))


HTTP_CASES = [
    # (id, write?, status, body, headers, error class, words in the reason)
    ("429-observed-body", True, 429, observed_body(429), {"x-rate-limit-reset": str(RESET)}, RateLimited,
     "Too Many Requests"),
    ("429-on-a-read", False, 429, observed_body(429), {"x-rate-limit-reset": str(RESET)}, RateLimited,
     "Too Many Requests"),
    ("401", True, 401, UNAUTHORIZED, {}, AuthFailed, "401 Unauthorized"),
    ("401-on-a-read", False, 401, UNAUTHORIZED, {}, AuthFailed, "401"),
    ("403-duplicate-observed-body", True, 403, observed_body(403), {}, Duplicate, "duplicate content"),
    ("403-oauth1-permissions", True, 403, OAUTH1_PERMISSIONS, {}, AuthFailed, "oauth1 app permissions"),
    ("403-oauth1-permissions-on-a-read", False, 403, OAUTH1_PERMISSIONS, {}, AuthFailed, "permissions"),
    ("403-app-not-in-a-project", True, 403, NOT_ENROLLED, {}, AuthFailed, "attached to a Project"),
    ("403-text-too-long", True, 403, TOO_LONG_403, {}, Rejected, "Your Tweet text is too long"),
    ("403-reply-to-deleted", True, 403, REPLY_GONE, {}, Rejected, "deleted or not visible"),
    ("400-text-too-long", True, 400, TOO_LONG_400, {}, Rejected, "Your Tweet text is too long"),
    ("404-on-a-write", True, 404, NOT_FOUND, {}, Rejected, "404"),
    ("500-on-a-create", True, 500, {"title": "Internal Server Error", "detail": "Internal Server Error"}, {},
     OutcomeUnknown, "500"),
    ("503-on-a-create", True, 503, {"title": "Service Unavailable", "detail": "Service Unavailable"}, {},
     OutcomeUnknown, "503"),
    ("502-html-on-a-create", True, 502, b"<html>Bad Gateway</html>", {}, OutcomeUnknown, "502"),
    ("500-on-a-read", False, 500, {"title": "Internal Server Error"}, {}, Transient, "500"),
    ("503-on-a-read", False, 503, {"title": "Service Unavailable"}, {}, Transient, "503"),
    ("400-on-a-read", False, 400, TOO_LONG_400, {}, Transient, "400"),
]

NETWORK_CASES = [
    # (id, write?, exception requests raises, error class)
    ("connect-timeout-on-a-write", True, requests.ConnectTimeout(MaxRetryError(
        None, URL, ConnectTimeoutError(None, "timed out (connect timeout=5)"))), Transient),  # type: ignore[arg-type]
    ("connection-refused-on-a-write", True, _refused(), Transient),
    ("certificate-rejected-on-a-write", True, requests.exceptions.SSLError(MaxRetryError(
        None, URL, Urllib3SSLError(ssl.SSLCertVerificationError(1, "certificate verify failed")))), Transient),  # type: ignore[arg-type]
    ("read-timeout-on-a-write", True, requests.ReadTimeout(ReadTimeoutError(
        None, URL, "Read timed out. (read timeout=5)")), OutcomeUnknown),  # type: ignore[arg-type]
    ("closed-without-answer-on-a-write", True, _dropped(http.client.RemoteDisconnected(
        "Remote end closed connection without response")), OutcomeUnknown),
    ("reset-after-sending-on-a-write", True, _dropped(ConnectionResetError(104, "Connection reset by peer")),
     OutcomeUnknown),
    ("broken-body-on-a-write", True, requests.exceptions.ChunkedEncodingError("Connection broken"), OutcomeUnknown),
    ("connect-timeout-on-a-read", False, requests.ConnectTimeout("timed out"), Transient),
    ("connection-refused-on-a-read", False, _refused(), Transient),
    ("read-timeout-on-a-read", False, requests.ReadTimeout("Read timed out."), Transient),
    ("reset-on-a-read", False, _dropped(ConnectionResetError(104, "Connection reset by peer")), Transient),
]


def _call(adapter: XAdapter, write: bool) -> Any:
    if write:
        return adapter.publish(post("Hello there"))
    return adapter.thread_state(PostRef("x", "1456012973835788293", ""))


def _register(mock: responses.RequestsMock, write: bool, **kwargs: Any) -> None:
    if write:
        mock.add("POST", TWEETS, **kwargs)
    else:
        mock.add("GET", f"{TWEETS}/1456012973835788293", **kwargs)


@pytest.mark.parametrize(("write", "status", "body", "headers", "error", "words"),
                         [case[1:] for case in HTTP_CASES], ids=[case[0] for case in HTTP_CASES])
def test_every_http_error_maps_to_one_project_error(adapter, mock, write, status, body, headers, error, words):
    _register(mock, write, status=status, body=body if isinstance(body, bytes) else json.dumps(body),
              headers=headers, content_type="application/json" if not isinstance(body, bytes) else "text/html")

    with pytest.raises(AdapterError) as caught:
        _call(adapter, write)

    assert type(caught.value) is error
    assert words.lower() in caught.value.reason.lower()
    assert caught.value.platform == "x"
    assert isinstance(caught.value.__cause__, Exception)  # re-raised from the SDK's error
    assert_no_secret(caught.value)
    assert len(mock.calls) == 1  # never re-sent by tweepy (no wait_on_rate_limit, no retries)


@pytest.mark.parametrize(("write", "exception", "error"), [case[1:] for case in NETWORK_CASES],
                         ids=[case[0] for case in NETWORK_CASES])
def test_every_network_failure_maps_by_whether_the_request_may_have_arrived(adapter, mock, write, exception,
                                                                           error):
    _register(mock, write, body=exception)

    with pytest.raises(AdapterError) as caught:
        _call(adapter, write)

    assert type(caught.value) is error
    assert caught.value.__cause__ is exception
    assert_no_secret(caught.value)


def test_a_payload_without_text_is_rejected_before_anything_is_sent(adapter, mock):
    with pytest.raises(Rejected):
        adapter.publish(Outgoing("x", "s1", "root", 1, {"title": "no text"}, "k"))
    assert len(mock.calls) == 0


def test_an_error_message_that_echoes_a_secret_is_masked(adapter, mock):
    mock.add("POST", TWEETS, status=400, json={"errors": [{"message": f"bad key {CREDENTIALS[0]} and "
                                                           f"{CREDENTIALS[1]}"}]})
    with pytest.raises(Rejected) as caught:
        adapter.publish(post("Hello"))
    assert "bad key ******** and ********" in caught.value.reason
    assert_no_secret(caught.value)


# ---------------------------------------------------------------------------- rate limits

T1, T2, T3 = RESET, RESET + 3600, RESET + 7200


def at(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, UTC)


@pytest.mark.parametrize(("headers", "expected"), [
    ({"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(T1)}, at(T1)),
    ({"x-rate-limit-reset": str(T1), "x-user-limit-24hour-remaining": "0", "x-user-limit-24hour-reset": str(T2)},
     at(T2)),
    ({"x-rate-limit-reset": str(T1), "x-user-limit-24hour-remaining": "4", "x-user-limit-24hour-reset": str(T3)},
     at(T1)),
    ({"x-rate-limit-reset": str(T1), "x-user-limit-24hour-remaining": "0", "x-user-limit-24hour-reset": str(T2),
      "x-app-limit-24hour-remaining": "0", "x-app-limit-24hour-reset": str(T3)}, at(T3)),
    ({"x-app-limit-24hour-remaining": "0", "x-app-limit-24hour-reset": str(T2)}, at(T2)),
    ({}, NOW + DEFAULT_WAIT),
    ({"x-rate-limit-reset": str(int(NOW.timestamp()) - 30)}, NOW + MIN_WAIT),
], ids=["15-minute-window", "24h-user-limit-later", "24h-user-limit-not-exhausted", "latest-of-all",
        "24h-app-limit-alone", "no-header-waits-15-minutes", "reset-already-past"])
def test_a_429_waits_until_the_latest_reset_of_every_exhausted_limit(adapter, mock, headers, expected):
    mock.add("POST", TWEETS, status=429, json=observed_body(429), headers=headers)

    with pytest.raises(RateLimited) as caught:
        adapter.publish(post("Hello"))

    assert caught.value.retry_at == expected
    assert caught.value.retry_at.tzinfo is not None


def test_a_429_then_success_once_the_reset_time_has_come(settings_x, mock):
    clock = {"now": 1_800_000_000.0}
    server = XStandin(credentials=CREDENTIALS, clock=lambda: clock["now"])
    server.install(mock)
    adapter = XAdapter(x_config(settings_x), clock=lambda: dt.datetime.fromtimestamp(clock["now"], UTC))
    server.rate_limit_next("POST /2/tweets", reset=clock["now"] + 300)

    with pytest.raises(RateLimited) as caught:
        adapter.publish(post("Hello after the wait"))
    assert caught.value.retry_at == dt.datetime.fromtimestamp(clock["now"] + 300, UTC)
    assert server.live() == []

    clock["now"] = caught.value.retry_at.timestamp()  # the engine waits until then
    ref = adapter.publish(post("Hello after the wait"))

    assert [t.id for t in server.live()] == [ref.id]
    assert [r.route for r in server.requests if r.method == "POST"] == ["POST /2/tweets"] * 2
    assert server.violations == []


def test_the_stand_in_enforces_its_daily_limit_and_the_adapter_waits_for_its_reset(settings_x, mock):
    clock = {"now": 1_800_000_000.0}
    server = XStandin(credentials=CREDENTIALS, clock=lambda: clock["now"], daily_user_limit=2)
    server.install(mock)
    adapter = XAdapter(x_config(settings_x), clock=lambda: dt.datetime.fromtimestamp(clock["now"], UTC))
    adapter.publish(post("one"))
    adapter.publish(post("two"))

    with pytest.raises(RateLimited) as caught:
        adapter.publish(post("three"))

    assert caught.value.retry_at == dt.datetime.fromtimestamp(1_800_000_000 + 24 * 3600, UTC)
    assert "24-hour user limit" in caught.value.reason
    assert len(server.live()) == 2


# ---------------------------------------------------------------------------- unknown outcomes and find


def test_duplicate_content_after_an_earlier_identical_post_is_found_again(live, standin):
    text = "Markets rally & close higher: https://example.com/markets?day=1 #markets"
    earlier = standin.add_tweet(text)

    with pytest.raises(Duplicate) as caught:
        live.publish(post(text))

    assert "duplicate content" in caught.value.reason
    found = live.find(post(text), since=recent())
    assert found is not None and found.id == earlier.id
    assert found.url == f"https://x.com/TweepyDev/status/{earlier.id}"
    assert len(standin.live()) == 1


def test_a_post_accepted_then_dropped_is_outcome_unknown_and_then_found(live, standin):
    text = "Accepted, then the answer was lost. See example.org/story"
    standin.drop_next("POST /2/tweets")

    with pytest.raises(OutcomeUnknown) as caught:
        live.publish(post(text))

    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert len(standin.live()) == 1
    found = live.find(post(text), since=recent())
    assert found is not None and found.id == standin.live()[0].id


def test_a_5xx_for_a_post_that_was_created_is_outcome_unknown_and_then_found(live, standin):
    standin.fail_next("POST /2/tweets", 503, apply=True)

    with pytest.raises(OutcomeUnknown) as caught:
        live.publish(post("Created despite the 503"))

    assert "503" in caught.value.reason
    assert live.find(post("Created despite the 503"), since=recent()).id == standin.live()[0].id


def test_a_post_whose_answer_comes_too_late_is_outcome_unknown_and_then_found(tmp_path, mock):
    server = XStandin(credentials=CREDENTIALS)
    server.install(mock)
    adapter = XAdapter(x_config(x_settings(tmp_path, http_timeout="0.2s")))
    server.delay_next("POST /2/tweets", 0.5)

    with pytest.raises(OutcomeUnknown) as caught:
        adapter.publish(post("Slow answer"))

    assert isinstance(caught.value.__cause__, requests.ReadTimeout)
    assert adapter.find(post("Slow answer"), since=recent()).id == server.live()[0].id


def test_find_matches_text_whose_links_x_rewrote_to_t_co(live, standin):
    text = "Q&A <live>: read https://example.com/a/b?x=1&y=2, or example.org/path. #news"
    ref = live.publish(post(text))
    shown = standin.tweets[ref.id].shown

    assert "t.co/" in shown and "example.com" not in shown and "&amp;" in shown  # what X gives back
    assert live.find(post(text), since=recent()) == ref


def test_find_does_not_match_the_same_words_with_another_link(live, standin):
    standin.add_tweet("The story: https://example.com/one")

    assert live.find(post("The story: https://example.com/two"), since=recent()) is None
    assert live.find(post("The story: https://example.com/one"), since=recent()) is not None


def test_find_does_not_match_different_text(live, standin):
    standin.add_tweet("Some other post https://example.com/x")

    assert live.find(post("Our post https://example.com/x"), since=recent()) is None


def test_find_asks_for_posts_since_the_given_time_in_utc(live, standin):
    since = dt.datetime(2026, 3, 1, 13, 30, 15, tzinfo=dt.timezone(dt.timedelta(hours=1)))

    live.find(post("anything"), since=since)

    timeline = [r for r in standin.requests if r.route == "GET /2/users/:id/tweets"]
    assert timeline[0].path == f"/2/users/{ME['id']}/tweets"
    assert timeline[0].query == {"start_time": "2026-03-01T12:30:15Z", "max_results": "100",
                                 "tweet.fields": "created_at,entities,referenced_tweets,conversation_id"}


def test_find_ignores_posts_older_than_since(live, standin):
    standin.add_tweet("An old post", at=dt.datetime(2020, 1, 1, tzinfo=UTC).timestamp())

    assert live.find(post("An old post"), since=recent()) is None
    assert live.find(post("An old post"), since=dt.datetime(2019, 12, 31, tzinfo=UTC)) is not None


def test_find_reads_further_pages_of_the_timeline(live, standin):
    target = standin.add_tweet("The first of many")
    for n in range(130):
        standin.add_tweet(f"Filler post number {n}")

    found = live.find(post("The first of many"), since=recent())

    assert found is not None and found.id == target.id
    pages = [r.query for r in standin.requests if r.route == "GET /2/users/:id/tweets"]
    assert len(pages) == 2 and "pagination_token" not in pages[0] and pages[1]["pagination_token"]


def test_find_cannot_call_a_post_absent_when_it_did_not_read_every_page(live, standin, monkeypatch):
    monkeypatch.setattr("adapters.x.FIND_PAGES", 1)
    standin.add_tweet("The first of many")
    for n in range(130):
        standin.add_tweet(f"Filler post number {n}")

    with pytest.raises(Transient):
        live.find(post("Never posted"), since=recent())
    assert live.find(post("Filler post number 129"), since=recent()) is not None


def test_find_of_a_reply_requires_the_same_parent(live, standin):
    root = live.publish(post("Root post https://example.com/r"))
    other = live.publish(post("Another root"))
    reply = live.reply(replying(post("Later, it was fine.", kind="followup", parent=root, root=root), root, root))

    assert live.find(post("Later, it was fine.", kind="followup", parent=root, root=root), since=recent()) == reply
    assert live.find(post("Later, it was fine.", kind="followup", parent=other, root=other),
                     since=recent()) is None
    assert live.find(post("Later, it was fine."), since=recent()) is None  # a root is not a reply
    # a follow-up given without its parent is matched on its content alone
    assert live.find(post("Later, it was fine.", kind="followup"), since=recent()) == reply


def test_find_fails_as_transient_when_x_cannot_be_read(live, standin):
    standin.fail_next("GET /2/users/:id/tweets", 503)

    with pytest.raises(Transient):
        live.find(post("anything"), since=recent())


def test_find_is_rate_limited_like_any_call(live, standin):
    live.whoami()
    standin.rate_limit_next("GET /2/users/:id/tweets", reset=RESET)

    with pytest.raises(RateLimited) as caught:
        live.find(post("anything"), since=recent())
    assert caught.value.retry_at >= at(RESET)


# ---------------------------------------------------------------------------- threads


def test_replies_thread_under_the_root_and_under_each_other(live, standin, mock):
    root = live.publish(post("Root https://example.com/root"))
    first = live.reply(replying(post("Part one", kind="followup", parent=root, root=root), root, root))
    second = live.reply(replying(post("Part two", kind="followup", part=2, parent=first, root=root), first, root))

    assert standin.tweets[first.id].reply_to == root.id
    assert standin.tweets[second.id].reply_to == first.id
    assert standin.tweets[second.id].conversation_id == root.id
    bodies = [r.json for r in standin.requests if r.route == "POST /2/tweets"]
    assert bodies == [{"text": "Root https://example.com/root"},
                      {"text": "Part one", "reply": {"in_reply_to_tweet_id": root.id}},
                      {"text": "Part two", "reply": {"in_reply_to_tweet_id": first.id}}]
    assert second.url == f"https://x.com/TweepyDev/status/{second.id}"
    for call in mock.calls:
        assert_oauth1(call.request.headers)
        assert call.request.req_kwargs["timeout"] == 5.0


def test_thread_state_is_open_while_the_post_exists_and_gone_once_deleted(live, standin):
    ref = live.publish(post("Root"))
    assert live.thread_state(ref) is ThreadState.OPEN

    standin.delete(ref.id)

    assert live.thread_state(ref) is ThreadState.GONE
    check = [r for r in standin.requests if r.route == "GET /2/tweets/:id"][-1]
    assert check.query == {"tweet.fields": "reply_settings,author_id"}


def test_thread_state_is_open_whatever_the_reply_settings(adapter, mock):
    mock.add("GET", f"{TWEETS}/1", json={"data": {"id": "1", "text": "t", "reply_settings": "mentionedUsers",
                                                  "author_id": ME["id"], "edit_history_tweet_ids": ["1"]}})
    assert adapter.thread_state(PostRef("x", "1", "")) is ThreadState.OPEN


def test_thread_state_of_a_404_is_gone(adapter, mock):
    mock.add("GET", f"{TWEETS}/1", status=404, json=NOT_FOUND)
    assert adapter.thread_state(PostRef("x", "1", "")) is ThreadState.GONE


def test_thread_state_of_an_empty_answer_is_transient(adapter, mock):
    mock.add("GET", f"{TWEETS}/1", json={})
    with pytest.raises(Transient):
        adapter.thread_state(PostRef("x", "1", ""))


def test_replying_to_a_deleted_post_is_rejected(live, standin):
    root = live.publish(post("Root"))
    standin.delete(root.id)

    with pytest.raises(Rejected) as caught:
        live.reply(replying(post("Reply", kind="followup", parent=root, root=root), root, root))
    assert "deleted or not visible" in caught.value.reason


# ---------------------------------------------------------------------------- account and URLs


def test_whoami_names_the_account(live):
    assert live.whoami() == "@TweepyDev (id 1072250532645998596)"


def test_whoami_refuses_a_read_only_token(settings_x, mock):
    XStandin(credentials=CREDENTIALS, access_level="read").install(mock)

    with pytest.raises(AuthFailed) as caught:
        XAdapter(x_config(settings_x)).whoami()
    assert "Read and Write" in caught.value.reason


def test_wrong_secrets_are_refused_and_never_shown(tmp_path, standin):
    adapter = XAdapter(x_config(x_settings(tmp_path, x_consumer_secret="wrong-consumer-secret-9")))

    for call in (adapter.whoami, lambda: adapter.publish(post("Hello"))):
        with pytest.raises(AuthFailed) as caught:
            call()
        assert "wrong-consumer-secret-9" not in str(caught.value)
        assert_no_secret(caught.value)
    assert standin.live() == []


def test_the_username_is_fetched_once_and_the_url_falls_back_without_it(live, standin):
    standin.fail_next("GET /2/users/me", 503)

    first = live.publish(post("First"))
    second = live.publish(post("Second"))
    third = live.publish(post("Third"))

    assert first.url == f"https://x.com/i/web/status/{first.id}"
    assert second.url == f"https://x.com/TweepyDev/status/{second.id}"
    assert third.url == f"https://x.com/TweepyDev/status/{third.id}"
    assert [r.route for r in standin.requests].count("GET /2/users/me") == 2


def test_every_request_carries_the_configured_timeout(tmp_path, standin, mock):
    adapter = XAdapter(x_config(x_settings(tmp_path, http_timeout="12s")))
    ref = adapter.publish(post("Timed"))
    adapter.thread_state(ref)
    adapter.find(post("Timed"), since=recent())

    assert len(mock.calls) == 4
    assert {c.request.req_kwargs["timeout"] for c in mock.calls} == {12.0}


# ---------------------------------------------------------------------------- the API base URL


def test_the_default_base_url_mounts_no_rewriting(adapter):
    assert f"{TWEEPY_HOST}/" not in adapter.session.adapters


def test_a_configured_base_url_receives_every_request(tmp_path, mock):
    server = XStandin(credentials=CREDENTIALS)
    server.install(mock, base="http://x-standin.test:8080/prefix")
    adapter = XAdapter(x_config(x_settings(tmp_path, x_api_url="http://x-standin.test:8080/prefix/")))

    ref = adapter.publish(post("Rebased"))

    assert ref.url.startswith("https://x.com/TweepyDev/status/")
    assert [c.request.url for c in mock.calls] == ["http://x-standin.test:8080/prefix/2/tweets",
                                                   "http://x-standin.test:8080/prefix/2/users/me"]


def test_the_adapter_works_over_a_real_loopback_socket(tmp_path):
    server = XStandin(credentials=CREDENTIALS)
    base = server.serve()
    try:
        assert base.startswith("http://127.0.0.1:")
        adapter = XAdapter(x_config(x_settings(tmp_path, x_api_url=base, http_timeout="1s")))
        assert adapter.whoami() == "@TweepyDev (id 1072250532645998596)"
        root = adapter.publish(post("Over a socket https://example.com/socket"))
        first = adapter.reply(replying(post("Reply one", kind="followup", parent=root, root=root), root, root))
        assert adapter.thread_state(root) is ThreadState.OPEN
        assert adapter.find(post("Reply one", kind="followup", parent=root, root=root), since=recent()) == first

        server.drop_next("POST /2/tweets")  # accepted, then the connection closes without an answer
        with pytest.raises(OutcomeUnknown):
            adapter.publish(post("Dropped on the wire"))
        assert adapter.find(post("Dropped on the wire"), since=recent()) is not None
        assert [t.text for t in server.live()].count("Dropped on the wire") == 1  # sent once, never re-sent

        server.delay_next("POST /2/tweets", 1.3)  # longer than the 1 s timeout
        with pytest.raises(OutcomeUnknown) as caught:
            adapter.publish(post("Too slow on the wire"))
        assert isinstance(caught.value.__cause__, requests.ReadTimeout)

        assert all(r.headers.get("Host", "").startswith("127.0.0.1:") for r in server.requests)
        assert server.violations == []
    finally:
        server.stop()

    # nothing listens any more: refused before sending, so certainly not posted
    with pytest.raises(Transient):
        adapter.publish(post("After the server stopped"))


def test_the_loopback_server_answers_parseable_http(tmp_path):
    server = XStandin()
    base = server.serve()
    try:
        host, port = urlsplit(base).hostname, urlsplit(base).port
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"GET /2/users/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 401")  # unsigned
        assert json.loads(body) == UNAUTHORIZED
        assert b"x-rate-limit-remaining" in head.lower()
    finally:
        server.stop()


def test_the_stand_in_handle_method_answers_without_a_front_end():
    server = XStandin()
    status, headers, body = server.handle("GET", f"{TWEEPY_HOST}/2/users/me", {"Authorization": "OAuth x"}, None)
    assert status == 200 and json.loads(body)["data"]["username"] == "TweepyDev"
    assert headers["x-rate-limit-limit"] == "75"


# ---------------------------------------------------------------------------- the contract fixture


def test_the_contract_fixture_removes_posts_and_has_no_lock(request: pytest.FixtureRequest):
    target: XTarget = request.getfixturevalue("x_target")
    ref = target.adapter.publish(post("For the contract"))
    target.remove(ref)
    assert target.adapter.thread_state(ref) is ThreadState.GONE
    with pytest.raises(pytest.skip.Exception):
        target.lock(ref)


def test_no_secret_reaches_the_logs(live, standin, caplog):
    caplog.set_level(logging.DEBUG)
    root = live.publish(post("Logged https://example.com/log"))
    live.reply(replying(post("Reply", kind="followup", parent=root, root=root), root, root))
    live.find(post("Reply", kind="followup", parent=root, root=root), since=recent())
    standin.fail_next("POST /2/tweets", 403, observed_body(403))
    with pytest.raises(Duplicate):
        live.publish(post("Logged https://example.com/log"))

    assert caplog.records
    for record in caplog.records:
        message = record.getMessage()
        # the two secrets never leave the process; oauthlib masks them in its own debug records
        assert "cs-consumer-secret-0002" not in message and "ts-token-secret-0004" not in message
        if record.name.startswith("adapters."):
            assert not any(secret in message for secret in SECRETS)


def test_the_adapter_is_built_from_its_own_config_alone(standin):
    config = XConfig(*CREDENTIALS, timeout=dt.timedelta(seconds=5))
    assert not any(secret in repr(config) for secret in CREDENTIALS)
    adapter = XAdapter(config)
    ref = adapter.publish(post("Built from its own configuration"))
    assert standin.tweets[ref.id].text == "Built from its own configuration"
    assert adapter.whoami().startswith("@")
