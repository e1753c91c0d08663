"""What the engine did, as events for the console and ``--json`` output."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any


@dataclasses.dataclass
class Event:
    """Something the engine did, for the console and ``--json`` output."""

    action: str
    """posted, would-post, failed, retry-later, rate-limited, paused, missed, skipped, unconfirmed, reconciled"""
    delivery_id: int
    story_id: str
    platform: str
    kind: str
    part: int
    parts: int
    detail: str = ""
    at: dt.datetime | None = None
    text: str = ""
    remote_id: str | None = None
    reply_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["at"] = self.at.isoformat() if self.at else None
        return data


@dataclasses.dataclass
class RunReport:
    events: list[Event] = dataclasses.field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for e in self.events if e.action == action)

    def to_dict(self) -> dict[str, Any]:
        return {"events": [e.to_dict() for e in self.events],
                "counts": {a: self.count(a) for a in sorted({e.action for e in self.events})}}


def human(delta: dt.timedelta) -> str:
    """A duration as the engine's messages show it: ``45s``, ``12m``, ``3.5h``, ``2.0d``."""
    seconds = int(delta.total_seconds())
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 5400:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
