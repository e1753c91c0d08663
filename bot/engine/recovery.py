"""Crash recovery: settle deliveries left ``sending`` (a crash mid-send, a lapsed lease, a lookup due again)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.engine import queries
from bot.engine.events import RunReport
from bot.engine.settle import Absent, Unknown
from bot.engine.transitions import reconcilable
from bot.models import DeliveryRow
from bot.models import DeliveryStatus as S

if TYPE_CHECKING:
    from bot.engine.engine import Engine

INTERRUPTED = Unknown("interrupted while sending", Absent.SEND_AGAIN, found="found after an interrupted send")
"""A send a crash interrupted: found, it is posted; certainly absent, it is sent again."""
LOOKED_AGAIN = Unknown("outcome not known", Absent.RETRY, found="found when looked up again")
"""An attempt whose outcome was not known, looked up again once it could have settled: found, it is
posted; certainly absent, the attempt failed, and it is retried after a backoff (or given up after
``ONEYEARAGO_MAX_ATTEMPTS`` attempts) like any other failed attempt."""


def reconcile(engine: Engine, now: dt.datetime, report: RunReport, *, all_sending: bool = False) -> RunReport:
    """Settle deliveries left ``sending``: posted, safe to send again, or unconfirmed.

    Only deliveries whose lease has lapsed and whose time to look again has come are touched, or
    every one with ``all_sending`` (a single worker at start-up, which knows no one else holds a claim).
    Each goes through the same settlement as any other post of unknown outcome.
    """
    with engine.store.session() as session:
        stmt = select(DeliveryRow).where(DeliveryRow.status == S.SENDING,
                                         DeliveryRow.platform.in_(list(engine.adapters)))
        if not all_sending:
            stmt = stmt.where(reconcilable(now))
        rows = list(session.scalars(stmt))
    for row in rows:
        adapter = engine.adapters[row.platform]
        if not engine.transitions.take_over(row.id, now, any_claim=all_sending):
            continue  # another worker renewed or took it meanwhile
        with engine.store.session() as session:
            refs = queries.thread_refs(session, row) if row.kind != "root" else None
            parent, root = refs if refs is not None else (None, None)
            post = queries.outgoing(session, row, parent, root)
        # A row waiting to be looked up again was left so by an attempt of unknown outcome, not by a crash.
        unknown = LOOKED_AGAIN if row.look_again_at is not None else INTERRUPTED
        engine.settlement.settle(adapter, row, post, unknown, report)
    return report
