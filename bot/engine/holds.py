"""Why a due delivery must wait: a platform quota, or the pace at which a backlog drains."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.config import Settings
from bot.models import DeliveryRow
from bot.models import Status as S
from posts.anniversary import human_duration as human

BACKLOG_LATE = dt.timedelta(minutes=1)
"""A post this late counts as part of a backlog, which drains at ``ONEYEARAGO_BACKLOG_PACE``."""


class Hold(NamedTuple):
    """Why a delivery must wait, and until when."""

    until: dt.datetime
    reason: str
    quota: bool
    """A quota moves the delivery to the free slot; otherwise (backlog pace) it is only delayed."""


def hold_for(session: Session, row: DeliveryRow, now: dt.datetime, settings: Settings) -> Hold | None:
    """Whether ``row`` must wait for a quota or the backlog pace.

    Quotas count the posts of every worker (the database is shared) over rolling windows, posts in
    flight included.
    """
    holds: list[Hold] = []
    in_flight = session.scalar(select(func.count()).where(DeliveryRow.platform == row.platform,
                                                          DeliveryRow.status == S.SENDING.value)) or 0
    for window, limit in settings.quotas(row.platform):
        recent = (select(DeliveryRow.posted_at)
                  .where(DeliveryRow.platform == row.platform, DeliveryRow.posted_at > now - window)
                  .order_by(DeliveryRow.posted_at.desc()))
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
