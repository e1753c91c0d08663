"""One path for a post whose outcome is not known: look it up, then posted, still settling, or absent.

The outcome of a send is not known after a timeout, a dropped connection or a 5xx on a create (the
adapter raises ``OutcomeUnknown``), after a platform's "duplicate" answer, and after a crash in the
middle of a send (reconciliation). Each case goes through :meth:`Settlement.settle`; only what an
absent post means differs (:class:`Absent`). Adapters report what happened and answer lookups;
the engine alone decides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from adapters.base import Adapter, Outgoing, PostRef
from bot.engine.events import RunReport
from bot.engine.transitions import LOOKUP_FAILED
from bot.models import AttemptRow
from bot.models import DeliveryStatus as S
from posts.errors import AdapterError, OutcomeUnknown, RateLimited, Transient

if TYPE_CHECKING:
    from bot.engine.engine import Engine
    from bot.models import DeliveryRow

LOOKUPS = 5
"""How many times a post of unknown outcome is looked up (with backoff) before it is left unconfirmed."""
LOOKUP_MARGIN = dt.timedelta(minutes=5)
"""Lookups search the account's posts from this long before the first attempt began."""


class Absent(enum.Enum):
    """What it means when the post is certainly not on the platform."""

    RETRY = "retry"
    """The attempt failed: try again after a backoff, or give up after ``ONEYEARAGO_MAX_ATTEMPTS``."""
    SEND_AGAIN = "send-again"
    """A send interrupted by a crash: queue it again at once."""
    UNCONFIRMED = "unconfirmed"
    """The platform said it has the post, yet it is not among ours: leave it to the operator."""


@dataclasses.dataclass(frozen=True)
class Unknown:
    """Why an outcome is not known, and what to do when the post turns out absent."""

    reason: str
    absent: Absent
    found: str
    """The detail of the ``posted`` event when the lookup finds the post."""
    waiting: str | None = None
    """The detail of a ``retry-later`` event while the platform may still be finishing the request."""


class Settlement:
    """Settles posts of unknown outcome for every platform."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def settle(self, adapter: Adapter, row: DeliveryRow, post: Outgoing, unknown: Unknown,
               report: RunReport) -> None:
        """Look the post up and record what that tells: posted, look again later, or ``unknown.absent``."""
        engine = self.engine
        try:
            found = self.look_up(adapter, row, post)
        except AdapterError as exc:
            self.lookup_failed(row, f"{unknown.reason}; looking it up failed: {exc.reason}", exc, report)
            return
        if found is not None:
            engine.record_posted(row, found, report, detail=unknown.found)
            return
        if unknown.absent is Absent.UNCONFIRMED:
            reason = f"{unknown.reason} (the platform calls it a duplicate but it is not among our posts)"
            engine.transitions.finish(row.id, S.UNCONFIRMED, error=reason, outcome="duplicate")
            engine.emit(report, engine.event("unconfirmed", row, reason))
            return
        if self.still_settling(row, f"{unknown.reason}; not on the platform yet"):
            if unknown.waiting is not None:
                engine.emit(report, engine.event("retry-later", row, unknown.waiting))
            return
        if unknown.absent is Absent.SEND_AGAIN:
            engine.transitions.requeue_interrupted(row.id, f"{unknown.reason}; not on the platform, so it will "
                                                           "be sent")
            engine.emit(report, engine.event("reconciled", row, "interrupted send not on the platform: "
                                             "queued again"))
            return
        engine.sweep.transient(row, Transient(row.platform, f"{unknown.reason} (not posted: checked)"), report,
                               adapter, post)

    def look_up(self, adapter: Adapter, row: DeliveryRow, post: Outgoing) -> PostRef | None:
        """Look for ``post`` among the account's posts since its first attempt began (less a margin)."""
        return adapter.find(post, since=self.attempt_started(row.id, first=True) - LOOKUP_MARGIN)

    def still_settling(self, row: DeliveryRow, reason: str) -> bool:
        """Whether "not found" cannot be trusted yet: the last attempt may still be in flight on the platform.

        A platform can finish a request after the client gave up on it, so an absent post only counts
        as not posted once ``ONEYEARAGO_SETTLE`` has passed since that attempt began. Until then the
        delivery stays ``sending``, unclaimed, and reconciliation looks again then.
        """
        until = self.attempt_started(row.id) + self.engine.settings.settle
        if self.engine.clock() >= until:
            return False
        reason = self.engine.mask(reason)
        self.engine.transitions.look_again(row.id, until, f"{reason}; looking again at {until:%H:%M:%S} UTC")
        return True

    def lookup_failed(self, row: DeliveryRow, reason: str, exc: AdapterError, report: RunReport) -> None:
        """A post whose outcome is unknown could not be looked up: look again later, a few times.

        The delivery stays ``sending``, unclaimed, so reconciliation retries the lookup from then on;
        never resent meanwhile. After :data:`LOOKUPS` failed lookups (or at once when the platform's
        answer is final) it becomes ``unconfirmed`` for the operator.
        """
        engine = self.engine
        at, reason = engine.clock(), engine.mask(reason)
        with engine.store.session() as session:
            tries = session.scalar(select(func.count()).where(AttemptRow.delivery_id == row.id,
                                                              AttemptRow.outcome == LOOKUP_FAILED)) or 0
        final = not isinstance(exc, Transient | RateLimited | OutcomeUnknown) or tries + 1 >= LOOKUPS
        if final:
            engine.transitions.finish(row.id, S.UNCONFIRMED, error=reason, outcome="unknown")
            engine.emit(report, engine.event("unconfirmed", row, reason))
            return
        wait = getattr(exc, "retry_at", None) or at + engine.backoff(tries + 1)
        engine.transitions.look_again(row.id, wait, f"{reason}; looking again at {wait:%H:%M:%S} UTC",
                                      lookup_failed=reason)
        engine.emit(report, engine.event("retry-later", row, f"{reason}; will look it up again"))

    def attempt_started(self, delivery_id: int, *, first: bool = False) -> dt.datetime:
        """When the delivery's latest (or ``first``) send attempt began (lookups are not attempts)."""
        order = AttemptRow.id.asc() if first else AttemptRow.id.desc()
        with self.engine.store.session() as session:
            started = session.scalar(select(AttemptRow.started_at).where(AttemptRow.delivery_id == delivery_id,
                                                                         AttemptRow.outcome != LOOKUP_FAILED)
                                     .order_by(order).limit(1))
        return started or self.engine.clock()
