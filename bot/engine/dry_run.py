"""What a sweep would send at a given time, changing nothing.

A dry run walks the real sweep's path in one database transaction that it rolls back at the end:
the housekeeping's rendering of the stories due soon, then platform by platform the sweep's
eligibility query (:func:`bot.engine.queries.due_stmt`), its thread check and its quota and pacing
holds (:func:`bot.engine.holds.hold_for`). Each delivery it would send is recorded as posted inside
the transaction, so the replies that would follow it, the quotas it would use and the pace it would
set count as they would in the real sweep. Only the platforms are never called.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from bot.engine import queries
from bot.engine.events import RunReport
from bot.engine.holds import hold_for
from bot.models import DeliveryStatus as S
from bot.planner import RENDER_AHEAD

if TYPE_CHECKING:
    from bot.engine.engine import Engine

NOT_SENT = "(dry run)"
"""The reference a delivery the dry run would send gets inside its transaction (never committed)."""


def dry_run(engine: Engine, now: dt.datetime, report: RunReport) -> None:
    """What ``run_once`` would send at ``now`` (and hold back, or mark missed), changing nothing."""
    with engine.store.sessions() as session:
        session.begin()
        try:
            _sweep(engine, session, now, report)
        finally:
            session.rollback()


def _sweep(engine: Engine, session: Session, now: dt.datetime, report: RunReport) -> None:
    platforms = list(engine.adapters)
    engine.planner.render_due(now + RENDER_AHEAD, now=now, session=session)
    for row in session.scalars(queries.missed_stmt(now, platforms, grace=engine.settings.grace)):
        engine.emit(report, engine.event("missed", row, "past the grace period: would be marked missed"))
    blocks = queries.platform_blocks(session, now)
    for platform in platforms:
        if platform in blocks:
            for row in engine.due(session, now, platform, limit=1000):
                engine.emit(report, engine.event("blocked", row, blocks[platform]))
            continue
        _platform(engine, session, platform, now, report)


def _platform(engine: Engine, session: Session, platform: str, now: dt.datetime, report: RunReport) -> None:
    """One platform's sweep, as :meth:`bot.engine.sweep.Sweep.run` and ``claim`` decide it."""
    while True:
        row = session.scalar(engine.due_stmt(now, platform).limit(1))
        if row is None:
            return
        if row.kind != "root" and queries.thread_refs(session, row) is None:
            return  # the sweep stops here too: the reply has no thread to answer yet
        hold = hold_for(session, row, now, engine.settings)
        if hold is not None:
            waiting = engine.due(session, now, platform, limit=1000)
            engine.emit(report, engine.event("would-defer", waiting[0], hold.describe(len(waiting))))
            return
        engine.emit(report, engine.event("would-post", row, at=now))
        row.status, row.posted_at, row.remote_id = S.POSTED, now, NOT_SENT
        session.flush()
