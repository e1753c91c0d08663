"""Wire the parts together from a Settings object: store, adapters, engine."""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from typing import Any

from adapters.base import Adapter
from adapters.sandbox import SandboxAdapter
from bot.config import SPEC_BY_NAME, Settings
from bot.engine import Engine
from bot.store import Store
from posts.clock import utcnow
from posts.errors import ConfigError


def open_store(settings: Settings) -> Store:
    return Store(settings.database_url)


LIVE_ADAPTERS = {"x": "adapters.x:XAdapter", "reddit": "adapters.reddit:RedditAdapter",
                 "bluesky": "adapters.bluesky:BlueskyAdapter"}
"""Where each platform's live adapter lives; imported only when that platform is used live."""


def live_adapter_class(platform: str) -> Any:
    module, name = LIVE_ADAPTERS[platform].split(":")
    return getattr(importlib.import_module(module), name)


def missing_settings(settings: Settings, platform: str) -> list[str]:
    """The environment variables a live platform still needs."""
    cls = live_adapter_class(platform)
    return [SPEC_BY_NAME[name].env for name in cls.REQUIRED if not getattr(settings, name)]


def build_adapters(settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow,
                   show: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Adapter]:
    """One adapter per enabled platform: the sandbox in sandbox mode, the real one when live.

    Raises:
        ConfigError: in live mode, naming every missing variable of every enabled platform.
    """
    if settings.mode == "sandbox":
        return {p: SandboxAdapter(p, settings.transcript_path, clock=clock, show=show,
                                  latency=settings.sandbox_latency) for p in settings.platforms}
    missing = {p: missing_settings(settings, p) for p in settings.platforms}
    problems = [f"{p}: set {', '.join(names)}" for p, names in missing.items() if names]
    if problems:
        raise ConfigError("live mode needs credentials that are not set (" + "; ".join(problems) + "); see "
                          ".env.example for where to get each, or leave the platform out of ONEYEARAGO_PLATFORMS")
    return {p: live_adapter_class(p)(settings, clock=clock) for p in settings.platforms}


def build_engine(settings: Settings, store: Store, *, clock: Callable[[], dt.datetime] = utcnow,
                 show: Callable[[dict[str, Any]], None] | None = None, **kwargs: Any) -> Engine:
    return Engine(store, build_adapters(settings, clock=clock, show=show), settings, clock=clock, **kwargs)
