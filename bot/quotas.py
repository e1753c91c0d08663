"""Quotas seen by day, as the engine counts them: rolling windows, not calendar days.

The engine holds a post back when the posts of the last 24 hours (or 15 minutes), counted back from
the moment it would go out, already reach the platform's quota (:func:`bot.engine.holds.hold_for`).
Every view ahead of time (``load``'s warnings, ``agenda`` and ``agenda --days``, the dashboard's
calendar) asks the same question here: a day is over a quota when a window ending at one of its posts
holds more posts than the quota allows, counting the posts before the day too. Two posts late on one
day and two early the next are four posts in 24 hours, whatever the calendar says.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Container, Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.models import POSTING, DeliveryRow
from posts.twitter_text import url_spans

DAY = dt.timedelta(hours=24)
QUARTER = dt.timedelta(minutes=15)


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
    busiest_24h: int = 0
    """The most posts in 24 hours ending at a post of the day (the day before counts too)."""

    @property
    def over(self) -> list[str]:
        reasons = []
        if self.quota_24h and self.busiest_24h > self.quota_24h:
            within = "" if self.busiest_24h == self.posts else " within 24 hours"
            reasons.append(f"{self.busiest_24h} posts{within} > {self.quota_24h} a day")
        if self.quota_15m and self.busiest_15m > self.quota_15m:
            reasons.append(f"{self.busiest_15m} posts in 15 minutes > {self.quota_15m}")
        return reasons

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["over_quota"] = self.over
        return data


def busiest(times: Sequence[float], window: float, start: float, end: float) -> int:
    """The most posts in a window of ``window`` seconds ending at a post in ``[start, end)``.

    ``times``: POSIX times of every post that may count, sorted. A window ending at a post holds the
    posts after ``time - window`` up to that post, as the engine counts before sending it.
    """
    most = 0
    for i in range(bisect.bisect_left(times, start), bisect.bisect_left(times, end)):
        most = max(most, i + 1 - bisect.bisect_right(times, times[i] - window))
    return most


def day_count(day: dt.date, platform: str, times: Sequence[float], start: float, end: float, links: int,
              settings: Settings) -> DayCount:
    """The posts of one day (``[start, end)``) on ``platform`` against its quotas.

    ``times``: sorted POSIX times of the platform's posts on that day and at least the day before;
    ``links``: how many of the day's X posts have a link (X's price differs).
    """
    posts = bisect.bisect_left(times, end) - bisect.bisect_left(times, start)
    limits = dict(settings.quotas(platform))
    cost = None
    if platform == "x":
        cost = round(links * settings.x_price_post_link + (posts - links) * settings.x_price_post, 3)
    return DayCount(day.isoformat(), platform, posts, limits.get(DAY, 0),
                    busiest(times, QUARTER.total_seconds(), start, end), limits.get(QUARTER, 0), cost,
                    busiest(times, DAY.total_seconds(), start, end))


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The UTC time at which ``day`` starts in ``zone``."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def day_counts(rows: Iterable[DeliveryRow], settings: Settings, *,
               days: Container[str] | None = None) -> list[DayCount]:
    """Posts per platform per day (in the bot's time zone) against the quotas, and X's cost.

    Every row counts in the windows; only the days in ``days`` (``YYYY-MM-DD``, default: every day with
    a post) are reported, so rows of the day before a period make its first day's windows whole.
    Skipped, failed and missed deliveries are not counted: they do not post.
    """
    zone = ZoneInfo(settings.timezone)
    times: dict[str, list[float]] = defaultdict(list)
    links: dict[tuple[dt.date, str], int] = defaultdict(int)
    for row in rows:
        if row.status not in POSTING:
            continue
        when = row.posted_at or row.due_at
        times[row.platform].append(when.timestamp())
        if row.platform == "x" and url_spans(row.text):
            links[(when.astimezone(zone).date(), row.platform)] += 1
    result = []
    for platform, platform_times in times.items():
        platform_times.sort()
        dates = sorted({dt.datetime.fromtimestamp(t, zone).date() for t in platform_times})
        for date in dates:
            if days is not None and date.isoformat() not in days:
                continue
            start = local_midnight(date, zone).timestamp()
            end = local_midnight(date + dt.timedelta(days=1), zone).timestamp()
            result.append(day_count(date, platform, platform_times, start, end, links[(date, platform)], settings))
    return sorted(result, key=lambda c: (c.day, c.platform))
