"""Read-only questions about the queue: what is due, what a reply answers, which platforms are blocked."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, case, exists, or_, select
from sqlalchemy.orm import Session, aliased

from adapters.base import Outgoing, PostRef
from bot.images import attachments_of, pictures_of
from bot.models import DeliveryRow, PlatformRow
from bot.models import DeliveryStatus as S


def parent_slot(row: DeliveryRow) -> tuple[str, int] | None:
    """The (kind, part) a delivery replies to, or ``None`` for a root."""
    if row.kind == "root":
        return None
    return ("root", 1) if row.part == 1 else ("followup", row.part - 1)


def parent_posted_clause() -> Any:
    """SQL: the delivery is a root, or the post it replies to has been posted."""
    parent = aliased(DeliveryRow)
    return or_(
        DeliveryRow.kind == "root",
        exists().where(
            parent.story_id == DeliveryRow.story_id,
            parent.platform == DeliveryRow.platform,
            parent.status == S.POSTED,
            or_(
                and_(DeliveryRow.part == 1, parent.kind == "root"),
                and_(DeliveryRow.part > 1, parent.kind == "followup", parent.part == DeliveryRow.part - 1),
            ),
        ),
    )


EFFECTIVE_DUE = case(
    (and_(DeliveryRow.not_before.is_not(None), DeliveryRow.not_before > DeliveryRow.due_at),
     DeliveryRow.not_before),
    else_=DeliveryRow.due_at,
)
"""SQL: when a pending delivery may go out, its due time or its later ``not_before``."""


def waiting(platform: str) -> tuple[Any, ...]:
    """SQL: the pending deliveries of ``platform`` that may be sent once due (a reply: its parent is posted)."""
    return DeliveryRow.status == S.PENDING, DeliveryRow.platform == platform, parent_posted_clause()


def due_stmt(now: dt.datetime, platform: str, *, lead: dt.timedelta, grace: dt.timedelta) -> Any:
    """Deliveries due by ``now`` plus ``lead``, in order; a root past its grace period never is.

    The one eligibility query: the sweep claims from it, and a dry run lists from it.
    """
    return (
        select(DeliveryRow)
        .where(*waiting(platform),
               DeliveryRow.due_at <= now + lead,
               or_(DeliveryRow.kind != "root", DeliveryRow.due_at >= now - grace),
               or_(DeliveryRow.not_before.is_(None), DeliveryRow.not_before <= now))
        .order_by(DeliveryRow.due_at, DeliveryRow.kind.desc(), DeliveryRow.part, DeliveryRow.id)
    )


def missed_stmt(now: dt.datetime, platforms: list[str], *, grace: dt.timedelta) -> Any:
    """Pending roots past their grace period (``missed`` from the next sweep's housekeeping on)."""
    return (select(DeliveryRow)
            .where(DeliveryRow.status == S.PENDING, DeliveryRow.kind == "root", DeliveryRow.due_at < now - grace,
                   DeliveryRow.platform.in_(platforms))
            .order_by(DeliveryRow.due_at, DeliveryRow.id))


def platform_blocks(session: Session, now: dt.datetime) -> dict[str, str]:
    """Platforms that may not be called now, with the reason."""
    blocked = {}
    for row in session.scalars(select(PlatformRow)):
        if row.paused_reason:
            blocked[row.name] = f"paused: {row.paused_reason}"
        elif row.retry_at is not None and row.retry_at > now:
            blocked[row.name] = f"rate limited until {row.retry_at:%Y-%m-%d %H:%M:%S} UTC"
    return blocked


def ref_of(session: Session, row: DeliveryRow, kind: str, part: int) -> PostRef | None:
    """The platform's reference of the posted delivery in ``row``'s thread at (kind, part), if posted."""
    other = session.scalar(select(DeliveryRow).where(
        DeliveryRow.story_id == row.story_id, DeliveryRow.platform == row.platform,
        DeliveryRow.kind == kind, DeliveryRow.part == part))
    if other is None or other.status != S.POSTED or not other.remote_id:
        return None
    return PostRef(other.platform, other.remote_id, other.remote_url or "", dict(other.remote_extra or {}))


def thread_refs(session: Session, row: DeliveryRow) -> tuple[PostRef, PostRef] | None:
    """The (parent, root) a reply answers, or ``None`` when either has no reference (yet)."""
    slot = parent_slot(row)
    if slot is None:
        return None
    parent, root = ref_of(session, row, *slot), ref_of(session, row, "root", 1)
    if parent is None or root is None:
        return None
    return parent, root


def outgoing(session: Session, row: DeliveryRow, parent: PostRef | None = None,
             root: PostRef | None = None) -> Outgoing:
    """The post a delivery sends, as every path builds it: payload, key, thread, attachments and pictures.

    A send and a lookup of a post of unknown outcome must see the same post: a lookup that lacked the
    pictures would compare a picture post's text without them and miss it (then send it again).
    """
    return Outgoing(row.platform, row.story_id, row.kind, row.part, dict(row.payload), row.key, parent, root,
                    attachments_of(session, row), pictures_of(session, row))
