"""Delivery state transitions: the only code that writes a delivery's status, claim, attempts and last error.

The engine's transitions are methods of :class:`Transitions`; the operator's (``skip``, ``retry``)
are :func:`skip_by_operator` and :func:`retry_by_operator`, which :mod:`bot.ops` calls. The planner
creates deliveries ``pending`` and changes only their text and due time while they are unclaimed.

A delivery moves ``pending`` -> ``sending`` (claimed: intent committed) -> ``posted``, or back to
``pending`` (certainly not posted), or on to ``failed``, ``skipped``, ``missed`` or ``unconfirmed``.
Two columns say when a ``sending`` delivery may be touched again, one meaning each:

- ``claimed_by`` / ``claimed_until``: the lease of the worker sending it (renewed by its heartbeat);
  once it lapses, another worker may reconcile the delivery.
- ``look_again_at``: an outcome that is not known yet (its lookup failed, or the platform may still
  be finishing the request): nobody holds it, and reconciliation looks it up again from then on.

``attempts`` counts the attempts made: it is set once, when an attempt is claimed. An attempt the
platform turned away before doing anything (a rate limit, refused credentials) or that was never
sent (the thread could not be checked) is not made: its number goes to the next attempt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence

from sqlalchemy import ColumnElement, and_, case, func, or_, select, true, update
from sqlalchemy.orm import Session

from adapters.base import PostRef
from bot.config import Settings
from bot.engine import queries
from bot.engine.holds import Hold
from bot.models import AttemptRow, DeliveryRow, PlatformRow
from bot.models import DeliveryStatus as S
from bot.store import Store
from posts.durations import human_duration as human
from posts.render import stamp

NOT_MADE = ("rate-limited", "auth-failed", "check-failed")
"""Outcomes of attempts that were not made: the platform did nothing, so the next attempt takes their number."""
LOOKUP_FAILED = "lookup-failed"
"""The outcome logged for a failed lookup of a post whose outcome is unknown (not an attempt)."""


class Transitions:
    """Writes every change of a delivery's state, each in its own transaction (but :meth:`claim`)."""

    def __init__(self, store: Store, settings: Settings, *, worker: str, clock: Callable[[], dt.datetime],
                 mask: Callable[[str], str]):
        self.store = store
        self.settings = settings
        self.worker = worker
        self.clock = clock
        self.mask = mask

    # ------------------------------------------------------------------ claims

    def claim(self, session: Session, delivery_id: int, now: dt.datetime, started: dt.datetime, *,
              lead: dt.timedelta = dt.timedelta(0), key: str | None = None) -> DeliveryRow | None:
        """Claim one delivery by compare-and-set and commit its intent; ``None`` when another process won.

        The update changes the row only while it is still pending and due at ``now`` (plus ``lead``);
        its row count decides who sends, on SQLite as on PostgreSQL. The row is then read back inside
        the same transaction, which now holds it: the text and payload committed as the intent (with
        the attempt, its number and the idempotency key), and sent, are the row's own at that moment,
        never an older read of it. ``key`` is the idempotency key the platform's adapter chose
        (``Adapter.new_key``): stored only when the delivery has none yet, so every attempt of a
        delivery, and every lookup after a crash, uses the key of its first.
        """
        last_outcome = (select(AttemptRow.outcome)
                        .where(AttemptRow.delivery_id == DeliveryRow.id, AttemptRow.outcome != LOOKUP_FAILED)
                        .order_by(AttemptRow.id.desc()).limit(1).scalar_subquery())
        number = case((and_(DeliveryRow.attempts > 0, last_outcome.in_(NOT_MADE)), DeliveryRow.attempts),
                      else_=DeliveryRow.attempts + 1)
        stmt = (update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id, DeliveryRow.status == S.PENDING,
                       DeliveryRow.due_at <= now + lead,
                       or_(DeliveryRow.not_before.is_(None), DeliveryRow.not_before <= now))
                .values(status=S.SENDING, claimed_by=self.worker, claimed_until=started + self.settings.lease,
                        look_again_at=None, attempts=number, updated_at=started,
                        key=func.coalesce(DeliveryRow.key, key))
                .execution_options(synchronize_session=False))
        if session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
            return None
        row = session.scalar(select(DeliveryRow).where(DeliveryRow.id == delivery_id)
                             .execution_options(populate_existing=True))
        assert row is not None
        payload = stamp(row.platform, row.payload, started)
        if payload != row.payload:
            row.payload = payload
        session.add(AttemptRow(delivery_id=row.id, number=row.attempts, worker=self.worker,
                               started_at=started, outcome="sending", payload=payload))
        session.flush()
        return row

    def take_over(self, delivery_id: int, now: dt.datetime, *, any_claim: bool) -> bool:
        """Claim a ``sending`` delivery for reconciliation, so two workers never settle it both.

        Only once its lease has lapsed and its time to look again has come, or whatever they say
        with ``any_claim`` (a single worker at start-up).
        """
        with self.store.session() as session:
            stmt = (update(DeliveryRow)
                    .where(DeliveryRow.id == delivery_id, DeliveryRow.status == S.SENDING,
                           true() if any_claim else reconcilable(now))
                    .values(claimed_by=self.worker, claimed_until=self.clock() + self.settings.lease,
                            look_again_at=None)
                    .execution_options(synchronize_session=False))
            return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]

    def renew(self, at: dt.datetime) -> None:
        """Renew the leases of this worker's claims (its heartbeat)."""
        with self.store.session() as session:
            session.execute(update(DeliveryRow)
                            .where(DeliveryRow.claimed_by == self.worker, DeliveryRow.status == S.SENDING)
                            .values(claimed_until=at + self.settings.lease)
                            .execution_options(synchronize_session=False))

    def record_media(self, delivery_id: int, media: list[dict[str, object]] | None) -> None:
        """Keep what was uploaded for a claimed delivery's pictures (``None``: forget it, upload again).

        Committed at once, before the post is sent: a resend, or the reconciliation after a crash,
        attaches these uploads instead of making new ones.
        """
        with self.store.session() as session:
            session.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id)
                            .values(media=media).execution_options(synchronize_session=False))

    # ------------------------------------------------------------------ outcomes

    def posted(self, row: DeliveryRow, ref: PostRef) -> dt.datetime:
        """Record the platform's id and URL, with the text and payload of ``row`` (the delivery as claimed).

        Returns when it was recorded.
        """
        at = self.clock()
        with self.store.session() as session:
            session.execute(update(DeliveryRow).where(DeliveryRow.id == row.id).values(
                status=S.POSTED, text=row.text, payload=dict(row.payload), remote_id=ref.id,
                remote_url=ref.url, remote_extra=dict(ref.extra), posted_at=at, last_error=None, claimed_by=None,
                claimed_until=None, look_again_at=None, updated_at=at)
                .execution_options(synchronize_session=False))
            _close_attempt(session, row.id, "posted", None, at)
        return at

    def finish(self, delivery_id: int, status: S, *, error: str, outcome: str) -> None:
        """End a claimed delivery as ``failed``, ``skipped`` or ``unconfirmed``."""
        at, error = self.clock(), self.mask(error)
        with self.store.session() as session:
            row = session.get(DeliveryRow, delivery_id)
            assert row is not None
            row.status, row.last_error, row.updated_at = status, error, at
            row.claimed_by = row.claimed_until = row.look_again_at = None
            _close_attempt(session, delivery_id, outcome, error, at)

    def release(self, delivery_id: int, error: str, *, outcome: str, not_before: dt.datetime | None = None,
                platform_retry_at: dt.datetime | None = None, pause: str | None = None) -> None:
        """Put a claimed delivery back to pending (nothing was posted); maybe make its platform wait or pause."""
        at, error = self.clock(), self.mask(error)
        pause = self.mask(pause) if pause is not None else None
        with self.store.session() as session:
            row = session.get(DeliveryRow, delivery_id)
            assert row is not None
            row.status, row.last_error, row.not_before, row.updated_at = S.PENDING, error, not_before, at
            row.claimed_by = row.claimed_until = row.look_again_at = None
            _close_attempt(session, delivery_id, outcome, error, at)
            if platform_retry_at is not None or pause is not None:
                state = session.get(PlatformRow, row.platform) or PlatformRow(name=row.platform, updated_at=at)
                if platform_retry_at is not None:
                    state.retry_at = max(platform_retry_at, state.retry_at or platform_retry_at)
                if pause is not None:
                    state.paused_reason = pause
                state.updated_at = at
                session.add(state)

    def requeue_interrupted(self, delivery_id: int, error: str) -> None:
        """An interrupted send found certainly absent: back to pending, to be sent again at once."""
        at = self.clock()
        with self.store.session() as session:
            row = session.get(DeliveryRow, delivery_id)
            assert row is not None
            row.status, row.last_error = S.PENDING, error
            row.claimed_by = row.claimed_until = row.look_again_at = None
            _close_attempt(session, delivery_id, "interrupted", error, at)

    def look_again(self, delivery_id: int, until: dt.datetime, error: str, *,
                   lookup_failed: str | None = None) -> None:
        """Leave a delivery whose outcome is not known ``sending``, unclaimed, to be looked up from ``until``.

        ``lookup_failed`` (the lookup's error) logs the failed lookup, which counts towards giving up.
        """
        at = self.clock()
        with self.store.session() as session:
            row = session.get(DeliveryRow, delivery_id)
            assert row is not None
            row.status, row.claimed_by, row.claimed_until = S.SENDING, None, None
            row.look_again_at = max(until, at)
            row.last_error, row.updated_at = self.mask(error), at
            if lookup_failed is not None:
                session.add(AttemptRow(delivery_id=delivery_id, number=row.attempts, worker=self.worker,
                                       started_at=at, finished_at=at, outcome=LOOKUP_FAILED,
                                       error=self.mask(lookup_failed), payload={}))

    def skip_later_parts(self, row: DeliveryRow, error: str) -> None:
        """Skip the pending parts of a follow-up after ``row`` (they go with it)."""
        with self.store.session() as session:
            for later in session.scalars(select(DeliveryRow).where(
                    DeliveryRow.story_id == row.story_id, DeliveryRow.platform == row.platform,
                    DeliveryRow.kind == "followup", DeliveryRow.part > row.part,
                    DeliveryRow.status == S.PENDING)):
                later.status, later.last_error = S.SKIPPED, error

    def mark_missed(self, now: dt.datetime, platforms: Sequence[str]) -> list[DeliveryRow]:
        """Mark pending roots past the grace period ``missed``; returns them (detached, as marked).

        Each is marked by compare-and-set, only while it is still pending: a sweep that began earlier
        (its ``now`` within the root's grace) or another worker may have claimed it since it was read,
        and its send goes on; marking it then would report a post that goes out as missed, or, once it
        was recorded, overwrite ``posted``. The rows are written in the order they were read (due time,
        id), the same in every worker.
        """
        grace = self.settings.grace
        marked: list[DeliveryRow] = []
        with self.store.session() as session:
            rows = list(session.scalars(queries.missed_stmt(now, list(platforms), grace=grace)))
            session.expunge_all()
            for row in rows:
                error = (f"not posted: {human(now - row.due_at)} late, past the grace period of {human(grace)} "
                         "(retry posts it on purpose)")
                done = session.execute(update(DeliveryRow).where(DeliveryRow.id == row.id, DeliveryRow.status == S.PENDING)
                                       .values(status=S.MISSED, last_error=error, updated_at=now)
                                       .execution_options(synchronize_session=False))
                if done.rowcount == 1:  # type: ignore[attr-defined]
                    row.status, row.last_error, row.updated_at = S.MISSED, error, now
                    marked.append(row)
        return marked

    def defer(self, rows: Sequence[DeliveryRow], hold: Hold) -> None:
        """Hold ``rows`` back: a quota moves them to the next free slot; the backlog pace only delays."""
        until, reason, quota = hold
        at = self.clock()
        with self.store.session() as session:
            for row in rows:
                current = session.get(DeliveryRow, row.id)
                if current is None or current.status != S.PENDING:
                    continue
                if quota:
                    current.due_at = max(current.due_at, until)
                else:
                    current.not_before = max(current.not_before or until, until)
                current.last_error, current.updated_at = f"held back: {reason}", at


def skip_by_operator(session: Session, ids: Sequence[int], unsent: Collection[str], now: dt.datetime) -> None:
    """The operator's ``skip``: mark the deliveries ``ids`` skipped, each only while its status is in ``unsent``.

    A compare-and-set: a delivery a worker claimed since it was read is no longer unsent, and is left
    to the worker (it goes out).
    """
    session.execute(update(DeliveryRow).where(DeliveryRow.id.in_(list(ids)), DeliveryRow.status.in_(list(unsent)))
                    .values(status=S.SKIPPED, last_error="skipped by the operator", updated_at=now)
                    .execution_options(synchronize_session=False))


def retry_by_operator(row: DeliveryRow, now: dt.datetime) -> None:
    """The operator's ``retry`` of a delivery that was not sent: pending again, with its attempts counted afresh."""
    row.status, row.not_before, row.updated_at = S.PENDING, None, now
    row.attempts = 0
    row.last_error = f"retry asked by the operator at {now:%Y-%m-%d %H:%M} UTC"


def reconcilable(now: dt.datetime) -> ColumnElement[bool]:
    """SQL: a ``sending`` delivery nobody holds (its lease lapsed) and not to be looked at later than ``now``."""
    return and_(or_(DeliveryRow.claimed_until.is_(None), DeliveryRow.claimed_until < now),
                or_(DeliveryRow.look_again_at.is_(None), DeliveryRow.look_again_at < now))


def _close_attempt(session: Session, delivery_id: int, outcome: str, error: str | None, at: dt.datetime) -> None:
    """Finish the open attempt of a delivery (there is at most one: the one its claim began).

    ``error`` is stored as given: callers pass it masked (or a message of the engine's own)."""
    session.execute(update(AttemptRow).where(AttemptRow.delivery_id == delivery_id,
                                             AttemptRow.finished_at.is_(None))
                    .values(outcome=outcome, error=error, finished_at=at)
                    .execution_options(synchronize_session=False))
