"""The fake adapter is built from its own small configuration, like every adapter."""

from __future__ import annotations

from adapters.base import Outgoing
from adapters.fake import FakeAdapter, FakeConfig


def test_the_fake_is_built_from_its_own_config_alone():
    fake = FakeAdapter(FakeConfig("bluesky"))
    ref = fake.publish(Outgoing("bluesky", "s1", "root", 1, {"text": "hello"}, "3kabc"))
    assert fake.platform == "bluesky" and ref.platform == "bluesky"
    assert fake.find(Outgoing("bluesky", "s1", "root", 1, {"text": "hello"}, "3kabc")) == ref
    assert FakeAdapter().platform == "x"
