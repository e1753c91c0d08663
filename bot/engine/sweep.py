"""The sweep of one platform: claim the next due delivery, send it, record what the platform said."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select

from adapters.base import Adapter, Outgoing, PostRef, ThreadState, Uploaded, UploadsMedia
from bot.engine import queries
from bot.engine.events import RunReport
from bot.engine.holds import Hold, hold_for
from bot.engine.settle import Absent, Unknown
from bot.models import DeliveryRow, PlatformRow
from bot.models import DeliveryStatus as S
from posts.durations import human_duration as human
from posts.errors import (
    AdapterError,
    AuthFailed,
    Duplicate,
    MediaGone,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    Transient,
)

if TYPE_CHECKING:
    from bot.engine.engine import Engine

log = logging.getLogger("bot.engine")

MEDIA_MARGIN = dt.timedelta(minutes=10)
"""An upload that expires sooner than this is made again rather than attached (the post must reach the
platform before the upload is dropped)."""


class Decision(enum.Enum):
    """What the sweep of a platform does after one delivery."""

    NEXT = "next"
    """Go on with the platform's next due delivery."""
    STOP = "stop"
    """Stop calling this platform in this sweep (it said wait, or refused the credentials)."""


class NoClaim(enum.Enum):
    """Why a claim took nothing."""

    NOTHING_DUE = "nothing-due"
    """Nothing of the platform is due."""
    NO_THREAD = "no-thread"
    """The next due reply answers a post recorded as posted without a reference to reply to."""
    LOST = "lost"
    """Another process took (or changed) the row between reading and taking it: pick again."""


@dataclasses.dataclass(frozen=True)
class Claimed:
    """A delivery claimed with its intent committed, and the post to send for it."""

    row: DeliveryRow
    post: Outgoing


@dataclasses.dataclass(frozen=True)
class Held:
    """The next due delivery must wait (a quota or the backlog pace); nothing was claimed."""

    hold: Hold


Claim = Claimed | Held | NoClaim


class Sweep:
    """Claims, sends and records the due deliveries of one platform at a time."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def run(self, platform: str, now: dt.datetime, report: RunReport) -> None:
        """Claim and send this platform's due deliveries one by one until none is left or it must stop."""
        engine = self.engine
        adapter = engine.adapters[platform]
        while not engine.stopping.is_set():
            with engine.store.session() as session:
                if queries.platform_blocks(session, now).get(platform):
                    return
            claim = self.claim(platform, now)
            if claim is NoClaim.LOST:
                continue  # another process took it (or it changed): pick again
            if isinstance(claim, NoClaim):
                return  # NOTHING_DUE or NO_THREAD: nothing this platform can send now
            if isinstance(claim, Held):
                with engine.store.session() as session:
                    waiting = engine.due(session, now, platform, limit=1000)
                if waiting:
                    self.defer(waiting, claim.hold, report)
                return
            if self.deliver(adapter, claim, report) is Decision.STOP:
                return

    def claim(self, platform: str, now: dt.datetime) -> Claim:
        """Take the platform's next due delivery and commit its intent (payload, key, attempt, time).

        This happens before any network call. The row is picked with ``FOR UPDATE SKIP LOCKED``, so
        workers on PostgreSQL never wait for or take each other's rows, and the platform's row is
        locked while its quotas are counted, so quotas hold across all workers. The row is then taken
        by a compare-and-set (:meth:`bot.engine.transitions.Transitions.claim`): only the worker whose
        update changed it sends it, on every backend.
        """
        engine = self.engine
        started = engine.clock()
        with engine.store.session() as session:
            row = session.scalar(engine.due_stmt(now, platform).limit(1)
                                 .with_for_update(skip_locked=True, of=DeliveryRow))
            if row is None:
                return NoClaim.NOTHING_DUE
            parent = root = None
            if row.kind != "root":
                refs = queries.thread_refs(session, row)
                if refs is None:
                    return NoClaim.NO_THREAD
                parent, root = refs
            session.scalar(select(PlatformRow).where(PlatformRow.name == row.platform).with_for_update())
            hold = hold_for(session, row, max(now, started), engine.settings)
            if hold is not None:
                return Held(hold)
            # The adapter chooses the idempotency key (Bluesky: the record key); it is committed with the
            # intent, before any call, and kept by every later attempt.
            key = engine.adapters[platform].new_key() if row.key is None else None
            taken = engine.take(session, row.id, now, started, key=key)
            if taken is None:
                return NoClaim.LOST
            post = queries.outgoing(session, taken, parent, root)
        return Claimed(taken, post)

    def defer(self, rows: list[DeliveryRow], hold: Hold, report: RunReport) -> None:
        """Hold ``rows`` back until ``hold`` ends, and say so once."""
        self.engine.transitions.defer(rows, hold)
        self.engine.emit(report, self.engine.event("deferred", rows[0], hold.describe(len(rows))))

    def deliver(self, adapter: Adapter, claimed: Claimed, report: RunReport) -> Decision:
        """Send one claimed delivery and record what came of it."""
        engine, moves = self.engine, self.engine.transitions
        row, post = claimed.row, claimed.post
        early = (row.due_at - engine.clock()).total_seconds()
        if 0 < early <= engine.lead.total_seconds():
            engine.sleep(early)  # claimed ahead of time: send exactly when due
        if post.parent is not None and not self.may_reply(adapter, post.parent, row, report):
            return Decision.NEXT
        try:
            post = self.upload(adapter, row, post)
            if post.parent is None:
                ref = adapter.publish(post)
            else:
                ref = adapter.reply(post)
        except RateLimited as exc:
            moves.release(row.id, str(exc), not_before=exc.retry_at, platform_retry_at=exc.retry_at,
                          outcome="rate-limited")
            engine.emit(report, engine.event("rate-limited", row, f"{exc.reason}; waiting until "
                                             f"{exc.retry_at:%Y-%m-%d %H:%M:%S} UTC"))
            return Decision.STOP
        except AuthFailed as exc:
            moves.release(row.id, str(exc), pause=exc.reason, outcome="auth-failed")
            engine.emit(report, engine.event("paused", row, f"authentication failed: {exc.reason}"))
            return Decision.STOP
        except Duplicate as exc:
            engine.settlement.settle(adapter, row, post, Unknown(exc.reason, Absent.UNCONFIRMED,
                                                                 found=f"found after: {exc.reason}"), report)
            return Decision.NEXT
        except Rejected as exc:
            moves.finish(row.id, S.FAILED, error=f"rejected by {row.platform}: {exc.reason}", outcome="rejected")
            engine.emit(report, engine.event("failed", row, f"rejected: {exc.reason}"))
            return Decision.NEXT
        except MediaGone as exc:  # nothing posted; the uploads recorded are gone: upload again next time
            moves.record_media(row.id, None)
            self.transient(row, exc, report, adapter, post)
            return Decision.NEXT
        except Transient as exc:
            self.transient(row, exc, report, adapter, post)
            return Decision.NEXT
        except OutcomeUnknown as exc:
            engine.settlement.settle(adapter, row, post, Unknown(
                exc.reason, Absent.RETRY, found=f"found after: {exc.reason}",
                waiting=f"{exc.reason}; looking again once a request still in flight would have landed"), report)
            return Decision.NEXT
        except Exception as exc:  # a bug in an adapter: the post may or may not have gone out
            log.exception("adapter %s raised an unexpected error", row.platform)
            moves.finish(row.id, S.UNCONFIRMED, error=f"unexpected error: {exc!r}", outcome="error")
            engine.emit(report, engine.event("unconfirmed", row, f"unexpected error: {exc!r}"))
            return Decision.NEXT
        engine.record_posted(row, ref, report, parent=post.parent)
        return Decision.NEXT

    def upload(self, adapter: Adapter, row: DeliveryRow, post: Outgoing) -> Outgoing:
        """``post`` with its pictures uploaded, for a platform that takes uploads before the post.

        Uploads recorded with the delivery by an earlier attempt are attached again while the platform
        still keeps them (:data:`MEDIA_MARGIN` before they expire); the others are uploaded, and each
        upload is committed with the delivery as soon as it is made, before the post is sent. So a resend
        after a failure or a crash attaches the same media, and a post is never made twice for want of
        them. An upload whose answer was lost counts as not made (a picture uploaded twice is harmless;
        nothing is posted by an upload).
        """
        if not post.pictures or not isinstance(adapter, UploadsMedia):
            return post
        recorded = [Uploaded.from_dict(item) for item in (row.media or [])]
        soon = self.engine.clock() + MEDIA_MARGIN
        media: list[Uploaded] = []
        for i, picture in enumerate(post.pictures):
            old = recorded[i] if i < len(recorded) else None
            if old is not None and old.sha256 == picture.image.sha256 and (
                    old.expires_at is None or old.expires_at > soon):
                media.append(old)
                continue
            try:
                media.append(adapter.upload(picture))
            except OutcomeUnknown as exc:
                raise Transient(exc.platform, f"the upload of picture {i + 1} went unanswered: {exc.reason}") from exc
            self.engine.transitions.record_media(row.id, [m.to_dict() for m in media])
        return dataclasses.replace(post, media=tuple(media))

    def may_reply(self, adapter: Adapter, parent: PostRef, row: DeliveryRow, report: RunReport) -> bool:
        """Check the thread before the first part of a follow-up; skip the follow-up when the root is gone or locked.

        ``False`` when the delivery is not to be sent now (skipped, or the check failed and it waits).
        """
        if row.part != 1:
            return True
        engine = self.engine
        try:
            state = adapter.thread_state(parent)
        except (RateLimited, AuthFailed, Transient, OutcomeUnknown) as exc:
            engine.transitions.release(row.id, str(exc), not_before=getattr(exc, "retry_at", None) or engine.clock()
                                       + engine.settings.backoff, outcome="check-failed")
            engine.emit(report, engine.event("retry-later", row, f"could not check the thread: {exc.reason}"))
            return False
        except AdapterError:
            state = ThreadState.GONE
        if state is ThreadState.OPEN:
            return True
        reason = ("the root post was deleted or removed" if state is ThreadState.GONE
                  else "the root post no longer accepts replies")
        engine.transitions.finish(row.id, S.SKIPPED, error=f"follow-up skipped: {reason}", outcome="skipped")
        engine.transitions.skip_later_parts(row, f"follow-up skipped: {reason}")
        engine.emit(report, engine.event("skipped", row, reason))
        return False

    def transient(self, row: DeliveryRow, exc: AdapterError, report: RunReport, adapter: Adapter | None = None,
                  post: Outgoing | None = None) -> None:
        """Certainly not posted: retry after a backoff, or give up after ``ONEYEARAGO_MAX_ATTEMPTS`` attempts."""
        engine = self.engine
        with engine.store.session() as session:
            attempts = session.scalar(select(DeliveryRow.attempts).where(DeliveryRow.id == row.id)) or 0
        if attempts >= engine.settings.max_attempts:
            if adapter is not None and post is not None:
                # An earlier attempt may still have landed (a slow create finishing after its timeout):
                # look once more before giving up.
                try:
                    found = engine.settlement.look_up(adapter, row, post)
                except AdapterError:
                    found = None
                if found is not None:
                    engine.record_posted(row, found, report, detail="found before giving up")
                    return
            engine.transitions.finish(row.id, S.FAILED, error=f"gave up after {attempts} attempts: {exc.reason}",
                                      outcome="transient")
            engine.emit(report, engine.event("failed", row, f"gave up after {attempts} attempts: {exc.reason}"))
            return
        delay = engine.backoff(attempts)
        engine.transitions.release(row.id, str(exc), not_before=engine.clock() + delay, outcome="transient")
        engine.emit(report, engine.event("retry-later", row, f"{exc.reason}; next attempt in {human(delay)}"))
