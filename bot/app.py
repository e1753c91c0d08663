"""Wire the parts together from a Settings object: store, adapters, engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from adapters.base import Adapter
from adapters.sandbox import SandboxAdapter
from bot.config import Settings
from bot.engine import Engine
from bot.errors import ConfigError
from bot.store import Store, utcnow


def open_store(settings: Settings) -> Store:
    return Store(settings.database_url)


def build_adapters(settings: Settings, *, clock: Callable[[], dt.datetime] = utcnow,
                   show: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Adapter]:
    """One adapter per enabled platform: the sandbox in sandbox mode, the real one when live."""
    if settings.mode == "sandbox":
        return {p: SandboxAdapter(p, settings.transcript_path, clock=clock, show=show,
                                  latency=settings.sandbox_latency) for p in settings.platforms}
    raise ConfigError("ONEYEARAGO_MODE=live: live platform adapters are not available in this version; "
                      "use ONEYEARAGO_MODE=sandbox")


def build_engine(settings: Settings, store: Store, *, clock: Callable[[], dt.datetime] = utcnow,
                 show: Callable[[dict[str, Any]], None] | None = None, **kwargs: Any) -> Engine:
    return Engine(store, build_adapters(settings, clock=clock, show=show), settings, clock=clock, **kwargs)
