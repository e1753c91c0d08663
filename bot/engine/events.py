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
