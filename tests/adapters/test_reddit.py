"""The Reddit adapter: real praw/prawcore code against recorded exchanges and a stateful stand-in."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import praw
import prawcore
import pytest
import responses
from prawcore.sessions import FiniteRetryStrategy

from adapters.base import Outgoing, PostRef, ThreadState
from adapters.reddit import RedditAdapter, _retry_strategy, _send_once, _SendOnce, ratelimit_delay, user_agent
from bot.engine import Engine
from bot.errors import AdapterError, AuthFailed, ConfigError, OutcomeUnknown, RateLimited, Rejected, Transient
from bot.planner import Planner
from bot.store import Store
from tests.adapters.reddit_fixtures import reddit_settings
from tests.conftest import story
from tests.replies import replying
from tests.standins.reddit import RedditStandin

UTC = dt.UTC
DATA = Path(__file__).parents[1] / "data" / "reddit"
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLIENT_ID, SECRET = "replay-client-id", "replay-client-secret-8c1f"
USERNAME, PASSWORD = "replay_user", "replay-password-5d2e"
SUBREDDIT = "oneyearago_test"
PLACEHOLDERS = {"<USERNAME>": USERNAME, "<PASSWORD>": PASSWORD, "<TEST_SUBREDDIT>": SUBREDDIT}
EXTRA_SUBMIT_FIELDS = {"nsfw": "False", "spoiler": "False", "validate_on_submit": "True"}
"""What praw 8 sends on top of the 2016/2017 recordings."""


# ---------------------------------------------------------------------------- helpers


def cassette(path: str) -> list[dict[str, Any]]:
    return json.loads((DATA / path).read_text())["interactions"]


def recorded_form(interaction: dict[str, Any]) -> dict[str, str]:
    body = interaction["request"]["body"]
    text = body["string"] if isinstance(body, dict) else body
    form = dict(parse_qsl(text, keep_blank_values=True))
    return {k: PLACEHOLDERS.get(v, v) for k, v in form.items()}


def add_recorded(mock: responses.RequestsMock, interaction: dict[str, Any], *, method: str | None = None,
                 url: str | None = None) -> None:
    """Register one recorded answer (at its own URL, or at ``url``), minus transport-level headers."""
    response = interaction["response"]
    headers = {k: v[0] for k, v in response["headers"].items()
               if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "set-cookie",
                                    "connection", "content-type")}
    content_type = next((v[0] for k, v in response["headers"].items() if k.lower() == "content-type"),
                        "application/json")
    target = url or interaction["request"]["uri"].split("?")[0]
    mock.add(method or interaction["request"]["method"], target, status=response["status"]["code"],
             headers=headers, body=response["body"]["string"], content_type=content_type)


def sent_form(call: Any) -> dict[str, str]:
    body = call.request.body or ""
    return dict(parse_qsl(body if isinstance(body, str) else body.decode(), keep_blank_values=True))


def calls_to(mock: responses.RequestsMock, path: str) -> list[Any]:
    return [c for c in mock.calls if urlsplit(c.request.url).path == path]


def root_post(title: str = "Test Title", selftext: str = "Test text.", **extra: Any) -> Outgoing:
    return Outgoing("reddit", "s1", "root", 1, {"title": title, "selftext": selftext, **extra}, "key-root")


def followup(text: str, part: int = 1, parent: PostRef | None = None, root: PostRef | None = None) -> Outgoing:
    return Outgoing("reddit", "s1", "followup", part, {"text": text}, f"key-{part}", parent, root)


def submission_ref(link_id: str) -> PostRef:
    return PostRef("reddit", link_id, f"https://www.reddit.com/comments/{link_id}/",
                   {"name": f"t3_{link_id}", "submission": link_id})


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def replay(mock: responses.RequestsMock) -> RedditAdapter:
    """An adapter on Reddit's own hosts (answered by ``responses``), on a fixed clock."""
    settings = reddit_settings(_ReplayAccount(), reddit_flair_id="", http_timeout="7.5s")
    return RedditAdapter(settings, clock=lambda: NOW)


class _ReplayAccount(RedditStandin):
    """Only the account the replay settings are made from (no stand-in answers the replays)."""

    def __init__(self) -> None:
        super().__init__(client_id=CLIENT_ID, client_secret=SECRET, username=USERNAME, password=PASSWORD,
                         subreddit=SUBREDDIT)


def replay_with(**options: Any) -> RedditAdapter:
    return RedditAdapter(reddit_settings(_ReplayAccount(), **options), clock=lambda: NOW)


def add_token(mock: responses.RequestsMock, name: str = "praw/TestSubreddit.test_submit__selftext.json") -> None:
    add_recorded(mock, cassette(name)[0])


@pytest.fixture
def standin() -> RedditStandin:
    return RedditStandin()


@pytest.fixture
def live(standin: RedditStandin, mock: responses.RequestsMock) -> RedditAdapter:
    """An adapter talking to the stand-in through ``responses`` (Reddit's own hosts)."""
    standin.install(mock)
    return RedditAdapter(reddit_settings(standin), clock=lambda: NOW)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """prawcore sleeps 0-4 s between its retries of a read; record the sleeps instead."""
    slept: list[float] = []
    monkeypatch.setattr(prawcore.sessions.time, "sleep", slept.append)
    return slept


# ---------------------------------------------------------------------------- recorded exchanges


def test_a_self_post_sends_the_recorded_submit_form_and_returns_the_new_id(mock, replay):
    interactions = cassette("praw/TestSubreddit.test_submit__selftext.json")
    for interaction in interactions:
        add_recorded(mock, interaction)

    ref = replay.publish(root_post())

    assert ref == PostRef("reddit", "4bbe4b", "https://www.reddit.com/comments/4bbe4b/",
                          {"name": "t3_4bbe4b", "submission": "4bbe4b"})
    token, submit = mock.calls[0], mock.calls[1]
    assert len(mock.calls) == 2  # the submission is not fetched back
    assert token.request.url == "https://www.reddit.com/api/v1/access_token"
    assert sent_form(token) == recorded_form(interactions[0])
    assert token.request.headers["Authorization"] == "Basic " + base64.b64encode(
        f"{CLIENT_ID}:{SECRET}".encode()).decode()
    assert submit.request.url == "https://oauth.reddit.com/api/submit/?raw_json=1"
    assert submit.request.headers["Authorization"] == "bearer <ACCESS_TOKEN>"
    assert submit.request.headers["User-Agent"] == (
        f"{sys.platform}:oneyearago:0.1.0 (by /u/{USERNAME}) PRAW/{praw.__version__} prawcore/{prawcore.__version__}")
    recorded = recorded_form(interactions[1])
    assert sent_form(submit) == {**recorded, **EXTRA_SUBMIT_FIELDS}
    assert recorded == {"api_type": "json", "kind": "self", "resubmit": "True", "sendreplies": "True",
                        "sr": SUBREDDIT, "text": "Test text.", "title": "Test Title"}
    assert token.request.req_kwargs["timeout"] == submit.request.req_kwargs["timeout"] == 7.5


def test_flair_text_goes_out_with_the_configured_flair_template(mock):
    interactions = cassette("praw/TestSubreddit.test_submit__flair.json")
    for interaction in interactions:
        add_recorded(mock, interaction)
    adapter = replay_with(reddit_flair_id="17bf09c4-520c-11e7-8073-0ef8adb5ef68")

    ref = adapter.publish(root_post(flair_text="Test flair text"))

    assert ref.id == "6hi2vp"
    assert sent_form(calls_to(mock, "/api/submit/")[0]) == {**recorded_form(interactions[1]), **EXTRA_SUBMIT_FIELDS}
    assert recorded_form(interactions[1])["flair_text"] == "Test flair text"


def test_flair_text_without_a_flair_template_is_not_sent(mock, replay):
    for interaction in cassette("praw/TestSubreddit.test_submit__selftext.json"):
        add_recorded(mock, interaction)

    replay.publish(root_post(flair_text="research"))

    form = sent_form(calls_to(mock, "/api/submit/")[0])
    assert "flair_text" not in form and "flair_id" not in form


def test_the_flair_template_alone_is_sent_when_the_story_has_no_flair_text(mock):
    for interaction in cassette("praw/TestSubreddit.test_submit__selftext.json"):
        add_recorded(mock, interaction)

    replay_with(reddit_flair_id="tmpl-1").publish(root_post())

    form = sent_form(calls_to(mock, "/api/submit/")[0])
    assert form["flair_id"] == "tmpl-1" and "flair_text" not in form


def test_the_recorded_submission_reads_back_as_an_open_thread(mock, replay):
    add_token(mock)
    add_recorded(mock, cassette("praw/TestSubreddit.test_submit__selftext.json")[2])

    assert replay.thread_state(submission_ref("4bbe4b")) is ThreadState.OPEN
    (fetch,) = calls_to(mock, "/comments/4bbe4b/")
    assert dict(parse_qsl(urlsplit(fetch.request.url).query)) == {"limit": "1", "sort": "confidence",
                                                                  "raw_json": "1"}


def test_part_one_replies_to_the_submission_with_the_recorded_comment_form(mock, replay):
    interactions = cassette("praw/TestSubmission.test_reply.json")
    for interaction in interactions:
        add_recorded(mock, interaction)
    root = submission_ref("4b1tfm")

    ref = replay.reply(replying(followup("Test reply"), root, root))

    assert ref == PostRef("reddit", "d162ara", "https://www.reddit.com/comments/4b1tfm/_/d162ara/",
                          {"name": "t1_d162ara", "submission": "4b1tfm"})
    (call,) = calls_to(mock, "/api/comment/")
    assert call.request.url == "https://oauth.reddit.com/api/comment/?raw_json=1"
    assert sent_form(call) == recorded_form(interactions[1]) == {"api_type": "json", "text": "Test reply",
                                                                 "thing_id": "t3_4b1tfm"}


def test_a_later_part_replies_to_the_previous_comment_with_the_recorded_form(mock, replay):
    interactions = cassette("praw/TestComment.test_reply.json")
    for interaction in interactions:
        add_recorded(mock, interaction)
    root = submission_ref("4b1tfm")
    previous = PostRef("reddit", "d1616q2", "https://www.reddit.com/comments/4b1tfm/_/d1616q2/",
                       {"name": "t1_d1616q2", "submission": "4b1tfm"})

    ref = replay.reply(replying(followup("Comment reply", 2), previous, root))

    assert ref.id == "d1680wu" and ref.extra == {"name": "t1_d1680wu", "submission": "4b1tfm"}
    (call,) = calls_to(mock, "/api/comment/")
    assert sent_form(call) == recorded_form(interactions[1]) == {"api_type": "json", "text": "Comment reply",
                                                                 "thing_id": "t1_d1616q2"}


def test_a_reply_reddit_accepts_without_returning_it_is_an_unknown_outcome(mock, replay):
    interactions = cassette("praw/TestSubmission.test_reply__none.json")
    for interaction in interactions:
        add_recorded(mock, interaction)
    root = submission_ref("ah19vv")

    with pytest.raises(OutcomeUnknown, match="did not return it"):
        replay.reply(replying(followup("TEST"), root, root))
    (call,) = calls_to(mock, "/api/comment/")
    assert sent_form(call) == recorded_form(interactions[1])


RATELIMIT_CASES = {c["test"]: c["praw_request_side_effects"][0]
                   for c in json.loads((DATA / "praw/praw-unit-ratelimit-mock-bodies.json").read_text())["cases"]}


@pytest.mark.parametrize(("case", "wait"), [
    ("test_post_ratelimit__over_threshold__minutes", dt.timedelta(minutes=2)),  # "1 minute" means up to 1:59
    ("test_post_ratelimit__over_threshold__seconds", dt.timedelta(seconds=7)),
    ("test_post_ratelimit__under_threshold__seconds", dt.timedelta(seconds=6)),
    ("test_post_ratelimit__under_threshold__milliseconds", dt.timedelta(seconds=1)),
    ("test_post_ratelimit__invalid_rate_limit_message", dt.timedelta(minutes=10)),  # no time given: fallback
])
def test_ratelimit_in_an_http_200_is_rate_limited_and_never_sent_again(mock, replay, case, wait):
    add_token(mock)
    mock.add("POST", "https://oauth.reddit.com/api/submit/", json=RATELIMIT_CASES[case])
    mock.add("POST", "https://oauth.reddit.com/api/submit/", json={"json": {"errors": [], "data": {
        "url": "https://www.reddit.com/r/x/comments/zzz/t/", "id": "zzz", "name": "t3_zzz"}}})

    with pytest.raises(RateLimited) as caught:
        replay.publish(root_post())

    assert caught.value.retry_at == NOW + wait
    assert len(calls_to(mock, "/api/submit/")) == 1  # praw's own sleep-and-resend is off


def test_a_503_on_submit_is_requested_exactly_once_and_the_outcome_is_unknown(mock, replay, no_sleep):
    add_token(mock)
    for interaction in cassette("prawcore/TestSession.test_request__service_unavailable.json")[1:]:
        add_recorded(mock, interaction, method="POST", url="https://oauth.reddit.com/api/submit/")

    with pytest.raises(OutcomeUnknown, match="HTTP 503"):
        replay.publish(root_post())

    assert len(calls_to(mock, "/api/submit/")) == 1
    assert no_sleep == []


def test_a_503_on_a_reply_is_requested_exactly_once_and_the_outcome_is_unknown(mock, replay, no_sleep):
    add_token(mock)
    for interaction in cassette("prawcore/TestSession.test_request__service_unavailable.json")[1:]:
        add_recorded(mock, interaction, method="POST", url="https://oauth.reddit.com/api/comment/")
    root = submission_ref("4b1tfm")

    with pytest.raises(OutcomeUnknown):
        replay.reply(replying(followup("Test reply"), root, root))
    assert len(calls_to(mock, "/api/comment/")) == 1


def test_reads_keep_prawcores_retries_and_a_lasting_503_is_transient(mock, replay, no_sleep):
    add_token(mock)
    for interaction in cassette("prawcore/TestSession.test_request__service_unavailable.json")[1:]:
        add_recorded(mock, interaction, method="GET", url="https://oauth.reddit.com/comments/4bbe4b/")

    with pytest.raises(Transient, match="HTTP 503"):
        replay.thread_state(submission_ref("4bbe4b"))

    assert len(calls_to(mock, "/comments/4bbe4b/")) == 3  # prawcore's three attempts
    assert len(no_sleep) == 2


def test_a_401_on_the_write_is_sent_once_more_with_a_fresh_token(mock, replay):
    interactions = cassette("prawcore/TestSession.test_request__with_invalid_access_token.json")
    add_token(mock)
    add_recorded(mock, interactions[1], method="POST", url="https://oauth.reddit.com/api/submit/")
    for interaction in cassette("praw/TestSubreddit.test_submit__selftext.json")[:2]:
        add_recorded(mock, interaction)

    ref = replay.publish(root_post())

    assert ref.id == "4bbe4b"
    assert len(calls_to(mock, "/api/v1/access_token")) == 2  # the refused token was replaced
    assert len(calls_to(mock, "/api/submit/")) == 2  # the first one was refused before it was read


def test_a_401_that_persists_is_an_authentication_failure(mock, replay):
    interaction = cassette("prawcore/TestSession.test_request__with_invalid_access_token.json")[1]
    for _ in range(2):
        add_token(mock)
        add_recorded(mock, interaction, method="POST", url="https://oauth.reddit.com/api/submit/")

    with pytest.raises(AuthFailed, match="access token"):
        replay.publish(root_post())
    assert len(calls_to(mock, "/api/submit/")) == 2


def test_a_403_on_submit_is_rejected_as_not_allowed_to_post(mock, replay):
    add_token(mock)
    add_recorded(mock, cassette("prawcore/TestSession.test_request__forbidden.json")[1], method="POST",
                 url="https://oauth.reddit.com/api/submit/")

    with pytest.raises(Rejected, match=f"not allowed to post in r/{SUBREDDIT}"):
        replay.publish(root_post())
    assert len(calls_to(mock, "/api/submit/")) == 1


def test_a_403_on_a_reply_is_rejected_as_a_locked_thread(mock, replay):
    add_token(mock)
    add_recorded(mock, cassette("prawcore/TestSession.test_request__forbidden.json")[1], method="POST",
                 url="https://oauth.reddit.com/api/comment/")
    root = submission_ref("4b1tfm")

    with pytest.raises(Rejected, match="locked"):
        replay.reply(replying(followup("Test reply"), root, root))


def test_a_429_with_retry_after_is_rate_limited_for_that_long(mock, replay):
    add_token(mock)
    add_recorded(mock, cassette("prawcore/TestSession.test_request__too__many_requests__with_retry_headers.json")[1],
                 method="POST", url="https://oauth.reddit.com/api/submit/")

    with pytest.raises(RateLimited) as caught:
        replay.publish(root_post())
    assert caught.value.retry_at == NOW + dt.timedelta(seconds=4)
    assert len(calls_to(mock, "/api/submit/")) == 1


def test_the_recorded_429_on_the_account_check_is_rate_limited(mock, replay):
    add_token(mock)
    add_recorded(mock, cassette("prawcore/TestSession.test_request__too__many_requests__with_retry_headers.json")[1])

    with pytest.raises(RateLimited) as caught:
        replay.whoami()
    assert caught.value.retry_at == NOW + dt.timedelta(seconds=4)


def test_a_429_from_the_token_endpoint_is_rate_limited_and_nothing_is_posted(mock, replay):
    add_recorded(mock, cassette(
        "prawcore/TestSession.test_request__too__many_requests__without_retry_headers.json")[0])

    with pytest.raises(RateLimited) as caught:
        replay.publish(root_post())
    assert caught.value.retry_at == NOW + dt.timedelta(seconds=60)  # no header: the documented fallback
    assert calls_to(mock, "/api/submit/") == []


def test_a_validation_error_in_an_http_400_is_rejected_with_reddits_reason(mock, replay):
    for interaction in cassette("praw/TestSubreddit.test_submit__verify_invalid.json"):
        add_recorded(mock, interaction)

    with pytest.raises(Rejected, match="SUBMIT_VALIDATION_TITLE_BLACKLISTED_STRING.*field title"):
        replay.publish(root_post("dfgfdgfdgdf"))


def _keys(data: Any) -> set[str]:
    return set(data) if isinstance(data, dict) else set()


def test_the_stand_in_answers_in_the_recorded_shapes(standin, mock, live):
    submit_rec = json.loads(cassette("praw/TestSubreddit.test_submit__selftext.json")[1]["response"]["body"]["string"])
    fetch_rec = json.loads(cassette("praw/TestSubreddit.test_submit__selftext.json")[2]["response"]["body"]["string"])
    reply_rec = json.loads(cassette("praw/TestSubmission.test_reply.json")[1]["response"]["body"]["string"])
    token_rec = json.loads(cassette("praw/TestSubmission.test_reply.json")[0]["response"]["body"]["string"])
    root = live.publish(root_post())
    live.reply(replying(followup("part one"), root, root))
    live.thread_state(root)
    answers = {urlsplit(c.request.url).path.rstrip("/").rsplit("/", 1)[-1]: json.loads(c.response.text)
               for c in mock.calls}

    assert _keys(answers["access_token"]) == _keys(token_rec)
    assert answers["submit"]["json"].keys() == submit_rec["json"].keys()
    assert answers["submit"]["json"]["data"].keys() == submit_rec["json"]["data"].keys()
    recorded_comment = reply_rec["json"]["data"]["things"][0]
    comment = answers["comment"]["json"]["data"]["things"][0]
    assert comment["kind"] == recorded_comment["kind"] == "t1"
    assert _keys(recorded_comment["data"]) <= _keys(comment["data"])
    link_listing, comment_listing = answers[root.id]
    assert _keys(fetch_rec[0]["data"]) <= _keys(link_listing["data"]) | {"dist"}
    recorded_link = fetch_rec[0]["data"]["children"][0]["data"]
    assert _keys(recorded_link) - {"from", "from_id", "from_kind"} <= _keys(link_listing["data"]["children"][0]["data"])
    assert comment_listing["kind"] == "Listing"
    assert {"x-ratelimit-used", "x-ratelimit-remaining", "x-ratelimit-reset"} <= {
        k.lower() for k in mock.calls[1].response.headers}


# ---------------------------------------------------------------------------- sending once


def test_only_the_writing_thread_loses_prawcores_retries():
    seen: dict[str, Any] = {}
    inside = threading.Event()
    done = threading.Event()

    def writer() -> None:
        with _send_once():
            seen["writer"] = _retry_strategy()
            inside.set()
            done.wait(5)

    thread = threading.Thread(target=writer)
    thread.start()
    inside.wait(5)
    seen["reader"] = _retry_strategy()
    done.set()
    thread.join()
    assert isinstance(seen["writer"], _SendOnce) and not seen["writer"].should_retry_on_failure()
    assert seen["writer"]._sleep_seconds() is None
    assert isinstance(seen["reader"], FiniteRetryStrategy)
    assert isinstance(_retry_strategy(), FiniteRetryStrategy)


def test_the_adapter_installs_the_send_once_hook_on_prawcores_session(live):
    assert live.reddit._core._retry_strategy_class is _retry_strategy


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520, 522])
def test_every_5xx_on_a_submit_is_one_post_and_an_unknown_outcome(standin, live, status):
    standin.fail_next("submit", status=status, body="", count=3)

    with pytest.raises(OutcomeUnknown, match=f"HTTP {status}"):
        live.publish(root_post())
    assert len(standin.requests_to("submit")) == 1


def test_a_submit_answered_5xx_after_it_landed_is_found_not_posted_again(standin, live):
    standin.fail_next("submit", status=502, body="", apply=True)

    with pytest.raises(OutcomeUnknown):
        live.publish(root_post())

    found = live.find(root_post(), since=dt.datetime.now(UTC) - dt.timedelta(minutes=5))
    assert found is not None and len(standin.posts_by()) == 1 and found.id == standin.posts_by()[0]["id"]


def test_a_submit_accepted_then_dropped_is_an_unknown_outcome_and_then_found(standin, live):
    standin.drop_next("submit")

    with pytest.raises(OutcomeUnknown, match="ConnectionError"):
        live.publish(root_post())

    assert len(standin.requests_to("submit")) == 1 and len(standin.posts_by()) == 1
    assert live.find(root_post(), since=dt.datetime.now(UTC) - dt.timedelta(minutes=5)) is not None


def test_a_submit_that_times_out_is_an_unknown_outcome(standin, live):
    standin.delay_next("submit", 60)

    with pytest.raises(OutcomeUnknown, match="ReadTimeout"):
        live.publish(root_post())
    assert len(standin.requests_to("submit")) == 1
    assert standin.requests_to("submit")[0].timeout == 10.0


def test_a_reply_accepted_then_dropped_is_found_under_its_parent(standin, live):
    root = live.publish(root_post())
    standin.drop_next("comment")

    with pytest.raises(OutcomeUnknown):
        live.reply(replying(followup("part one", 1, root, root), root, root))

    found = live.find(followup("part one", 1, root, root), since=dt.datetime.now(UTC) - dt.timedelta(minutes=5))
    assert found is not None and found.extra["submission"] == root.id
    assert len(standin.comments_by()) == 1


def test_a_dropped_token_request_is_transient_because_nothing_was_posted(standin, live):
    standin.drop_next("access_token", apply=False)

    with pytest.raises(Transient, match="no answer from Reddit"):
        live.publish(root_post())
    assert standin.requests_to("submit") == []


def test_a_5xx_from_the_token_endpoint_is_transient_because_nothing_was_posted(standin, live):
    standin.fail_next("access_token", status=503, body="")

    with pytest.raises(Transient, match="HTTP 503"):
        live.publish(root_post())
    assert standin.requests_to("submit") == []


def test_connection_refused_is_transient_for_writes_and_reads(no_sleep):
    standin = RedditStandin()
    base_url = standin.serve()
    standin.stop()  # nothing listens there any more
    adapter = RedditAdapter(reddit_settings(standin, base_url), clock=lambda: NOW)

    with pytest.raises(Transient, match="could not connect"):
        adapter.publish(root_post())
    with pytest.raises(Transient):
        adapter.find(root_post(), since=NOW)


def test_a_real_connection_dropped_after_the_post_is_an_unknown_outcome():
    standin = RedditStandin()
    base_url = standin.serve()
    try:
        adapter = RedditAdapter(reddit_settings(standin, base_url), clock=lambda: NOW)
        standin.drop_next("submit")
        with pytest.raises(OutcomeUnknown, match="ConnectionError"):
            adapter.publish(root_post())
        assert len(standin.posts_by()) == 1
        assert adapter.find(root_post(), since=dt.datetime.now(UTC) - dt.timedelta(minutes=5)) is not None
    finally:
        standin.stop()


def test_a_real_read_timeout_on_a_submit_is_an_unknown_outcome():
    standin = RedditStandin()
    base_url = standin.serve()
    try:
        adapter = RedditAdapter(reddit_settings(standin, base_url, http_timeout="0.3s"), clock=lambda: NOW)
        adapter.whoami()  # log in first
        standin.delay_next("submit", 1.0)
        with pytest.raises(OutcomeUnknown, match="ReadTimeout"):
            adapter.publish(root_post())
        assert len(standin.requests_to("submit")) == 1
    finally:
        standin.stop()


# ---------------------------------------------------------------------------- the error table


def test_ratelimit_from_the_action_throttle_says_when_to_try_again(standin, live):
    standin.action_throttle = 9 * 60 + 30
    live.publish(root_post())

    with pytest.raises(RateLimited, match="Take a break for 9 minutes") as caught:
        live.publish(root_post("Another title"))

    assert caught.value.retry_at == NOW + dt.timedelta(minutes=10)  # "9 minutes" means up to 9:59
    assert len(standin.requests_to("submit")) == 2 and len(standin.posts_by()) == 1


def test_ratelimit_on_a_reply_is_rate_limited(standin, live):
    root = live.publish(root_post())
    standin.rate_limit_next("comment", "You are doing that too much. Try again in 6 seconds.")

    with pytest.raises(RateLimited) as caught:
        live.reply(replying(followup("part one"), root, root))
    assert caught.value.retry_at == NOW + dt.timedelta(seconds=7)
    assert standin.comments_by() == []


def test_a_429_with_only_the_reset_header_waits_for_the_reset(standin, live):
    standin.too_many_requests_next("submit", retry_after=None, reset=42)

    with pytest.raises(RateLimited) as caught:
        live.publish(root_post())
    assert caught.value.retry_at == NOW + dt.timedelta(seconds=42)


def test_a_spent_request_quota_is_rate_limited_before_anything_is_sent(standin, live):
    standin.fail_next("me", status=200, body={"name": standin.username},
                      headers={"x-ratelimit-remaining": "0.0", "x-ratelimit-used": "1000",
                               "x-ratelimit-reset": "300"})
    live.reddit.user.me()  # an answer that spends the quota for 300 s

    with pytest.raises(RateLimited, match="quota") as caught:
        live.publish(root_post())
    assert NOW + dt.timedelta(seconds=290) <= caught.value.retry_at <= NOW + dt.timedelta(seconds=300)
    assert standin.requests_to("submit") == []


@pytest.mark.parametrize(("setup", "post", "reason"), [
    (lambda s: None, root_post("x" * 301), "TOO_LONG: this is too long (max: 300) (field title)"),
    (lambda s: None, root_post("Title", "y" * 40_001), "TOO_LONG: this is too long (max: 40000) (field text)"),
    (lambda s: s.subreddits.clear(), root_post(), "SUBREDDIT_NOEXIST: that subreddit doesn't exist (field sr)"),
    (lambda s: setattr(s.subreddits[SUBREDDIT], "allow_self", False), root_post(), "NO_SELFS"),
    (lambda s: setattr(s.subreddits[SUBREDDIT], "flair_required", True), root_post(),
     "SUBMIT_VALIDATION_FLAIR_REQUIRED: Your post must contain post flair. (field flair)"),
    (lambda s: s.subreddits[SUBREDDIT].banned.add(s.username), root_post(), "not allowed to post in r/"),
])
def test_submissions_reddit_refuses_are_rejected_with_its_reason(standin, live, setup, post, reason):
    setup(standin)

    with pytest.raises(Rejected) as caught:
        live.publish(post)
    assert reason in caught.value.reason
    assert standin.posts_by() == []


@pytest.mark.parametrize(("hook", "reason"), [
    ("lock", "THREAD_LOCKED"),
    ("archive", "TOO_OLD"),
    ("remove", "DELETED_LINK"),
])
def test_replies_to_a_closed_thread_are_rejected(standin, live, hook, reason):
    root = live.publish(root_post())
    getattr(standin, hook)(root.id)

    with pytest.raises(Rejected, match=reason):
        live.reply(replying(followup("part one"), root, root))


def test_a_408_is_transient_because_reddit_did_not_read_the_request(standin, live):
    standin.fail_next("submit", status=408, body="")
    with pytest.raises(Transient, match="HTTP 408"):
        live.publish(root_post())
    assert len(standin.requests_to("submit")) == 1


def test_a_payload_that_is_not_for_reddit_is_rejected_before_sending(standin, live):
    with pytest.raises(Rejected, match="no 'title'"):
        live.publish(Outgoing("reddit", "s1", "root", 1, {"text": "an X payload"}, "k"))
    assert standin.requests == []


def test_a_comment_over_reddits_limit_is_rejected(standin, live):
    root = live.publish(root_post())
    with pytest.raises(Rejected, match=r"TOO_LONG.*10000"):
        live.reply(replying(followup("z" * 10_001), root, root))


def test_a_quarantined_subreddit_hides_the_new_comment_which_find_then_locates(standin, live):
    standin.subreddits[SUBREDDIT].quarantined = True
    root = live.publish(root_post())

    with pytest.raises(OutcomeUnknown, match="quarantined"):
        live.reply(replying(followup("part one", 1, root, root), root, root))
    found = live.find(followup("part one", 1, root, root), since=dt.datetime.now(UTC) - dt.timedelta(minutes=5))
    assert found is not None and found.id == standin.comments_by()[0]["id"]


@pytest.mark.parametrize(("password", "secret", "reason"), [
    ("wrong-password", None, "refused the login (invalid_grant)"),
    (None, "wrong-secret", "client id or secret (HTTP 401)"),
])
def test_bad_credentials_are_an_authentication_failure(standin, mock, password, secret, reason):
    standin.install(mock)
    settings = reddit_settings(standin, reddit_password=password or standin.users[standin.username],
                               reddit_client_secret=secret or standin.client_secret)
    adapter = RedditAdapter(settings, clock=lambda: NOW)

    for call in (adapter.whoami, lambda: adapter.publish(root_post())):
        with pytest.raises(AuthFailed) as caught:
            call()
        assert reason in caught.value.reason
    assert standin.requests_to("submit") == []


def test_revoked_tokens_are_replaced_on_a_read_and_on_a_write(standin, live, no_sleep):
    live.whoami()
    standin.revoke_tokens()
    assert live.whoami().startswith("u/")  # prawcore's own refresh-and-retry on reads
    standin.revoke_tokens()
    live.publish(root_post())
    assert len(standin.posts_by()) == 1 and len(standin.requests_to("submit")) == 2


@pytest.mark.parametrize("fault", ["503", "drop", "timeout", "429", "401"])
def test_failed_reads_are_transient_or_say_what_to_do(standin, live, no_sleep, fault):
    root = live.publish(root_post())
    expected: type[AdapterError] = Transient
    if fault == "503":
        standin.fail_next("submission", status=503, body="", count=3)
    elif fault == "drop":
        standin.drop_next("submission", count=3)
    elif fault == "timeout":
        standin.delay_next("submission", 60, count=3)
    elif fault == "429":
        standin.too_many_requests_next("submission", retry_after=30)
        expected = RateLimited
    else:
        standin.fail_next("submission", status=401, body={"error": 401},
                          headers={"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'}, count=3)
        expected = AuthFailed

    with pytest.raises(expected):
        live.thread_state(root)


def test_mapped_errors_never_show_a_secret(standin, mock, caplog, no_sleep):
    caplog.set_level(logging.DEBUG)
    standin.install(mock)
    settings = reddit_settings(standin, reddit_password="wrong-pass-" + "9" * 8)
    errors: list[AdapterError] = []
    bad = RedditAdapter(settings, clock=lambda: NOW)
    for call in (bad.whoami, lambda: bad.publish(root_post())):
        with pytest.raises(AdapterError) as caught:
            call()
        errors.append(caught.value)
    good = RedditAdapter(reddit_settings(standin), clock=lambda: NOW)
    root = good.publish(root_post())
    for route, fault in [("submit", "drop"), ("submit", "503"), ("comment", "timeout"), ("submission", "503"),
                         ("submit", "ratelimit"), ("submit", "429")]:
        if fault == "drop":
            standin.drop_next(route)
        elif fault == "503":
            standin.fail_next(route, status=503, body="", count=1 if route == "submit" else 3)
        elif fault == "timeout":
            standin.delay_next(route, 60)
        elif fault == "ratelimit":
            standin.rate_limit_next(route)
        else:
            standin.too_many_requests_next(route)
        with pytest.raises(AdapterError) as caught:
            if route == "submit":
                good.publish(root_post())
            elif route == "comment":
                good.reply(replying(followup("x"), root, root))
            else:
                good.thread_state(root)
        errors.append(caught.value)
    secrets = [*settings.secrets(), *reddit_settings(standin).secrets(), *standin.tokens]
    assert len(secrets) >= 4
    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [caplog.text]
    for secret in secrets:
        assert not any(secret in text for text in texts), secret
    assert {type(e) for e in errors} == {AuthFailed, OutcomeUnknown, Transient, RateLimited}


def test_a_secret_echoed_by_an_error_is_masked(standin, live):
    standin.fail_next("submit", status=200,
                      body={"json": {"errors": [["BAD", f"echo {standin.client_secret}", "x"]]}})

    with pytest.raises(Rejected) as caught:
        live.publish(root_post())
    assert standin.client_secret not in str(caught.value) and "********" in str(caught.value)


# ---------------------------------------------------------------------------- thread state


def test_thread_state_follows_the_submission(standin, live):
    root = live.publish(root_post())
    assert live.thread_state(root) is ThreadState.OPEN
    standin.lock(root.id)
    assert live.thread_state(root) is ThreadState.LOCKED


@pytest.mark.parametrize(("hook", "state"), [
    ("remove", ThreadState.GONE), ("delete", ThreadState.GONE), ("lock", ThreadState.LOCKED),
    ("archive", ThreadState.LOCKED),
])
def test_thread_state_of_a_submission(standin, live, hook, state):
    root = live.publish(root_post())
    getattr(standin, hook)(root.id)
    assert live.thread_state(root) is state


def test_a_submission_reddit_does_not_know_is_gone(live):
    assert live.thread_state(submission_ref("zzzzzz")) is ThreadState.GONE


def test_thread_state_of_a_comment_checks_the_comment_and_its_submission(standin, live):
    root = live.publish(root_post())
    first = live.reply(replying(followup("part one"), root, root))
    assert live.thread_state(first) is ThreadState.OPEN
    standin.lock(root.id)
    assert live.thread_state(first) is ThreadState.LOCKED
    second = PostRef("reddit", first.id, first.url, {"name": first.extra["name"]})  # no submission kept
    assert live.thread_state(second) is ThreadState.LOCKED
    standin.remove(first.id)
    assert live.thread_state(first) is ThreadState.GONE
    gone = PostRef("reddit", "zzzzzzz", "", {"name": "t1_zzzzzzz", "submission": root.id})
    assert live.thread_state(gone) is ThreadState.GONE


# ---------------------------------------------------------------------------- find


def test_find_matches_title_and_self_text_since_the_given_time(standin, live):
    ref = live.publish(root_post("A title", "Body text.\n"))
    since = dt.datetime.now(UTC) - dt.timedelta(minutes=5)

    found = live.find(root_post("A title", "Body text."), since=since)
    assert found is not None and found.id == ref.id and found.extra == ref.extra
    assert found.url.endswith(f"/r/{SUBREDDIT}/comments/{ref.id}/a_title/")
    assert live.find(root_post("A title", "Other body."), since=since) is None
    assert live.find(root_post("Other title", "Body text."), since=since) is None
    assert live.find(root_post("A title", "Body text."), since=dt.datetime.now(UTC) + dt.timedelta(minutes=1)) is None
    (listing,) = standin.requests_to("submitted")[:1]
    assert listing.path == f"/user/{standin.username}/submitted"
    assert listing.query == {"sort": "new", "limit": "100", "raw_json": "1"}


def test_find_returns_the_oldest_of_two_identical_posts(standin, live):
    first = live.publish(root_post())
    live.publish(root_post())
    assert live.find(root_post(), since=dt.datetime.now(UTC) - dt.timedelta(minutes=5)).id == first.id


def test_find_ignores_the_same_post_in_another_subreddit(standin, live):
    standin.add_subreddit("elsewhere")
    other = RedditAdapter(reddit_settings(standin, reddit_subreddit="elsewhere"), clock=lambda: NOW)
    other.publish(root_post())
    assert live.find(root_post(), since=dt.datetime.now(UTC) - dt.timedelta(minutes=5)) is None


def test_find_matches_a_reply_by_body_and_parent(standin, live):
    root = live.publish(root_post())
    first = live.reply(replying(followup("same words", 1, root, root), root, root))
    second = live.reply(replying(followup("same words", 2, first, root), first, root))
    since = dt.datetime.now(UTC) - dt.timedelta(minutes=5)

    assert live.find(followup("same words", 1, root, root), since=since).id == first.id
    assert live.find(followup("same words", 2, first, root), since=since).id == second.id
    assert live.find(followup("other words", 1, root, root), since=since) is None
    (listing,) = standin.requests_to("user_comments")[:1]
    assert listing.query == {"sort": "new", "limit": "100", "raw_json": "1"}


def test_a_removed_post_is_still_found_in_the_accounts_own_listing(standin, live):
    ref = live.publish(root_post())
    standin.remove(ref.id)
    assert live.find(root_post(), since=dt.datetime.now(UTC) - dt.timedelta(minutes=5)).id == ref.id


# ---------------------------------------------------------------------------- whoami and settings


def test_whoami_names_the_account_and_the_subreddit_without_posting(standin, live):
    assert live.whoami() == f"u/{standin.username} posting to r/{SUBREDDIT}"
    assert {r.route for r in standin.requests} == {"access_token", "me", "about"}


@pytest.mark.parametrize(("setup", "reason"), [
    (lambda s: s.subreddits.clear(), f"r/{SUBREDDIT} does not exist"),
    (lambda s: setattr(s.subreddits[SUBREDDIT], "private", True), "cannot see"),
    (lambda s: s.subreddits[SUBREDDIT].banned.add(s.username), "is banned from"),
    (lambda s: s.fail_next("about", status=302, body="", headers={"location": "/subreddits/search.json?q=x"}),
     "does not exist"),
])
def test_whoami_says_when_the_subreddit_cannot_be_used(standin, live, setup, reason):
    setup(standin)
    with pytest.raises(Rejected, match=reason):
        live.whoami()


def test_the_user_agent_follows_reddits_rule_unless_set(standin):
    assert user_agent(reddit_settings(standin)) == f"{sys.platform}:oneyearago:0.1.0 (by /u/{standin.username})"
    assert user_agent(reddit_settings(standin, reddit_user_agent="custom:ua:1 (by /u/x)")) == "custom:ua:1 (by /u/x)"


def test_missing_credentials_are_a_config_error_naming_the_variables(standin):
    settings = reddit_settings(standin, reddit_password="", reddit_subreddit="")
    with pytest.raises(ConfigError, match="ONEYEARAGO_REDDIT_PASSWORD, ONEYEARAGO_REDDIT_SUBREDDIT"):
        RedditAdapter(settings)


def test_a_subreddit_given_with_its_prefix_is_accepted(standin, live):
    adapter = RedditAdapter(reddit_settings(standin, reddit_subreddit=f"r/{SUBREDDIT}"), clock=lambda: NOW)
    adapter.publish(root_post())
    assert standin.requests_to("submit")[0].form["sr"] == SUBREDDIT


@pytest.mark.parametrize(("message", "seconds"), [
    ("You are doing that too much. Try again in 9 minutes.", 600),
    ("Looks like you've been doing that a lot. Take a break for 1 minute before trying again.", 120),
    ("you are doing that too much. try again in 1 hour, 5 minutes.", 3960),
    ("Try again in 30 seconds.", 31),
    ("Try again in 500 milliseconds.", 1),
])
def test_ratelimit_messages_give_an_upper_bound_of_the_wait(message, seconds):
    assert ratelimit_delay(message) == dt.timedelta(seconds=seconds)
    assert ratelimit_delay("Some unexpected error message") is None


# ---------------------------------------------------------------------------- with the engine


@pytest.fixture
def sim(make_settings, no_sleep) -> Iterator[dict[str, Any]]:
    clock = {"t": dt.datetime(2026, 1, 1, tzinfo=UTC)}
    standin = RedditStandin(clock=lambda: clock["t"].timestamp())
    base_url = standin.serve()
    settings = make_settings(platforms="reddit")
    store = Store(settings.database_url)
    adapter = RedditAdapter(reddit_settings(standin, base_url), clock=lambda: clock["t"])
    engine = Engine(store, {"reddit": adapter}, settings, clock=lambda: clock["t"], worker="test")
    try:
        yield {"clock": clock, "standin": standin, "engine": engine, "planner": Planner(store, settings),
               "store": store}
    finally:
        store.dispose()
        standin.stop()


def _run(sim: dict[str, Any], when: dt.datetime):
    sim["clock"]["t"] = when
    return sim["engine"].run_once(when)


def test_the_engine_posts_a_story_to_the_stand_in_as_one_thread(sim):
    root_at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    reveal = " ".join(f"Sentence {i} of how it turned out." for i in range(5))
    sim["planner"].load([story("s1", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC), one_year_later=reveal)],
                        now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    standin: RedditStandin = sim["standin"]

    assert _run(sim, root_at).count("posted") == 1
    report = _run(sim, root_at + dt.timedelta(hours=6))  # the access token has expired meanwhile

    assert report.count("posted") >= 1
    (link,) = standin.posts_by()
    comments = standin.comments_by()
    assert link["title"] == "Headline of s1"
    assert comments[0]["parent_id"] == link["name"]
    for previous, comment in zip(comments, comments[1:], strict=False):
        assert comment["parent_id"] == previous["name"]
    assert standin.early_writes == []


def test_the_engine_finds_a_submit_whose_answer_was_lost_instead_of_posting_twice(sim):
    root_at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    sim["planner"].load([story("s1", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC))],
                        now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    standin: RedditStandin = sim["standin"]
    standin.drop_next("submit")

    report = _run(sim, root_at)

    assert report.count("posted") == 1 and "found after" in report.events[-1].detail
    assert len(standin.posts_by()) == 1 and len(standin.requests_to("submit")) == 1


def test_the_engine_waits_as_long_as_reddit_says(sim):
    root_at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    sim["planner"].load([story("s1", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC))],
                        now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    standin: RedditStandin = sim["standin"]
    standin.rate_limit_next("submit", "Looks like you've been doing that a lot. Take a break for 3 minutes before "
                                      "trying again.")

    assert _run(sim, root_at).count("rate-limited") == 1
    assert _run(sim, root_at + dt.timedelta(minutes=3, seconds=59)).events == []
    assert _run(sim, root_at + dt.timedelta(minutes=4)).count("posted") == 1
    assert len(standin.posts_by()) == 1 and standin.early_writes == []
