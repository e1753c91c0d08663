"""Who may reply on X: the root's ``reply_settings``, sent by the real adapter (tweepy) to the stand-in."""

from __future__ import annotations

import pytest

from adapters.base import Outgoing, PostRef
from posts.errors import Rejected
from posts.render import RenderOptions, render
from tests.adapters.x_fixtures import XTarget, x_target  # noqa: F401 - pytest fixture
from tests.conftest import story
from tests.replies import replying


def parts(choice: str) -> list[Outgoing]:
    rendered = render(story("s1", one_year_later="It turned out fine. " * 20), "x",
                      RenderOptions(replies={"x": choice}))
    return [Outgoing("x", "s1", p.kind, p.part, p.payload, None) for p in rendered]


@pytest.mark.parametrize(("choice", "setting"), [("followers", "following"), ("mentioned", "mentionedUsers"),
                                                 ("nobody", "mentionedUsers"), ("everyone", "everyone")])
def test_the_root_carries_its_reply_settings_and_the_authors_followup_still_replies(
        x_target: XTarget, choice: str, setting: str) -> None:  # noqa: F811
    root, *followups = parts(choice)
    ref = x_target.adapter.publish(root)
    assert x_target.standin.tweets[ref.id].reply_settings == setting
    parent = ref
    for part in followups:  # the author may always reply under its own reply settings
        parent = x_target.adapter.reply(replying(part, parent, ref))
        assert x_target.standin.tweets[parent.id].reply_settings == "everyone"
        assert x_target.standin.tweets[parent.id].reply_to is not None


@pytest.mark.parametrize("setting", ["following", "mentionedUsers"])
def test_a_gate_binds_everyone_but_its_author_so_the_same_reply_elsewhere_is_refused(
        x_target: XTarget, setting: str) -> None:  # noqa: F811
    """What makes the test above able to fail: under someone else's gated post the account's reply is
    refused (403, X's wording), and the adapter says so as a rejection, not as refused credentials."""
    theirs = x_target.standin.add_tweet("A gated post by someone else", author=ALICE)
    theirs.reply_settings = setting
    with pytest.raises(Rejected, match="not allowed because you have not been mentioned"):
        x_target.adapter.reply(Outgoing("x", "s1", "followup", 1, {"text": "A reply"}, None,
                                        _ref(theirs.id), _ref(theirs.id)))
    mine = x_target.standin.add_tweet("A gated post by the account")
    mine.reply_settings = setting
    made = x_target.adapter.reply(Outgoing("x", "s1", "followup", 1, {"text": "Its author replies"}, None,
                                           _ref(mine.id), _ref(mine.id)))
    assert x_target.standin.tweets[made.id].reply_to == mine.id


ALICE = {"id": "2244994945", "username": "alice", "name": "Alice"}


def _ref(tweet_id: str) -> PostRef:
    return PostRef("x", tweet_id, f"https://x.com/i/status/{tweet_id}", {})


def test_a_value_x_does_not_take_is_refused_before_sending_and_by_the_stand_in(x_target: XTarget) -> None:  # noqa: F811
    with pytest.raises(Rejected, match="reply_settings 'friends'"):
        x_target.adapter.publish(Outgoing("x", "s1", "root", 1, {"text": "Hello", "reply_settings": "friends"}, None))
    assert x_target.standin.tweets == {}
    x_target.adapter._reply_settings = lambda post: "friends"  # type: ignore[method-assign]
    with pytest.raises(Rejected, match="reply_settings"):  # X answers 400 to a value it does not know
        x_target.adapter.publish(Outgoing("x", "s1", "root", 1, {"text": "Hello"}, None))
    assert x_target.standin.tweets == {}
