"""The in-memory fake platform finds posts the way X and Reddit do: by what they say, where they were
posted and when, never by our own key, so the engine tests meet the harder platform."""

from __future__ import annotations

import datetime as dt

from adapters.base import Outgoing, PostRef, ThreadState
from adapters.fake import FakeAdapter, FakeConfig

T = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)


def post(text: str, key: str, *, kind: str = "root", parent: PostRef | None = None) -> Outgoing:
    return Outgoing("x", "s1", kind, 1, {"text": text}, key, parent=parent, root=parent)


def test_a_post_is_found_by_its_content_whatever_key_it_was_sent_under() -> None:
    fake = FakeAdapter(FakeConfig("x"), clock=lambda: T)
    ref = fake.publish(post("One year ago today", "first-key"))
    assert fake.find(post("One year ago today", "another-key"), since=T) == ref
    assert fake.find(post("Something else", "first-key"), since=T) is None


def test_two_posts_that_say_the_same_are_one_to_the_lookup_and_the_earliest_is_found() -> None:
    now = {"t": T}
    fake = FakeAdapter(FakeConfig("x"), clock=lambda: now["t"])
    first = fake.publish(post("Same words", "k1"))
    now["t"] = T + dt.timedelta(minutes=1)
    fake.publish(post("Same words", "k2"))
    assert fake.find(post("Same words", "k2"), since=T) == first


def test_only_posts_since_the_given_time_are_looked_at() -> None:
    now = {"t": T}
    fake = FakeAdapter(FakeConfig("x"), clock=lambda: now["t"])
    old = fake.publish(post("Said before", "k1"))
    now["t"] = T + dt.timedelta(hours=1)
    assert fake.find(post("Said before", "k2"), since=T + dt.timedelta(minutes=30)) is None
    assert fake.find(post("Said before", "k2"), since=T) == old


def test_a_reply_is_found_only_under_its_own_parent_and_a_root_only_as_a_root() -> None:
    fake = FakeAdapter(FakeConfig("x"), clock=lambda: T)
    root_a = fake.publish(post("Root A", "ra"))
    root_b = fake.publish(post("Root B", "rb"))
    reply = fake.reply(post("It turned out fine.", "fa", kind="followup", parent=root_a))
    assert fake.find(post("It turned out fine.", "x1", kind="followup", parent=root_a), since=T) == reply
    assert fake.find(post("It turned out fine.", "x2", kind="followup", parent=root_b), since=T) is None
    assert fake.find(post("It turned out fine.", "x3", kind="root"), since=T) is None
    # a follow-up given without its parent is matched on its content alone, as X does
    assert fake.find(post("It turned out fine.", "x4", kind="followup"), since=T) == reply


def test_a_deleted_post_is_not_found() -> None:
    fake = FakeAdapter(FakeConfig("x"), clock=lambda: T)
    ref = fake.publish(post("Soon gone", "k1"))
    fake.states[ref.id] = ThreadState.GONE
    assert fake.find(post("Soon gone", "k1"), since=T) is None
