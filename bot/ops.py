"""Operator actions and views over the store: agenda, status, skip, retry, preview."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter, defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, and_, cast, func, or_, select

from bot.config import Settings
from bot.engine.transitions import retry_by_operator, skip_by_operator
from bot.models import NEEDS_ATTENTION, RETRYABLE, SKIPPABLE, DeliveryRow, PlatformRow, StoryRow, WorkerRow
from bot.models import DeliveryStatus as S
from bot.planner import render_options
from bot.quotas import DAY, DayCount, day_counts
from bot.store import Store
from posts.errors import BotError, NotFound
from posts.render import Part, iso_utc, render
from posts.story import Story


def delivery_dict(row: DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id, "story_id": row.story_id, "platform": row.platform, "kind": row.kind, "part": row.part,
        "parts": row.parts, "due_at": row.due_at.isoformat(), "status": row.status, "attempts": row.attempts,
        "last_error": row.last_error, "remote_id": row.remote_id, "remote_url": row.remote_url,
        "posted_at": row.posted_at.isoformat() if row.posted_at else None,
        "not_before": row.not_before.isoformat() if row.not_before else None,
        "length": row.length, "limit": row.limit, "unit": row.unit, "text": row.text,
    }


def agenda(store: Store, *, start: dt.datetime, end: dt.datetime, now: dt.datetime, platform: str | None = None,
           planner: Any = None) -> list[DeliveryRow]:
    """Deliveries due in ``[start, end)``, by due time. A read: nothing is written.

    With ``planner``, the posts of stories not rendered yet that fall in the period are rendered in
    memory and shown too (without an id: they are stored when the engine renders them, a day ahead).
    """
    with store.session() as session:
        stmt = (select(DeliveryRow).where(DeliveryRow.due_at >= start, DeliveryRow.due_at < end)
                .order_by(DeliveryRow.due_at, DeliveryRow.platform, DeliveryRow.kind.desc(), DeliveryRow.part))
        if platform:
            stmt = stmt.where(DeliveryRow.platform == platform)
        rows = list(session.scalars(stmt))
    if planner is None:
        return rows
    planned = [r for r in planner.rendered_in_memory(start, end, now=now) if not platform or r.platform == platform]
    if not planned:
        return rows
    rows += planned
    rows.sort(key=lambda r: r.part)  # stable sorts, last key first: the order of the query above
    rows.sort(key=lambda r: r.kind, reverse=True)
    rows.sort(key=lambda r: (r.due_at, r.platform))
    return rows


def agenda_days(store: Store, rows: list[DeliveryRow], settings: Settings, *, start: dt.datetime,
                now: dt.datetime, platform: str | None = None, planner: Any = None) -> list[DayCount]:
    """The days of an agenda from ``start`` (``rows``) against the quotas, as the engine counts them:
    the posts of the 24 hours before ``start`` count in the first day's windows."""
    earlier = agenda(store, start=start - DAY, end=start, now=now, platform=platform, planner=planner)
    zone = ZoneInfo(settings.timezone)
    days = {(r.posted_at or r.due_at).astimezone(zone).date().isoformat() for r in rows}
    return day_counts(earlier + rows, settings, days=days)


@dataclasses.dataclass(frozen=True)
class StoryDue:
    """A story by its id, when its anniversary post is due, and what the operator must still do."""

    id: str
    due: dt.datetime
    headline: str
    draft: bool
    """Not posted until approved."""
    needs_reveal: bool = False
    """Due within ``ONEYEARAGO_REVEAL_LEAD`` with an empty ``one_year_later``."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "due": self.due.isoformat(), "headline": self.headline, "draft": self.draft,
                "needs_reveal": self.needs_reveal}


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def in_reveal_lead(due: dt.datetime, now: dt.datetime, lead: dt.timedelta) -> bool:
    """Whether a story due at ``due`` is within ``ONEYEARAGO_REVEAL_LEAD`` of ``now``: ``[now, now + lead)``,
    the one window every list, mark and notice of a missing reveal uses."""
    return now <= due < now + lead


def needs_reveal(store: Store, now: dt.datetime, lead: dt.timedelta, *, followup_delay: dt.timedelta,
                 start: dt.datetime | None = None, end: dt.datetime | None = None,
                 story_id: str | None = None) -> list[StoryDue]:
    """The stories (drafts too) whose reveal (``one_year_later``) is still empty and can still go out,
    soonest first: without one a story gets no follow-up. Those due within ``lead`` of ``now``
    (:func:`in_reveal_lead`), and those whose root is out (or on its way) while their follow-up's time
    (``followup_after``, else ``followup_delay``, after the root) has not passed: a reveal written then
    still goes out. Within ``[start, end)`` when given; only ``story_id`` when given. A story the operator
    skipped (every post of it ``skipped``) goes out no more and needs none. Chosen by the database: only
    those stories are read."""
    content = StoryRow.content
    reveal = func.trim(func.coalesce(content["one_year_later"].as_string(), ""))
    posts = select(DeliveryRow.id).where(DeliveryRow.story_id == StoryRow.id)
    skipped = and_(posts.exists(), ~posts.where(DeliveryRow.status != S.SKIPPED).exists())
    root_out = posts.where(DeliveryRow.kind == "root",
                           DeliveryRow.status.in_([S.PENDING, S.SENDING, S.POSTED, S.UNCONFIRMED])).exists()
    # 64-bit arithmetic: a root due after 2038 is past 32 bits of seconds (PostgreSQL's INTEGER would overflow)
    delay = func.coalesce(cast(content["followup_after"].as_string(), BigInteger),
                          int(followup_delay.total_seconds()))
    followup_ahead = _epoch(store, StoryRow.root_due) + delay >= int(now.timestamp())
    low = max(now, start) if start is not None else now
    high = min(now + lead, end) if end is not None else now + lead
    after_root = and_(StoryRow.root_due < now, root_out, followup_ahead)
    if start is not None:
        after_root = and_(after_root, StoryRow.root_due >= start)
    where = [or_(StoryRow.root_due >= low, after_root), StoryRow.root_due < high, reveal == "", ~skipped]
    if story_id is not None:
        where.append(StoryRow.id == story_id)
    with store.session() as session:
        rows = session.execute(select(StoryRow.id, content["headline"].as_string(), StoryRow.root_due, StoryRow.draft)
                               .where(*where)
                               .order_by(StoryRow.root_due, StoryRow.id))
        return [StoryDue(sid, _aware(due), headline or "", bool(draft), True) for sid, headline, due, draft in rows]


def _epoch(store: Store, column: Any) -> Any:
    """A stored UTC time as whole seconds since 1970, in the database's own terms."""
    if store.is_sqlite:
        return cast(func.strftime("%s", column), BigInteger)
    return cast(func.floor(func.extract("epoch", column)), BigInteger)


def drafts(store: Store, *, start: dt.datetime | None = None, end: dt.datetime | None = None,
           limit: int | None = None, now: dt.datetime | None = None,
           lead: dt.timedelta | None = None) -> tuple[int, list[StoryDue]]:
    """How many drafts are due in ``[start, end)`` (unbounded where not given), and the first ``limit`` of
    them by due time; with ``now`` and ``lead``, each says whether it needs a reveal."""
    where: list[Any] = [StoryRow.draft.is_(True)]
    if start is not None:
        where.append(StoryRow.root_due >= start)
    if end is not None:
        where.append(StoryRow.root_due < end)
    with store.session() as session:
        count = session.scalar(select(func.count()).select_from(StoryRow).where(*where)) or 0
        stmt = select(StoryRow.id, StoryRow.content, StoryRow.root_due).where(*where).order_by(StoryRow.root_due,
                                                                                               StoryRow.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        found = []
        for sid, content, due in session.execute(stmt):
            due = _aware(due)
            missing = not str((content or {}).get("one_year_later") or "").strip()
            soon = now is not None and lead is not None and in_reveal_lead(due, now, lead)
            found.append(StoryDue(sid, due, str((content or {}).get("headline") or ""), True, missing and soon))
    return count, found


@dataclasses.dataclass
class StatusView:
    counts: dict[str, int]
    by_platform: dict[str, dict[str, int]]
    problems: list[DeliveryRow]
    upcoming: list[DeliveryRow]
    platforms: list[PlatformRow]
    stories: int
    unrendered: int = 0
    """Stories whose posts are made a day before they are due."""
    workers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Live workers and the deliveries each holds."""
    drafts: int = 0
    """Stories not posted until approved (they have no deliveries)."""
    draft_stories: list[StoryDue] = dataclasses.field(default_factory=list)
    """The first drafts by due time."""
    needs_reveal: list[StoryDue] = dataclasses.field(default_factory=list)
    """Stories due within the reveal lead whose ``one_year_later`` is empty."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "stories": self.stories,
            "unrendered_stories": self.unrendered,
            "drafts": self.drafts,
            "draft_stories": [d.to_dict() for d in self.draft_stories],
            "needs_reveal": [d.to_dict() for d in self.needs_reveal],
            "workers": self.workers,
            "counts": self.counts,
            "by_platform": self.by_platform,
            "problems": [delivery_dict(r) for r in self.problems],
            "next": [delivery_dict(r) for r in self.upcoming],
            "platforms": [{"name": p.name, "paused_reason": p.paused_reason,
                           "retry_at": p.retry_at.isoformat() if p.retry_at else None} for p in self.platforms],
        }


def status(store: Store, now: dt.datetime, *, problems: int = 20, upcoming: int = 5,
           reveal_lead: dt.timedelta | None = None, followup_delay: dt.timedelta = dt.timedelta(0),
           drafts_listed: int = 50) -> StatusView:
    """The queue at a glance. With ``reveal_lead`` (``settings.reveal_lead``), the stories that still need
    a reveal are listed (:func:`needs_reveal`, with ``settings.followup_delay``); the first
    ``drafts_listed`` drafts are always listed."""
    draft_count, draft_list = drafts(store, limit=drafts_listed, now=now, lead=reveal_lead)
    missing = needs_reveal(store, now, reveal_lead, followup_delay=followup_delay) if reveal_lead is not None else []
    with store.session() as session:
        counts: Counter[str] = Counter()
        by_platform: dict[str, dict[str, int]] = defaultdict(dict)
        for platform, state, count in session.execute(
            select(DeliveryRow.platform, DeliveryRow.status, func.count()).group_by(DeliveryRow.platform,
                                                                                     DeliveryRow.status)
        ):
            counts[state] += count
            by_platform[platform][state] = count
        trouble = list(session.scalars(
            select(DeliveryRow).where(DeliveryRow.status.in_(NEEDS_ATTENTION | {S.SENDING})
                                      | DeliveryRow.last_error.is_not(None) & (DeliveryRow.status == S.PENDING))
            .order_by(DeliveryRow.updated_at.desc()).limit(problems)))
        nxt = list(session.scalars(
            select(DeliveryRow).where(DeliveryRow.status == S.PENDING)
            .order_by(DeliveryRow.due_at, DeliveryRow.id).limit(upcoming)))
        platforms = list(session.scalars(select(PlatformRow).where(
            or_(PlatformRow.paused_reason.is_not(None), PlatformRow.retry_at > now))))
        stories = session.scalar(select(func.count()).select_from(StoryRow)) or 0
        unrendered = session.scalar(select(func.count()).select_from(StoryRow)
                                    .where(StoryRow.rendered.is_(False), StoryRow.draft.is_(False))) or 0
        workers = []
        for worker in session.scalars(select(WorkerRow).order_by(WorkerRow.started_at)):
            holds = [f"#{d.id} {d.story_id} {d.platform} {d.kind}" for d in session.scalars(
                select(DeliveryRow).where(DeliveryRow.claimed_by == worker.id, DeliveryRow.status == S.SENDING))]
            workers.append({"id": worker.id, "platforms": worker.platforms, "started_at": worker.started_at.isoformat(),
                            "heartbeat_at": worker.heartbeat_at.isoformat(),
                            "alive": worker.heartbeat_at > now - dt.timedelta(minutes=10), "holds": holds})
    return StatusView(dict(counts), dict(by_platform), trouble, nxt, platforms, stories, unrendered, workers,
                      draft_count, draft_list, missing)


def delivery_target(target: str) -> int | None:
    """The delivery id ``target`` names (``#12``), or ``None`` when it names a story.

    A delivery is always written with a ``#`` (``#12``, as ``status`` prints it); anything else is a
    story id, even all digits, so a story whose id is ``1`` is never mistaken for delivery #1.
    """
    target = target.strip()
    if not target.startswith("#"):
        return None
    number = target[1:].strip()
    if not number.isascii() or not number.isdigit():
        raise BotError(f"{target[:40]!r} is not a delivery id: write a delivery as #12 (the number `status` "
                       "shows), a story by its id")
    return int(number)


def deliveries_for(session: Any, target: str) -> list[DeliveryRow]:
    """The deliveries ``target`` names: one delivery by its id written ``#12``, or all of a story's."""
    target = target.strip()
    number = delivery_target(target)
    if number is not None:
        row = session.get(DeliveryRow, number)
        if row is None:
            raise NotFound(f"no delivery #{number} (see `oneyearago status` for delivery ids)")
        return [row]
    return story_deliveries(session, target)


def story_deliveries(session: Any, story_id: str) -> list[DeliveryRow]:
    """Every delivery of the story ``story_id`` (a story id, never a delivery id)."""
    rows = list(session.scalars(select(DeliveryRow).where(DeliveryRow.story_id == story_id)
                                .order_by(DeliveryRow.platform, DeliveryRow.kind.desc(), DeliveryRow.part)))
    if not rows:
        hint = ""
        if story_id.isascii() and story_id.isdigit() and session.get(DeliveryRow, int(story_id)) is not None:
            hint = (f"; to name delivery #{story_id}, write '#{story_id}' (quoted in a shell) or "
                    f"--delivery {story_id}")
        raise NotFound(f"no story {story_id[:80]!r}{hint} (see `oneyearago agenda` or `status` for ids)")
    return rows


def skip(store: Store, story_id: str, now: dt.datetime, planner: Any = None) -> list[DeliveryRow]:
    """Mark every not-yet-sent delivery of a story skipped (rendering it first if need be)."""
    if story_id.strip().startswith("#"):
        raise BotError(f"skip takes a story id, not a delivery ({story_id[:40]!r}): a story is skipped whole")
    if planner is not None:
        planner.render_stories([story_id], now=now)
    with store.session() as session:
        if session.get(StoryRow, story_id) is None:
            raise NotFound(f"no story {story_id!r} (see `oneyearago agenda` for ids)")
        ids = [r.id for r in story_deliveries(session, story_id) if r.status in SKIPPABLE]
        if not ids:
            return []
        # compare-and-set: a delivery a worker claimed since it was read above is no longer unsent,
        # and is left to the worker (it goes out, and is not reported as skipped)
        skip_by_operator(session, ids, SKIPPABLE, now)
        return list(session.scalars(select(DeliveryRow).where(DeliveryRow.id.in_(ids),
                                                               DeliveryRow.status == S.SKIPPED)
                                    .order_by(DeliveryRow.platform, DeliveryRow.kind.desc(), DeliveryRow.part)
                                    .execution_options(populate_existing=True)))


def retry(store: Store, target: str, now: dt.datetime, settings: Settings,
          platform: str | None = None) -> list[DeliveryRow]:
    """Put failed, missed, unconfirmed or skipped deliveries back in the queue, due now.

    A retried root that was due in the past goes out now, and its follow-up moves so that it
    still comes its delay after the root.
    """
    with store.session() as session:
        rows = [r for r in deliveries_for(session, target) if r.status in RETRYABLE
                and (platform is None or r.platform == platform)]
        if not rows:
            raise BotError(f"nothing to retry for {target!r}: only failed, missed, unconfirmed or skipped "
                           "deliveries can be retried")
        unrendered = {r.story_id for r in rows if r.length == 0 and not r.text}
        for sid in unrendered:  # never rendered (it failed to): render again on the next sweep
            for row in [r for r in rows if r.story_id == sid]:
                session.delete(row)
            story_row = session.get(StoryRow, sid)
            if story_row is not None:
                story_row.rendered = False
        rows = [r for r in rows if r.story_id not in unrendered]
        for row in rows:
            retry_by_operator(row, now)
            if row.kind == "root" and row.due_at < now:
                shift = now - row.due_at
                row.due_at = now
                for follow in session.scalars(select(DeliveryRow).where(
                        DeliveryRow.story_id == row.story_id, DeliveryRow.platform == row.platform,
                        DeliveryRow.kind == "followup", DeliveryRow.status.in_(SKIPPABLE))):
                    follow.due_at = follow.due_at + shift
            if row.platform:
                state = session.get(PlatformRow, row.platform)
                if state is not None and state.paused_reason:
                    state.paused_reason = None
        return rows


def story(store: Store, story_id: str) -> Story:
    with store.session() as session:
        row = session.get(StoryRow, story_id)
        if row is None:
            raise NotFound(f"no story {story_id!r} (see `oneyearago agenda` for ids)")
        return Story.from_content(row.content)


def preview(store: Store, settings: Settings, story_id: str, platform: str | None = None,
            templates: Any = None) -> list[Part]:
    """Each part of a queued story as it will be posted (from the queue when already rendered)."""
    item = story(store, story_id)
    with store.session() as session:
        due = session.scalar(select(StoryRow.root_due).where(StoryRow.id == story_id))
    options = dataclasses.replace(render_options(settings, templates, store), created_at=iso_utc(due) if due else None)
    platforms = [platform] if platform else [p for p in settings.platforms
                                             if not item.platforms or p in item.platforms]
    parts: list[Part] = []
    for name in platforms:
        parts.extend(render(item, name, options))
    return parts
