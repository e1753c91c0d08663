"""Wire the parts together from a Settings object: store, adapters, engine.

The one module that turns the settings into each adapter's own configuration
(:class:`~adapters.x.XConfig`, :class:`~adapters.reddit.RedditConfig`,
:class:`~adapters.bluesky.BlueskyConfig`, :class:`~adapters.mastodon.MastodonConfig`,
:class:`~adapters.sandbox.SandboxConfig`), and that
knows which settings (and so which environment variables) each live platform needs.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from adapters.base import Adapter
from adapters.sandbox import SandboxAdapter, SandboxConfig
from bot import __version__
from bot.config import SPEC_BY_NAME, Settings
from bot.engine import Engine
from bot.store import Store
from posts.clock import utcnow
from posts.errors import ConfigError

if TYPE_CHECKING:
    from adapters.bluesky import BlueskyConfig
    from adapters.mastodon import MastodonConfig
    from adapters.reddit import RedditConfig
    from adapters.x import XConfig


def open_store(settings: Settings) -> Store:
    return Store(settings.database_url)


LIVE_ADAPTERS = {"x": "adapters.x:XAdapter", "reddit": "adapters.reddit:RedditAdapter",
                 "bluesky": "adapters.bluesky:BlueskyAdapter", "mastodon": "adapters.mastodon:MastodonAdapter"}
"""Where each platform's live adapter lives; imported only when that platform is used live."""

REQUIRED: dict[str, tuple[str, ...]] = {
    "x": ("x_consumer_key", "x_consumer_secret", "x_access_token", "x_access_token_secret"),
    "reddit": ("reddit_client_id", "reddit_client_secret", "reddit_username", "reddit_password",
               "reddit_subreddit"),
    "bluesky": ("bluesky_handle", "bluesky_app_password"),
    "mastodon": ("mastodon_api_base_url", "mastodon_access_token"),
}
"""The settings each live platform cannot do without."""


def live_adapter_class(platform: str) -> Any:
    module, name = LIVE_ADAPTERS[platform].split(":")
    return getattr(importlib.import_module(module), name)


def missing_settings(settings: Settings, platform: str) -> list[str]:
    """The environment variables a live platform still needs."""
    return [SPEC_BY_NAME[name].env for name in REQUIRED[platform] if not getattr(settings, name)]


def x_config(settings: Settings) -> XConfig:
    from adapters.x import XConfig

    return XConfig(consumer_key=settings.x_consumer_key, consumer_secret=settings.x_consumer_secret,
                   access_token=settings.x_access_token, access_token_secret=settings.x_access_token_secret,
                   api_url=settings.x_api_url, timeout=settings.http_timeout, secrets=tuple(settings.secrets()))


def reddit_config(settings: Settings) -> RedditConfig:
    from adapters.reddit import RedditConfig

    return RedditConfig(client_id=settings.reddit_client_id, client_secret=settings.reddit_client_secret,
                        username=settings.reddit_username, password=settings.reddit_password,
                        subreddit=settings.reddit_subreddit, version=__version__,
                        user_agent=settings.reddit_user_agent, flair_id=settings.reddit_flair_id,
                        images=settings.reddit_images,
                        url=settings.reddit_url, oauth_url=settings.reddit_oauth_url,
                        timeout=settings.http_timeout, secrets=tuple(settings.secrets()))


def bluesky_config(settings: Settings) -> BlueskyConfig:
    from adapters.bluesky import BlueskyConfig

    return BlueskyConfig(handle=settings.bluesky_handle, app_password=settings.bluesky_app_password,
                         session_path=settings.bluesky_session_path, pds_url=settings.bluesky_pds_url,
                         timeout=settings.http_timeout, secrets=tuple(settings.secrets()))


def mastodon_config(settings: Settings) -> MastodonConfig:
    from adapters.mastodon import MastodonConfig

    return MastodonConfig(api_base_url=settings.mastodon_api_base_url, access_token=settings.mastodon_access_token,
                          visibility=settings.mastodon_visibility, timeout=settings.http_timeout,
                          user_agent=f"oneyearago/{__version__}", secrets=tuple(settings.secrets()))


LIVE_CONFIGS: dict[str, Callable[[Settings], Any]] = {"x": x_config, "reddit": reddit_config,
                                                      "bluesky": bluesky_config, "mastodon": mastodon_config}


def sandbox_config(settings: Settings, platform: str) -> SandboxConfig:
    return SandboxConfig(platform, settings.transcript_path, latency=settings.sandbox_latency)


def live_adapter(settings: Settings, platform: str, **kwargs: Any) -> Any:
    """The live adapter of ``platform``, built from its configuration (``kwargs`` go to its constructor).

    Raises:
        ConfigError: naming the environment variables the platform still needs.
    """
    missing = missing_settings(settings, platform)
    if missing:
        raise ConfigError(f"{platform}: set {', '.join(missing)} (see .env.example)")
    return live_adapter_class(platform)(LIVE_CONFIGS[platform](settings), **kwargs)


def adapter_for(settings: Settings, platform: str, *, clock: Callable[[], dt.datetime] = utcnow) -> Any:
    """The adapter of one platform, as :func:`build_adapters` makes it (the dashboard's actions on a platform:
    hiding a reply). Raises :class:`ConfigError` when a live platform's credentials are not set."""
    if settings.mode == "sandbox":
        return SandboxAdapter(sandbox_config(settings, platform), clock=clock)
    return live_adapter(settings, platform, clock=clock)


def build_adapters(settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow,
                   show: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Adapter]:
    """One adapter per enabled platform: the sandbox in sandbox mode, the real one when live.

    Raises:
        ConfigError: in live mode, naming every missing variable of every enabled platform.
    """
    if settings.mode == "sandbox":
        return {p: SandboxAdapter(sandbox_config(settings, p), clock=clock, show=show) for p in settings.platforms}
    missing = {p: missing_settings(settings, p) for p in settings.platforms}
    problems = [f"{p}: set {', '.join(names)}" for p, names in missing.items() if names]
    if problems:
        raise ConfigError("live mode needs credentials that are not set (" + "; ".join(problems) + "); see "
                          ".env.example for where to get each, or leave the platform out of ONEYEARAGO_PLATFORMS")
    return {p: live_adapter(settings, p, clock=clock) for p in settings.platforms}


SHARED_BETWEEN_THREADS = frozenset({"bluesky"})
"""Live platforms whose one adapter serves the posting and the reading threads alike: Bluesky's guards its
session with a lock, and a second adapter would refresh the same session, whose refresh token is good once."""


def reading_adapters(settings: Settings, posting: Mapping[str, Adapter], *,
                     clock: Callable[[], dt.datetime] = utcnow) -> dict[str, Adapter]:
    """The adapters the conversation sweep reads with, from a thread of its own while the engine posts.

    praw says it is not thread-safe, and tweepy's and Mastodon.py's clients keep per-client state (a
    session, the rate-limit figures last seen): live X, Reddit and Mastodon get an adapter of their own for
    reading. Bluesky's is shared (:data:`SHARED_BETWEEN_THREADS`); the sandbox's are shared (they only
    append to the transcript, under its lock).
    """
    if settings.mode != "live":
        return dict(posting)
    return {p: a if p in SHARED_BETWEEN_THREADS else live_adapter(settings, p, clock=clock)
            for p, a in posting.items()}


def build_engine(settings: Settings, store: Store, *, clock: Callable[[], dt.datetime] = utcnow,
                 show: Callable[[dict[str, Any]], None] | None = None, **kwargs: Any) -> Engine:
    return Engine(store, build_adapters(settings, clock=clock, show=show), settings, clock=clock, **kwargs)
