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
from bot.quotas import DayCount, day_counts
from bot.store import Store
from posts.render import Part
from posts.story import PLATFORMS, Story

PLATFORM_NAMES = {"x": "X", "reddit": "Reddit", "bluesky": "Bluesky"}
MAX_WEEKS = 8
"""The longest range the calendar shows at once."""
DAY_LIMIT = 25
"""Posts shown per platform per day on the calendar; the rest are a "N more" link to the day's pages."""
PAGE_LIMIT = 200
"""Posts shown per platform on one page of a day."""
NOT_RENDERED = "queued"
"""The status shown for a post of a story that is not rendered yet (its deliveries are made a day ahead)."""
PROBLEM_STATUSES = (S.FAILED.value, S.MISSED.value, S.UNCONFIRMED.value)
LATE = dt.timedelta(minutes=5)
"""A pending post this far past its due time shows as late."""
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
    sort_key: tuple[Any, ...] = ()

    @property
    def problem(self) -> bool:
        return self.status in PROBLEM_STATUSES


@dataclasses.dataclass
class PlatformDay:
    platform: str
    name: str
    entries: list[Entry]
    count: DayCount | None
    more: int = 0
    """Entries of the day not shown (over :data:`DAY_LIMIT`, or on other pages of the day)."""
    posts: int = 0
    """Posts of the day on this platform, shown or not (each part of a thread is a post)."""
    problems: int = 0
    late: int = 0

    @property
    def over(self) -> list[str]:
        return self.count.over if self.count else []


@dataclasses.dataclass
class Day:
    date: dt.date
    today: bool
    past: bool
    platforms: list[PlatformDay]
    page: int = 0
    """Which page of the day is shown (0: the calendar's first :data:`DAY_LIMIT` per platform)."""
    pages: int = 1

    @property
    def posts(self) -> int:
        """Posts on the day, shown or not (each part of a thread is a post; a story not rendered
        yet counts one root and one follow-up per platform)."""
        return sum(p.posts for p in self.platforms)

    @property
    def more(self) -> int:
        return sum(p.more for p in self.platforms)

    @property
    def over(self) -> list[str]:
        return [f"{p.name}: {reason}" for p in self.platforms for reason in p.over]

    @property
    def problems(self) -> int:
        return sum(p.problems for p in self.platforms)

    @property
    def late(self) -> int:
        return sum(p.late for p in self.platforms)


@dataclasses.dataclass
class Calendar:
    start: dt.date
    days: list[Day]
    weeks: int
    zone: str
    prev_start: dt.date
    next_start: dt.date
    this_week: dt.date
    unrendered: int = 0
    """Stories in the range whose deliveries are not made yet (shown from their story rows)."""

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=7 * self.weeks - 1)


def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


def calendar(store: Store, settings: Settings, *, now: dt.datetime, start: dt.date | None = None,
             weeks: int = 2, day: dt.date | None = None, page: int = 1) -> Calendar:
    """``weeks`` weeks from the Monday of ``start`` (default: this week), day by day, in the bot's zone.

    Read only: deliveries come from the queue, and a story not rendered yet shows its root and
    follow-up at their due times from its story row (rendering waits for the engine, a day
    ahead). Each platform shows at most :data:`DAY_LIMIT` posts a day; ``day`` shows that day's
    ``page`` of :data:`PAGE_LIMIT` posts per platform instead.
    """
    zone = ZoneInfo(settings.timezone)
    today = now.astimezone(zone).date()
    weeks = min(max(weeks, 1), MAX_WEEKS)
    first = monday(start or today)
    last = first + dt.timedelta(days=7 * weeks)
    begin, end = local_midnight(first, zone), local_midnight(last, zone)
    rows: list[Any] = _deliveries(store, begin, end)
    planned, unrendered = _unrendered(store, settings, begin, end)
    rows.extend(planned)
    counts = {(c.day, c.platform): c for c in day_counts(rows, settings)}
    titles = headlines(store, {r.story_id for r in rows if not isinstance(r, _Planned)})
    titles.update({r.story_id: r.headline for r in planned})
    grouped: dict[tuple[dt.date, str], dict[tuple[str, str, dt.datetime], list[Any]]] = defaultdict(dict)
    for row in rows:
        local_day = row.due_at.astimezone(zone).date()
        grouped[(local_day, row.platform)].setdefault((row.story_id, row.kind, row.due_at), []).append(row)
    platforms = list(settings.platforms) + sorted({r.platform for r in rows} - set(settings.platforms))
    days = []
    for offset in range(7 * weeks):
        date = first + dt.timedelta(days=offset)
        threads = {platform: sorted(grouped.get((date, platform), {}).values(),
                                    key=lambda items: (items[0].due_at, items[0].kind != "root", items[0].story_id))
                   for platform in platforms}
        pages = max(1, -(-max(map(len, threads.values()), default=0) // PAGE_LIMIT))
        number = min(max(page, 1), pages) if date == day else 0
        size, skip = (PAGE_LIMIT, (number - 1) * PAGE_LIMIT) if number else (DAY_LIMIT, 0)
        per_platform = []
        for platform, ordered in threads.items():
            shown = ordered[skip:skip + size]
            entries = [_entry(items, titles, zone, now, settings) for items in shown]
            count = counts.get((date.isoformat(), platform))
            if entries or count or ordered:
                problems = late = 0
                for items in ordered:
                    head = min(items, key=lambda r: STATUS_RANK.get(r.status, 9)).status
                    problems += head in PROBLEM_STATUSES
                    late += head == S.PENDING.value and min(r.due_at for r in items) < now - LATE
                per_platform.append(PlatformDay(
                    platform, PLATFORM_NAMES.get(platform, platform), entries, count, more=len(ordered) - len(shown),
                    posts=sum(max(r.parts for r in items) for items in ordered), problems=problems, late=late))
        days.append(Day(date, date == today, date < today, per_platform, page=number, pages=pages))
    return Calendar(first, days, weeks, settings.timezone, first - dt.timedelta(days=7),
                    first + dt.timedelta(days=7), monday(today), unrendered)


_DELIVERY_COLUMNS = (DeliveryRow.id, DeliveryRow.story_id, DeliveryRow.platform, DeliveryRow.kind, DeliveryRow.part,
                     DeliveryRow.parts, DeliveryRow.due_at, DeliveryRow.status, DeliveryRow.remote_url,
                     DeliveryRow.last_error, DeliveryRow.posted_at, DeliveryRow.text)


def _deliveries(store: Store, begin: dt.datetime, end: dt.datetime) -> list[Any]:
    """The deliveries due in ``[begin, end)``: the columns the calendar shows, not whole rows."""
    with store.session() as session:
        return list(session.execute(select(*_DELIVERY_COLUMNS)
                                    .where(DeliveryRow.due_at >= begin, DeliveryRow.due_at < end)))


@dataclasses.dataclass
class _Planned:
    """A post of a story that is not rendered yet, as the calendar counts and shows it."""

    story_id: str
    headline: str
    platform: str
    kind: str
    due_at: dt.datetime
    text: str
    id: int = 0
    part: int = 1
    parts: int = 1
    status: str = NOT_RENDERED
    remote_url: str | None = None
    last_error: str | None = None
    posted_at: dt.datetime | None = None


def _unrendered(store: Store, settings: Settings, begin: dt.datetime, end: dt.datetime
                ) -> tuple[list[_Planned], int]:
    """The posts of stories not rendered yet that fall in ``[begin, end)``, read from their story
    rows (a few fields of each, never the whole story) without rendering or storing anything.

    A follow-up is looked for up to a week after its root, as rendering would place it.
    """
    content = StoryRow.content
    with store.session() as session:
        found = session.execute(
            select(StoryRow.id, StoryRow.root_due, content["headline"].as_string(), content["url"].as_string(),
                   content["platforms"], content["followup_after"])
            .where(StoryRow.rendered.is_(False), StoryRow.root_due >= begin - dt.timedelta(days=7),
                   StoryRow.root_due < end)).all()
    planned: list[_Planned] = []
    stories = 0
    for story_id, root_due, headline, url, only, after in found:
        root_due = root_due if root_due.tzinfo else root_due.replace(tzinfo=dt.UTC)
        delay = dt.timedelta(seconds=int(after)) if isinstance(after, int | float) and after else \
            settings.followup_delay
        followup = root_due + delay
        inside = False
        for platform in settings.platforms:
            if isinstance(only, list) and only and platform not in only:
                continue
            for kind, due in (("root", root_due), ("followup", followup)):
                if begin <= due < end:
                    text = (url or "") if kind == "root" else ""
                    planned.append(_Planned(story_id, headline or "", platform, kind, due, text))
                    inside = True
        stories += inside
    return planned, stories


def _entry(items: list[Any], titles: dict[str, str], zone: ZoneInfo, now: dt.datetime,
           settings: Settings) -> Entry:
    items = sorted(items, key=lambda r: r.part)
    head = min(items, key=lambda r: STATUS_RANK.get(r.status, 9))
    first = items[0]
    late = head.status == S.PENDING.value and first.due_at < now - LATE
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
