"""The delivery engine: decides what is due, commits the intent, calls the platform, records it.

:class:`Engine` (in :mod:`bot.engine.engine`) ties together the parts, one module per job; see there.
"""

from bot.engine.engine import HOUSEKEEPING, Engine
from bot.engine.events import Event, RunReport
from bot.engine.settle import LOOKUPS

__all__ = ["HOUSEKEEPING", "LOOKUPS", "Engine", "Event", "RunReport"]
