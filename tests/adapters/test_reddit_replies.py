"""RedditAdapter.conversation: the comments under a submission, read by the real praw from the stand-in.

Reddit lets a post's author hide no comment (only a subreddit's moderators remove them), so the adapter
reads replies and hides none.
"""

from __future__ import annotations

import datetime as dt

import pytest

from adapters.base import HidesReplies, Outgoing, PostRef, ReadsReplies
from adapters.reddit import RedditAdapter
from posts.errors import RateLimited, Rejected, Transient
from tests.adapters.reddit_fixtures import RedditTarget

UTC = dt.UTC


def root() -> Outgoing:
    return Outgoing("reddit", "s1", "root", 1, {"title": "A year ago today", "selftext": "The story"}, None)


def followup(parent: PostRef, text: str = "One year later") -> Outgoing:
    return Outgoing("reddit", "s1", "followup", 1, {"text": text}, None, parent, parent)


def thread(reddit_target: RedditTarget) -> tuple[PostRef, PostRef, list[str]]:
    """A submission, the bot's follow-up and four comments by others (one nested two deep)."""
    adapter, standin = reddit_target.adapter, reddit_target.standin
    top = adapter.publish(root())
    reveal = adapter.reply(followup(top))
    base = standin.clock()
    first = standin.add_comment(f"t3_{top.id}", "First!", author="alice", created=base + 1)
    second = standin.add_comment(reveal.extra["name"], "Wow, a year", author="bob", created=base + 2)
    third = standin.add_comment(first["name"], "Replying to alice", author="carol", created=base + 3)
    standin.add_comment(first["name"], "Thanks, alice", author=standin.username, created=base + 4)  # the bot
    fourth = standin.add_comment(third["name"], "Deep down", author="alice", created=base + 5)
    return top, reveal, [first["name"], second["name"], third["name"], fourth["name"]]


def test_reddit_reads_replies_and_cannot_hide_them(reddit_target: RedditTarget):
    assert isinstance(reddit_target.adapter, ReadsReplies)
    assert not isinstance(reddit_target.adapter, HidesReplies)


def test_conversation_lists_comments_by_others_at_any_depth_newest_first(reddit_target: RedditTarget):
    top, reveal, names = thread(reddit_target)

    talk = reddit_target.adapter.conversation(top, (reveal,), limit=10)

    assert talk.total == 4  # num_comments 6, less the follow-up and the bot's own comment
    assert [r.id for r in talk.replies] == list(reversed(names))
    deep = talk.replies[0]
    assert (deep.author, deep.text, deep.parent_id) == ("u/alice", "Deep down", names[2])
    assert talk.replies[2].parent_id == reveal.extra["name"]
    assert deep.url.startswith("http://127.0.0.1:") and f"/comments/{top.id}/" in deep.url and deep.url.endswith(f"/{names[3][3:]}/")
    assert deep.at.tzinfo is not None and abs(deep.at - dt.datetime.now(UTC)) < dt.timedelta(minutes=5)
    assert talk.requests == 1
    read = reddit_target.standin.requests_to("submission")[-1]
    assert read.query["sort"] == "new" and int(read.query["limit"]) <= 500


def test_conversation_returns_at_most_limit_replies_and_counts_from_num_comments(reddit_target: RedditTarget):
    top, reveal, names = thread(reddit_target)
    talk = reddit_target.adapter.conversation(top, (reveal,), limit=2)
    assert talk.total == 4
    assert [r.id for r in talk.replies] == [names[3], names[2]]
    assert reddit_target.adapter.conversation(top, (reveal,), limit=0).replies == ()


def test_comments_beyond_one_read_still_count(reddit_target: RedditTarget, monkeypatch: pytest.MonkeyPatch):
    top, reveal, _ = thread(reddit_target)
    monkeypatch.setattr("adapters.reddit.COMMENTS_READ", 2)  # the rest come back as "load more" stubs
    talk = reddit_target.adapter.conversation(top, (reveal,), limit=10)
    assert len(talk.replies) < 4
    assert talk.total == 4


def test_removed_comments_are_counted_but_not_listed(reddit_target: RedditTarget):
    top, reveal, names = thread(reddit_target)
    reddit_target.standin.remove(names[1])
    reddit_target.standin.delete(names[3])
    talk = reddit_target.adapter.conversation(top, (reveal,), limit=10)
    assert [r.id for r in talk.replies] == [names[2], names[0]]
    assert talk.total == 4


def test_long_comments_are_capped(reddit_target: RedditTarget):
    top = reddit_target.adapter.publish(root())
    reddit_target.standin.add_comment(f"t3_{top.id}", "y" * 2500)
    assert reddit_target.adapter.conversation(top, (), limit=5).replies[0].text == "y" * 2000


def test_conversation_errors_are_translated(reddit_target: RedditTarget):
    top = reddit_target.adapter.publish(root())
    reddit_target.standin.too_many_requests_next("submission", retry_after=30)
    before = dt.datetime.now(UTC)
    with pytest.raises(RateLimited) as caught:
        reddit_target.adapter.conversation(top, (), limit=5)
    assert caught.value.retry_at is not None and caught.value.retry_at >= before + dt.timedelta(seconds=25)
    gone = PostRef("reddit", "zzzzzz", "", {"name": "t3_zzzzzz", "submission": "zzzzzz"})
    with pytest.raises(Rejected, match="gone"):
        reddit_target.adapter.conversation(gone, (), limit=5)


def test_a_fresh_adapter_counts_the_token_it_fetches(reddit_target: RedditTarget):
    top, reveal, _ = thread(reddit_target)
    fresh = RedditAdapter(reddit_target.adapter.config)
    before = len(reddit_target.standin.requests)
    assert fresh.conversation(top, (reveal,), limit=5).requests == 2 == len(reddit_target.standin.requests) - before
    assert [r.route for r in reddit_target.standin.requests[before:]] == ["access_token", "submission"]
    assert fresh.conversation(top, (reveal,), limit=5).requests == 1


def test_a_failing_read_is_sent_once(reddit_target: RedditTarget):
    """prawcore would send a GET up to three times on a 5xx; the sweep counts one request a read."""
    top = reddit_target.adapter.publish(root())
    reddit_target.standin.fail_next("submission", status=503, count=3)
    with pytest.raises(Transient):
        reddit_target.adapter.conversation(top, (), limit=5)
    assert len(reddit_target.standin.requests_to("submission")) == 1
