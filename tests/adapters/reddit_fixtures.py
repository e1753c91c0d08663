"""The Reddit adapter as a target of the shared adapter contract test: praw against the stand-in."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.base import PostRef
from adapters.reddit import RedditAdapter
from bot.config import Settings, load_settings
from bot.wiring import reddit_config
from tests.standins.reddit import RedditStandin


def reddit_settings(standin: RedditStandin, base_url: str | None = None, **options: Any) -> Settings:
    """Settings that point the adapter at ``standin`` (at ``base_url``, or Reddit's own hosts for ``responses``)."""
    values = {
        "reddit_client_id": standin.client_id,
        "reddit_client_secret": standin.client_secret,
        "reddit_username": standin.username,
        "reddit_password": standin.users[standin.username],
        "reddit_subreddit": next(iter(standin.subreddits.values())).name,
        "http_timeout": "10s",
    }
    if base_url is not None:
        values.update(reddit_url=base_url, reddit_oauth_url=base_url)
    values.update({k: str(v) for k, v in options.items()})
    return load_settings(values, environ={}, env_file=None)


@dataclasses.dataclass
class RedditTarget:
    adapter: RedditAdapter
    standin: RedditStandin

    def remove(self, ref: PostRef) -> None:
        """A moderator removes the post."""
        self.standin.remove(ref.id)

    def lock(self, ref: PostRef) -> None:
        self.standin.lock(ref.id)


@pytest.fixture
def reddit_target() -> Iterator[RedditTarget]:
    standin = RedditStandin()
    base_url = standin.serve()
    try:
        yield RedditTarget(RedditAdapter(reddit_config(reddit_settings(standin, base_url))), standin)
    finally:
        standin.stop()
