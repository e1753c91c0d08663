"""Who may reply on X: the root's ``reply_settings``, sent by the real adapter (tweepy) to the stand-in."""

from __future__ import annotations

import pytest

from adapters.base import Outgoing
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


def test_a_value_x_does_not_take_is_refused_before_sending_and_by_the_stand_in(x_target: XTarget) -> None:  # noqa: F811
    with pytest.raises(Rejected, match="reply_settings 'friends'"):
        x_target.adapter.publish(Outgoing("x", "s1", "root", 1, {"text": "Hello", "reply_settings": "friends"}, None))
    assert x_target.standin.tweets == {}
    x_target.adapter._reply_settings = lambda post: "friends"  # type: ignore[method-assign]
    with pytest.raises(Rejected, match="reply_settings"):  # X answers 400 to a value it does not know
        x_target.adapter.publish(Outgoing("x", "s1", "root", 1, {"text": "Hello"}, None))
    assert x_target.standin.tweets == {}
