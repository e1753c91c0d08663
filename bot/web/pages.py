"""What each page shows, computed from the store through bot.ops, bot.queue and bot.quotas.

Nothing here renders HTML: the functions build plain data for the Jinja2 templates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot import ops
from bot.config import Settings
from bot.models import DeliveryRow, StoryRow
from bot.models import Status as S
from bot.queue import Planner
from bot.quotas import DayCount
from bot.store import Store
from posts.render import Part
from posts.story import PLATFORMS, Story

PLATFORM_NAMES = {"x": "X", "reddit": "Reddit", "bluesky": "Bluesky"}
PROBLEM_STATUSES = (S.FAILED.value, S.MISSED.value, S.UNCONFIRMED.value)
STATUS_RANK = {S.FAILED.value: 0, S.UNCONFIRMED.value: 1, S.MISSED.value: 2, S.SENDING.value: 3,
               S.PENDING.value: 4, S.SKIPPED.value: 5, S.POSTED.value: 6}
"""Which status a group of thread parts shows: the one that most needs attention."""


def headlines(store: Store, story_ids: Iterable[str]) -> dict[str, str]:
    """The headline of each story id (missing ids are left out)."""
    ids = list(dict.fromkeys(story_ids))
    found: dict[str, str] = {}
    with store.session() as session:
        for start in range(0, len(ids), 500):
            for sid, content in session.execute(select(StoryRow.id, StoryRow.content)
                                                .where(StoryRow.id.in_(ids[start:start + 500]))):
                found[sid] = str(content.get("headline", ""))
    return found


# ---------------------------------------------------------------------------- calendar


@dataclasses.dataclass
class Entry:
    """One post on the calendar: a root, or a follow-up thread (its parts share a due time)."""

    time: str
    story_id: str
    headline: str
    kind: str
    parts: int
    status: str
    late: bool
    reason: str
    delivery_ids: list[int]
    remote_url: str | None
    head_id: int
    """The delivery whose status the entry shows (the one that most needs attention)."""

    @property
    def problem(self) -> bool:
        return self.status in PROBLEM_STATUSES


@dataclasses.dataclass
class PlatformDay:
    platform: str
    name: str
    entries: list[Entry]
    count: DayCount | None

    @property
    def over(self) -> list[str]:
        return self.count.over if self.count else []


@dataclasses.dataclass
class Day:
    date: dt.date
    today: bool
    past: bool
    platforms: list[PlatformDay]

    @property
    def posts(self) -> int:
        """Posts on the day (each part of a thread is a post)."""
        return sum(e.parts for p in self.platforms for e in p.entries)

    @property
    def over(self) -> list[str]:
        return [f"{p.name}: {reason}" for p in self.platforms for reason in p.over]

    @property
    def problems(self) -> int:
        return sum(1 for p in self.platforms for e in p.entries if e.problem)

    @property
    def late(self) -> int:
        return sum(1 for p in self.platforms for e in p.entries if e.late)


@dataclasses.dataclass
class Calendar:
    start: dt.date
    days: list[Day]
    weeks: int
    zone: str
    prev_start: dt.date
    next_start: dt.date
    this_week: dt.date

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=7 * self.weeks - 1)


def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def calendar(store: Store, settings: Settings, planner: Planner, *, now: dt.datetime,
             start: dt.date | None = None, weeks: int = 2) -> Calendar:
    """``weeks`` weeks from the Monday of ``start`` (default: this week), day by day, in the bot's zone."""
    zone = ZoneInfo(settings.timezone)
    today = now.astimezone(zone).date()
    first = monday(start or today)
    last = first + dt.timedelta(days=7 * weeks)
    rows = ops.agenda(store, start=local_midnight(first, zone), end=local_midnight(last, zone), planner=planner)
    counts = {(c.day, c.platform): c for c in ops.day_counts(rows, settings)}
    titles = headlines(store, (r.story_id for r in rows))
    grouped: dict[tuple[dt.date, str], dict[tuple[str, str, dt.datetime], list[DeliveryRow]]] = defaultdict(dict)
    for row in rows:
        day = row.due_at.astimezone(zone).date()
        grouped[(day, row.platform)].setdefault((row.story_id, row.kind, row.due_at), []).append(row)
    platforms = list(settings.platforms) + sorted({r.platform for r in rows} - set(settings.platforms))
    days = []
    for offset in range(7 * weeks):
        day = first + dt.timedelta(days=offset)
        per_platform = []
        for platform in platforms:
            threads = grouped.get((day, platform), {})
            entries = [_entry(items, titles, zone, now, settings) for items in threads.values()]
            count = counts.get((day.isoformat(), platform))
            if entries or count:
                per_platform.append(PlatformDay(platform, PLATFORM_NAMES.get(platform, platform), entries, count))
        days.append(Day(day, day == today, day < today, per_platform))
    return Calendar(first, days, weeks, settings.timezone, first - dt.timedelta(days=7),
                    first + dt.timedelta(days=7), monday(today))


def _entry(items: list[DeliveryRow], titles: dict[str, str], zone: ZoneInfo, now: dt.datetime,
           settings: Settings) -> Entry:
    items = sorted(items, key=lambda r: r.part)
    head = min(items, key=lambda r: STATUS_RANK.get(r.status, 9))
    first = items[0]
    late = head.status == S.PENDING.value and first.due_at < now - dt.timedelta(minutes=5)
    reasons = [r.last_error for r in items if r.last_error and r.status != S.POSTED.value]
    return Entry(time=first.due_at.astimezone(zone).strftime("%H:%M"), story_id=first.story_id,
                 headline=titles.get(first.story_id, ""), kind=first.kind, parts=max(r.parts for r in items),
                 status=head.status, late=late, reason=reasons[0] if reasons else "",
                 delivery_ids=[r.id for r in items], remote_url=first.remote_url, head_id=head.id)


# ---------------------------------------------------------------------------- story page


@dataclasses.dataclass
class PostView:
    """One part as its platform will show it, with the delivery that sends it (if queued)."""

    part: Part
    delivery: DeliveryRow | None

    @property
    def status(self) -> str:
        return self.delivery.status if self.delivery else "not queued"

    @property
    def queued_text_differs(self) -> bool:
        return self.delivery is not None and bool(self.delivery.text) and self.delivery.text != self.part.text


@dataclasses.dataclass
class ThreadView:
    platform: str
    name: str
    root: PostView
    replies: list[PostView]


@dataclasses.dataclass
class StoryView:
    story: Story
    origin: str
    root_due: dt.datetime | None
    threads: list[ThreadView]
    deliveries: list[DeliveryRow]
    render_error: str = ""

    @property
    def can_skip(self) -> bool:
        return any(d.status in ops.NOT_SENT for d in self.deliveries)

    @property
    def can_retry(self) -> bool:
        return any(d.status in ops.RETRYABLE for d in self.deliveries)

    @property
    def posted_links(self) -> list[DeliveryRow]:
        return [d for d in self.deliveries if d.remote_url]


def story_view(store: Store, settings: Settings, story_id: str, *, templates: Any = None) -> StoryView:
    """A story's threads on every platform, rendered as :func:`bot.ops.preview` renders them."""
    item = ops.story(store, story_id)
    with store.session() as session:
        row = session.get(StoryRow, story_id)
        origin, root_due = (row.origin, row.root_due) if row is not None else ("", None)
        deliveries = list(session.scalars(
            select(DeliveryRow).where(DeliveryRow.story_id == story_id)
            .order_by(DeliveryRow.platform, DeliveryRow.kind.desc(), DeliveryRow.part)))
    by_slot = {(d.platform, d.kind, d.part): d for d in deliveries}
    error = ""
    try:
        parts = ops.preview(store, settings, story_id, templates=templates)
    except ValueError as exc:
        parts, error = [], str(exc)
    threads: list[ThreadView] = []
    order = [p for p in PLATFORMS if p in {part.platform for part in parts}]
    for platform in order:
        mine = [PostView(p, by_slot.get((p.platform, p.kind, p.part))) for p in parts if p.platform == platform]
        roots = [v for v in mine if v.part.kind == "root"]
        if not roots:
            continue
        threads.append(ThreadView(platform, PLATFORM_NAMES.get(platform, platform), roots[0],
                                  [v for v in mine if v.part.kind != "root"]))
    return StoryView(item, origin, root_due, threads, deliveries, error)


# ---------------------------------------------------------------------------- status page


@dataclasses.dataclass
class ProblemView:
    row: DeliveryRow
    headline: str

    @property
    def can_retry(self) -> bool:
        return self.row.status in ops.RETRYABLE

    @property
    def can_skip(self) -> bool:
        return self.row.status in ops.NOT_SENT


def status_view(store: Store, now: dt.datetime) -> dict[str, Any]:
    view = ops.status(store, now, problems=200, upcoming=10)
    titles = headlines(store, [r.story_id for r in view.problems + view.upcoming])
    order = [s.value for s in S]
    return {
        "view": view,
        "order": order,
        "problems": [ProblemView(r, titles.get(r.story_id, "")) for r in view.problems],
        "upcoming": [ProblemView(r, titles.get(r.story_id, "")) for r in view.upcoming],
        "titles": titles,
    }
