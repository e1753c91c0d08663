"""XAdapter.conversation and hide_reply: the real tweepy against a recorded exchange (hide and unhide a reply)
and against the stand-in's recent search and hidden-reply routes."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
import yaml

from adapters.base import HidesReplies, Outgoing, PostRef, ReadsReplies
from adapters.x import TWEEPY_HOST, XAdapter
from bot.wiring import x_config
from posts.errors import AuthFailed, RateLimited, Rejected, Transient
from tests.adapters.x_fixtures import CREDENTIALS, x_settings
from tests.standins.x import ME, XStandin

DATA = Path(__file__).resolve().parents[1] / "data" / "x"
UTC = dt.UTC
ALICE = {"id": "2244994945", "username": "alice", "name": "Alice"}
BOB = {"id": "783214", "username": "bob", "name": "Bob"}
SEARCH = "GET /2/tweets/search/recent"
HIDDEN = "PUT /2/tweets/:id/hidden"


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def standin(mock: responses.RequestsMock) -> XStandin:
    server = XStandin(credentials=CREDENTIALS)
    server.install(mock)
    return server


@pytest.fixture
def adapter(tmp_path: Path, standin: XStandin) -> XAdapter:
    return XAdapter(x_config(x_settings(tmp_path)))


def root() -> Outgoing:
    return Outgoing("x", "s1", "root", 1, {"text": "A year ago today"}, None)


def followup(parent: PostRef) -> Outgoing:
    return Outgoing("x", "s1", "followup", 1, {"text": "One year later"}, None, parent, parent)


def thread(adapter: XAdapter, standin: XStandin) -> tuple[PostRef, PostRef, list[str]]:
    """The bot's root and follow-up; three replies by others (one to a reply), one by the bot, one too old."""
    top = adapter.publish(root())
    reveal = adapter.reply(followup(top))
    now = time.time()
    first = standin.add_tweet("@TweepyDev first & best", reply_to=top.id, author=ALICE, at=now - 30)
    second = standin.add_tweet("@TweepyDev wow", reply_to=reveal.id, author=BOB, at=now - 20)
    standin.add_tweet("@alice thanks", reply_to=first.id, at=now - 15)  # the bot's account, by hand
    third = standin.add_tweet("@alice agreed", reply_to=first.id, author=BOB, at=now - 10)
    return top, reveal, [first.id, second.id, third.id]


def test_x_reads_and_hides_replies(adapter: XAdapter):
    assert isinstance(adapter, ReadsReplies) and isinstance(adapter, HidesReplies)


# ---------------------------------------------------------------------------- recorded exchange


def test_hiding_and_showing_again_replays_the_recorded_exchange(tmp_path: Path, mock: responses.RequestsMock):
    interactions = yaml.safe_load((DATA / "test_client_hide_and_unhide_reply.yaml").read_text())["interactions"]
    for interaction in interactions:
        recorded = interaction["response"]
        headers = {name: ", ".join(values) for name, values in recorded["headers"].items()}
        mock.add(interaction["request"]["method"], interaction["request"]["uri"], status=recorded["status"]["code"],
                 body=recorded["body"]["string"], content_type=headers.pop("content-type"), headers=headers)
    adapter = XAdapter(x_config(x_settings(tmp_path)))
    top = PostRef("x", "1344794000000000000", "")

    adapter.hide_reply(top, "1344794616005066752")
    adapter.hide_reply(top, "1344794616005066752", hidden=False)

    sent = [call.request for call in mock.calls]
    assert [(r.method, r.url) for r in sent] == [("PUT", f"{TWEEPY_HOST}/2/tweets/1344794616005066752/hidden")] * 2
    assert [json.loads(r.body) for r in sent] == [json.loads(i["request"]["body"]) for i in interactions]
    assert all(r.headers["Authorization"].startswith("OAuth ") for r in sent)


def test_an_unconfirmed_hide_is_not_taken_for_done(tmp_path: Path, mock: responses.RequestsMock):
    mock.add("PUT", f"{TWEEPY_HOST}/2/tweets/1344794616005066752/hidden", json={"data": {"hidden": False}})
    adapter = XAdapter(x_config(x_settings(tmp_path)))
    with pytest.raises(Transient, match="did not confirm"):
        adapter.hide_reply(PostRef("x", "1", ""), "1344794616005066752")


# ---------------------------------------------------------------------------- the stand-in


def test_conversation_lists_replies_by_others_newest_first(adapter: XAdapter, standin: XStandin):
    top, reveal, (first, second, third) = thread(adapter, standin)
    standin.add_tweet("@TweepyDev from last month", reply_to=top.id, author=ALICE, at=time.time() - 8 * 86400)

    talk = adapter.conversation(top, (reveal,), limit=10)

    assert talk.total == 3  # not the follow-up, the bot's own answer, nor the reply older than 7 days
    assert [r.id for r in talk.replies] == [third, second, first]
    newest = talk.replies[0]
    assert (newest.author, newest.text, newest.parent_id) == ("@bob", "@alice agreed", first)
    assert newest.url == f"https://x.com/bob/status/{third}"
    assert talk.replies[2].text == "@TweepyDev first & best"  # X sends "&amp;"
    assert talk.replies[1].parent_id == reveal.id
    assert abs(newest.at - dt.datetime.now(UTC)) < dt.timedelta(minutes=5) and newest.at.tzinfo is not None
    [search] = [seen for seen in standin.requests if seen.route == SEARCH]
    assert search.query["query"] == f"conversation_id:{top.id}"
    assert search.query["expansions"] == "author_id" and search.query["max_results"] == "100"
    assert set(search.query["tweet.fields"].split(",")) >= {"author_id", "created_at", "referenced_tweets"}
    assert talk.requests == 1  # the account was known from the publish


def test_conversation_returns_at_most_limit_and_pages_through_the_rest(adapter: XAdapter, standin: XStandin):
    top = adapter.publish(root())
    base = time.time() - 3600
    ids = [standin.add_tweet(f"@TweepyDev reply {n}", reply_to=top.id, author=ALICE, at=base + n).id
           for n in range(130)]

    talk = adapter.conversation(top, (), limit=5)

    assert talk.total == 130 and talk.requests == 2  # two pages of search
    assert [r.id for r in talk.replies] == list(reversed(ids))[:5]
    assert adapter.conversation(top, (), limit=0).replies == ()


def test_a_fresh_adapter_counts_the_account_lookup(tmp_path: Path, adapter: XAdapter, standin: XStandin):
    top = adapter.publish(root())
    fresh = XAdapter(x_config(x_settings(tmp_path)))
    assert fresh.conversation(top, (), limit=5).requests == 2


def test_reply_text_is_capped(adapter: XAdapter, standin: XStandin):
    top = adapter.publish(root())
    standin.add_tweet("z" * 2500, reply_to=top.id, author=ALICE)
    assert adapter.conversation(top, (), limit=5).replies[0].text == "z" * 2000


def test_search_answers_carry_the_documented_rate_limit(adapter: XAdapter, standin: XStandin):
    top = adapter.publish(root())
    adapter.conversation(top, (), limit=5)
    assert adapter.session.last_headers["x-rate-limit-limit"] == "300"


def test_a_rate_limited_search_is_rate_limited_until_the_reset(adapter: XAdapter, standin: XStandin):
    top = adapter.publish(root())
    reset = int(time.time()) + 600
    standin.rate_limit_next(SEARCH, reset=reset)
    with pytest.raises(RateLimited) as caught:
        adapter.conversation(top, (), limit=5)
    assert caught.value.retry_at == dt.datetime.fromtimestamp(reset, UTC)


def test_hide_and_show_again_on_the_standin(adapter: XAdapter, standin: XStandin):
    top, reveal, (first, _second, _third) = thread(adapter, standin)

    adapter.hide_reply(top, first)
    assert standin.tweets[first].hidden is True
    adapter.hide_reply(top, first)  # again: no harm
    adapter.hide_reply(top, first, hidden=False)
    assert standin.tweets[first].hidden is False
    puts = [seen for seen in standin.requests if seen.route == HIDDEN]
    assert [seen.json for seen in puts] == [{"hidden": True}, {"hidden": True}, {"hidden": False}]


def test_hiding_what_cannot_be_hidden_is_rejected(adapter: XAdapter, standin: XStandin):
    top, reveal, _ = thread(adapter, standin)
    other = standin.add_tweet("Someone else's thread", author=ALICE)
    theirs = standin.add_tweet("@alice a reply there", reply_to=other.id, author=BOB)
    with pytest.raises(Rejected, match="own conversations"):
        adapter.hide_reply(top, theirs.id)
    with pytest.raises(Rejected):
        adapter.hide_reply(top, reveal.id)  # the bot's own follow-up
    with pytest.raises(Rejected):
        adapter.hide_reply(top, "999")
    with pytest.raises(Rejected, match="not an X post id"):
        adapter.hide_reply(top, "at://did:plc:x/app.bsky.feed.post/3abc")


def test_hide_errors_are_translated(adapter: XAdapter, standin: XStandin):
    top, _reveal, (first, _, _) = thread(adapter, standin)
    reset = int(time.time()) + 300
    standin.rate_limit_next(HIDDEN, reset=reset)
    with pytest.raises(RateLimited) as caught:
        adapter.hide_reply(top, first)
    assert caught.value.retry_at == dt.datetime.fromtimestamp(reset, UTC)
    body: dict[str, Any] = {"title": "Forbidden", "type": "https://api.twitter.com/2/problems/oauth1-permissions",
                            "status": 403, "detail": "Your client app is not configured with the appropriate "
                                                     "oauth1 app permissions for this endpoint."}
    standin.fail_next(HIDDEN, 403, body)
    with pytest.raises(AuthFailed):
        adapter.hide_reply(top, first)
    standin.fail_next(HIDDEN, 503)
    with pytest.raises(Transient):  # doing it again is harmless: never OutcomeUnknown
        adapter.hide_reply(top, first)
    assert standin.tweets[first].hidden is False
    assert ME["id"] == standin.tweets[top.id].author_id
