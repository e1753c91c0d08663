"""Why a due delivery must wait: a platform quota, or the pace at which a backlog drains."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.models import DeliveryRow
from bot.models import DeliveryStatus as S
from posts.durations import human_duration as human

BACKLOG_LATE = dt.timedelta(minutes=1)
"""A post this late counts as part of a backlog, which drains at ``ONEYEARAGO_BACKLOG_PACE``."""


class Hold(NamedTuple):
    """Why a delivery must wait, and until when."""

    until: dt.datetime
    reason: str
    quota: bool
    """A quota moves the delivery to the free slot; otherwise (backlog pace) it is only delayed."""

    def describe(self, waiting: int) -> str:
        """What the hold does to the ``waiting`` due deliveries it holds back."""
        return (f"{self.reason}; next slot {self.until:%Y-%m-%d %H:%M:%S} UTC"
                + (f" ({waiting} waiting)" if waiting > 1 else ""))


def hold_for(session: Session, row: DeliveryRow, now: dt.datetime, settings: Settings) -> Hold | None:
    """Whether ``row`` must wait for a quota or the backlog pace.

    Quotas count the posts of every worker (the database is shared) over rolling windows, posts in
    flight included.
    """
    holds: list[Hold] = []
    in_flight = sending(session, row.platform)
    for window, limit in settings.quotas(row.platform):
        recent = _recent(row.platform, now, window)
        count = (session.scalar(select(func.count()).select_from(recent.subquery())) or 0) + in_flight
        if count >= limit:
            oldest_counted = session.scalar(recent.offset(max(0, limit - 1 - in_flight)).limit(1))
            until = oldest_counted + window if oldest_counted is not None else now + dt.timedelta(seconds=5)
            holds.append(Hold(until, f"{row.platform} quota of {limit} posts per {human(window)} reached", True))
    pace = settings.backlog_pace
    if pace and row.due_at < now - BACKLOG_LATE:
        last = session.scalar(select(func.max(DeliveryRow.posted_at)).where(DeliveryRow.platform == row.platform))
        if last is not None and last + pace > now:
            holds.append(Hold(last + pace, f"draining a backlog: one post every {human(pace)}", False))
    return max(holds) if holds else None


def _recent(platform: str, now: dt.datetime, window: dt.timedelta) -> Any:
    """The posts of ``platform`` in the rolling window of ``window`` ending at ``now``, newest first."""
    return (select(DeliveryRow.posted_at)
            .where(DeliveryRow.platform == platform, DeliveryRow.posted_at > now - window)
            .order_by(DeliveryRow.posted_at.desc()))


def sending(session: Session, platform: str) -> int:
    """Posts of ``platform`` in flight: they count against its quotas as if posted."""
    return session.scalar(select(func.count()).where(DeliveryRow.platform == platform,
                                                     DeliveryRow.status == S.SENDING)) or 0


def window_count(session: Session, platform: str, now: dt.datetime, window: dt.timedelta) -> int:
    """What a quota of ``window`` counts at ``now``, as :func:`hold_for` does: the window's posts and those in flight."""
    recent = _recent(platform, now, window)
    return (session.scalar(select(func.count()).select_from(recent.subquery())) or 0) + sending(session, platform)
