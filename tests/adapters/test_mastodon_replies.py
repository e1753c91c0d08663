"""MastodonAdapter.conversation: the replies under a thread, read with the real Mastodon.py from ``mastodon-mock``.

The stand-in's ``/api/v1/statuses/:id/context`` answers the ``descendants`` of a status at any depth, newest
and oldest as real Mastodon does for an authenticated client (``../shared/reference/mastodon.md``, "Local
stand-in": "correct ancestors / descendants for a self-thread plus another account's reply").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from adapters.base import HidesReplies, Outgoing, PostRef, ReadsReplies
from posts.errors import RateLimited, Transient
from tests.adapters.mastodon_fixtures import (  # noqa: F401
    MastodonTarget,
    mastodon_mock,
    mastodon_server,
    mastodon_target,
)
from tests.standins.mastodon import OTHER, OTHER_TOKEN, TOKEN

pytestmark = pytest.mark.mastodon
UTC = dt.UTC


def root(text: str) -> Outgoing:
    return Outgoing("mastodon", "s1", "root", 1, {"status": text, "language": "en"}, f"key-{text}")


def followup(text: str, parent: PostRef) -> Outgoing:
    return Outgoing("mastodon", "s1", "followup", 1, {"status": text, "language": "en"}, f"key-{text}", parent,
                    parent)


def thread(target: MastodonTarget) -> tuple[PostRef, PostRef, list[dict[str, Any]]]:
    """A root and the bot's follow-up; three replies by someone else (one to a reply) and one by the bot."""
    adapter, server = target.adapter, target.server
    top = adapter.publish(root("The story"))
    reveal = adapter.reply(followup("One year later", top))
    first = server.post_as(OTHER_TOKEN, "<b>First</b> & best", in_reply_to_id=top.id)
    second = server.post_as(OTHER_TOKEN, "On the reveal", in_reply_to_id=reveal.id)
    server.post_as(TOKEN, "Thanks!", in_reply_to_id=first["id"])  # the bot's account answering by hand
    third = server.post_as(OTHER_TOKEN, "Replying to myself", in_reply_to_id=first["id"])
    return top, reveal, [first, second, third]


def test_mastodon_reads_replies_and_cannot_hide_them(mastodon_target: MastodonTarget):  # noqa: F811
    assert isinstance(mastodon_target.adapter, ReadsReplies)
    assert not isinstance(mastodon_target.adapter, HidesReplies)


def test_conversation_lists_replies_by_others_at_any_depth_newest_first(mastodon_target: MastodonTarget):  # noqa: F811
    top, reveal, (first, second, third) = thread(mastodon_target)

    talk = mastodon_target.adapter.conversation(top, (reveal,), limit=10)

    assert talk.total == 3  # the bot's follow-up and its hand-written answer are not counted
    assert [r.id for r in talk.replies] == [third["id"], second["id"], first["id"]]
    host = mastodon_target.server.url.split("://", 1)[1]
    newest = talk.replies[0]
    assert newest.author == f"@{OTHER}@{host}"
    assert newest.parent_id == first["id"]
    assert talk.replies[1].parent_id == reveal.id
    assert talk.replies[2].text == "<b>First</b> & best"  # the HTML content reduced to its text
    assert newest.url == third["url"]
    assert newest.at.tzinfo is not None and abs(newest.at - dt.datetime.now(UTC)) < dt.timedelta(minutes=5)
    assert newest.hidden is False


def test_conversation_returns_at_most_limit_replies_but_counts_them_all(mastodon_target: MastodonTarget):  # noqa: F811
    top, reveal, (_first, second, third) = thread(mastodon_target)

    talk = mastodon_target.adapter.conversation(top, (reveal,), limit=2)
    assert talk.total == 3
    assert [r.id for r in talk.replies] == [third["id"], second["id"]]
    assert mastodon_target.adapter.conversation(top, (reveal,), limit=0).replies == ()


def test_conversation_counts_its_requests(mastodon_target: MastodonTarget):  # noqa: F811
    top, reveal, _ = thread(mastodon_target)
    fresh = type(mastodon_target.adapter)(mastodon_target.adapter.config)
    assert fresh.conversation(top, (reveal,), limit=5).requests == 2  # who the account is, then the context
    assert fresh.conversation(top, (reveal,), limit=5).requests == 1


def test_conversation_of_a_thread_without_replies(mastodon_target: MastodonTarget):  # noqa: F811
    top = mastodon_target.adapter.publish(root("Nobody answered"))
    talk = mastodon_target.adapter.conversation(top, (), limit=5)
    assert (talk.total, talk.replies) == (0, ())


def test_reply_text_is_capped(mastodon_target: MastodonTarget, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    top = mastodon_target.adapter.publish(root("Long answers"))
    mastodon_target.server.post_as(OTHER_TOKEN, "x" * 40, in_reply_to_id=top.id)
    monkeypatch.setattr("adapters.mastodon.REPLY_TEXT_LIMIT", 25)
    assert mastodon_target.adapter.conversation(top, (), limit=5).replies[0].text == "x" * 25


def test_conversation_errors_are_translated(mastodon_target: MastodonTarget):  # noqa: F811
    adapter, server = mastodon_target.adapter, mastodon_target.server
    top = adapter.publish(root("Busy server"))
    adapter.whoami()
    server.fault(f"/api/v1/statuses/{top.id}/context", {"type": "status", "status": 503}, methods=("GET",))
    with pytest.raises(Transient):
        adapter.conversation(top, (), limit=5)
    server.fault(f"/api/v1/statuses/{top.id}/context", {"type": "ratelimit"}, methods=("GET",))
    before = dt.datetime.now(UTC)
    with pytest.raises(RateLimited) as caught:
        adapter.conversation(top, (), limit=5)
    assert caught.value.retry_at is not None and caught.value.retry_at > before
