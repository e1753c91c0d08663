"""Quotas seen by day: posts per platform per day, the busiest 15 minutes, and X's cost estimate."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.models import DeliveryRow
from bot.models import Status as S
from posts.twitter_text import url_spans


@dataclasses.dataclass
class DayCount:
    """How many posts one platform makes on one (bot-local) day, against its quotas."""

    day: str
    platform: str
    posts: int
    quota_24h: int
    busiest_15m: int
    quota_15m: int
    cost_usd: float | None = None

    @property
    def over(self) -> list[str]:
        reasons = []
        if self.quota_24h and self.posts > self.quota_24h:
            reasons.append(f"{self.posts} posts > {self.quota_24h} a day")
        if self.quota_15m and self.busiest_15m > self.quota_15m:
            reasons.append(f"{self.busiest_15m} posts in 15 minutes > {self.quota_15m}")
        return reasons

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["over_quota"] = self.over
        return data


def day_counts(rows: list[DeliveryRow], settings: Settings) -> list[DayCount]:
    """Posts per platform per day (in the bot's time zone), the busiest 15 minutes, and X's cost.

    Skipped, failed and missed deliveries are not counted: they do not post.
    """
    zone = ZoneInfo(settings.timezone)
    groups: dict[tuple[str, str], list[DeliveryRow]] = defaultdict(list)
    for row in rows:
        if row.status in (S.SKIPPED.value, S.FAILED.value, S.MISSED.value):
            continue
        when = row.posted_at or row.due_at
        groups[(when.astimezone(zone).date().isoformat(), row.platform)].append(row)
    result = []
    for (day, platform), items in sorted(groups.items()):
        times = sorted((r.posted_at or r.due_at) for r in items)
        busiest, start = 0, 0
        for end, when in enumerate(times):
            while when - times[start] >= dt.timedelta(minutes=15):
                start += 1
            busiest = max(busiest, end - start + 1)
        cost = None
        if platform == "x":
            cost = round(sum(settings.x_price_post_link if url_spans(r.text) else settings.x_price_post
                             for r in items), 3)
        result.append(DayCount(day, platform, len(items), getattr(settings, f"quota_{platform}_24h"), busiest,
                               getattr(settings, f"quota_{platform}_15m"), cost))
    return result
