"""What each page shows, computed from the store through bot.ops, bot.planner and bot.quotas.

Nothing here renders HTML: the functions build plain data for the Jinja2 templates.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, case, cast, func, select

from bot import ops
from bot.config import Settings
from bot.images import pictures_info
from bot.links import LinkResult, result_for
from bot.models import NEEDS_ATTENTION, POSTING, RETRYABLE, SKIPPABLE, DeliveryRow, StoryRow
from bot.models import DeliveryStatus as S
from bot.quotas import DAY, DayCount, day_count, local_midnight
from bot.store import Store
from posts.gcpause import gc_paused
from posts.render import Part
from posts.story import PLATFORM_NAMES, PLATFORMS, Story
from posts.twitter_text import url_spans

MAX_WEEKS = 4
"""The longest range the calendar shows at once."""
DAY_LIMIT = 25
"""Most posts shown per platform per day on the calendar; the rest are a "N more" link to the day's pages."""
ENTRY_BUDGET = 1000
"""Posts shown on one calendar page in all: longer ranges show fewer per day (at least 5)."""
PAGE_LIMIT = 200
"""Posts shown per platform on one page of a day."""
NOT_RENDERED = "queued"
"""The status shown for a post of a story that is not rendered yet (its deliveries are made a day ahead)."""
LATE = dt.timedelta(minutes=5)
"""A pending post this far past its due time shows as late."""


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
    needs_reveal: bool = False
    """A post of a story due within the reveal lead whose ``one_year_later`` is empty."""

    @property
    def problem(self) -> bool:
        return self.status in NEEDS_ATTENTION


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
class DraftEntry:
    """A draft due on a day: shown apart, never counted as a post (it has none until approved)."""

    time: str
    story_id: str
    headline: str
    needs_reveal: bool = False


@dataclasses.dataclass
class Day:
    date: dt.date
    today: bool
    past: bool
    platforms: list[PlatformDay]
    page: int = 0
    """Which page of the day is shown (0: the calendar's first :data:`DAY_LIMIT` per platform)."""
    pages: int = 1
    drafts: list[DraftEntry] = dataclasses.field(default_factory=list)
    more_drafts: int = 0
    """Drafts of the day not shown (over :data:`DAY_LIMIT`)."""

    @property
    def reveals(self) -> int:
        """Stories of the day shown as needing a reveal (drafts included)."""
        ids = {e.story_id for p in self.platforms for e in p.entries if e.needs_reveal}
        return len(ids | {d.story_id for d in self.drafts if d.needs_reveal})

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
    drafts: int = 0
    """Drafts due in the range (shown apart: they are not posted until approved)."""

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=7 * self.weeks - 1)


def monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def calendar(store: Store, settings: Settings, *, now: dt.datetime, start: dt.date | None = None,
             weeks: int = 2, day: dt.date | None = None, page: int = 1) -> Calendar:
    """``weeks`` weeks from the Monday of ``start`` (default: this week), day by day, in the bot's zone.

    Read only: deliveries come from the queue, and a story not rendered yet shows its root and
    follow-up at their due times from a few fields of its story row (rendering waits for the
    engine, a day ahead). Each platform shows at most :func:`day_limit` posts a day; ``day``
    shows that day's ``page`` of :data:`PAGE_LIMIT` posts per platform instead. Each post of the
    range costs an index entry and a few tuple operations; only the posts shown are read whole.
    """
    with gc_paused():  # tens of thousands of small objects, no cycles: nothing for the collector
        return _calendar(store, settings, now=now, start=start, weeks=weeks, day=day, page=page)


def _calendar(store: Store, settings: Settings, *, now: dt.datetime, start: dt.date | None, weeks: int,
              day: dt.date | None, page: int) -> Calendar:
    zone = ZoneInfo(settings.timezone)
    today = now.astimezone(zone).date()
    weeks = min(max(weeks, 1), MAX_WEEKS)
    first = monday(start or today)
    dates = [first + dt.timedelta(days=i) for i in range(7 * weeks)]
    midnights = [local_midnight(d, zone) for d in [*dates, first + dt.timedelta(days=7 * weeks)]]
    begin, end = midnights[0], midnights[-1]

    edges = [m.timestamp() for m in midnights]

    def index(when: float) -> int:
        return bisect.bisect_right(edges, when) - 1

    rows, posted, linked_ids = _deliveries(store, begin, end)
    planned, unrendered = _unrendered(store, settings, begin, end, earlier=DAY)
    # the posts of the day before count in the first day's quota windows, as they do for the engine
    earlier = [p for p in planned if p.due < edges[0]]
    planned = planned[len(earlier):]
    platforms = list(settings.platforms) + sorted({r[0] for r in rows} - set(settings.platforms))
    # what each day holds, per platform: (due, order, delivery or planned post), counted times, X links
    held: list[dict[str, list[tuple[float, tuple[Any, ...], Any]]]] = [defaultdict(list) for _ in dates]
    counted: list[dict[str, list[float]]] = [defaultdict(list) for _ in dates]
    linked: list[Counter[str]] = [Counter() for _ in dates]
    before: dict[str, list[float]] = defaultdict(list)
    for platform, status, due, id_ in rows:
        i = index(due)
        if 0 <= i < len(dates):
            held[i][platform].append((due, (0, id_), (platform, status, due, id_)))
        if status not in POSTING:
            continue
        when = posted.get(id_, due)
        i = index(when)
        if 0 <= i < len(dates):
            counted[i][platform].append(when)
            if id_ in linked_ids:
                linked[i][platform] += 1
        elif i < 0:
            before[platform].append(when)
    limit = day_limit(len(dates), len(platforms))
    by_day: list[list[_Item]] = [[] for _ in dates]
    for plan in planned:
        by_day[index(plan.due)].append(plan)
    late_before, pending = (now - LATE).timestamp(), S.PENDING
    mine_of_day = [_own_posts(by_day[i], platforms) for i in range(len(dates))]
    # every post that counts against a quota, per platform, for the rolling windows (bot.quotas)
    earlier_of = _own_posts(earlier, platforms)
    timeline = {platform: sorted([*before[platform], *(p.due for p in earlier_of[platform])]
                                 + [when for i in range(len(dates)) for when in counted[i][platform]]
                                 + [p.due for i in range(len(dates)) for p in mine_of_day[i][platform]])
                for platform in platforms}
    days: list[Day] = []
    wanted: set[Any] = set()
    for i, date in enumerate(dates):
        mine = mine_of_day[i]
        ordered = {}
        for platform in platforms:
            plans = [(p.due, (1, p.kind != "root", p.story_id), p) for p in mine[platform]]  # in order already
            rendered = held[i][platform]
            ordered[platform] = sorted(rendered + plans, key=lambda e: (e[0], e[1])) if rendered else plans
        pages = max(1, -(-max(map(len, ordered.values()), default=0) // PAGE_LIMIT))
        number = min(max(page, 1), pages) if date == day else 0
        size, skip = (PAGE_LIMIT, (number - 1) * PAGE_LIMIT) if number else (limit, 0)
        per_platform = []
        for platform in platforms:
            posts_of_day = ordered[platform]
            if not posts_of_day and not counted[i][platform]:
                continue
            shown = [e[2] for e in posts_of_day[skip:skip + size]]
            wanted.update(e[3] for e in shown if isinstance(e, tuple))
            links = linked[i][platform] + sum(1 for p in mine[platform] if p.link)
            statuses = [e[2][1] for e in held[i][platform]]
            count = day_count(date, platform, timeline[platform], edges[i], edges[i + 1], links, settings)
            per_platform.append(PlatformDay(
                platform, PLATFORM_NAMES.get(platform, platform), shown, count,  # type: ignore[arg-type]
                more=len(posts_of_day) - len(shown), posts=len(posts_of_day),
                problems=sum(1 for status in statuses if status in NEEDS_ATTENTION),
                late=sum(1 for e in held[i][platform] if e[2][1] == pending and e[0] < late_before)))
        days.append(Day(date, date == today, date < today, per_platform, page=number, pages=pages))
    details = _details(store, wanted)
    for d in days:
        for p in d.platforms:
            p.entries = _threads([e if isinstance(e, _Item) else details[e[3]] for e in p.entries if  # type: ignore[assignment,index]
                                  isinstance(e, _Item) or e[3] in details])  # type: ignore[index]
    titles = headlines(store, {items[0].story_id for d in days for p in d.platforms for items in p.entries})  # type: ignore[index]
    reveal = {r.id for r in ops.needs_reveal(store, now, settings.reveal_lead, start=begin, end=end,
                                               followup_delay=settings.followup_delay)}
    for d in days:
        for p in d.platforms:
            p.entries = [_entry(items, titles, zone, now, settings) for items in p.entries]  # type: ignore[arg-type]
            for e in p.entries:
                e.needs_reveal = e.kind == "root" and e.story_id in reveal  # type: ignore[union-attr]
    drafts = _drafts(store, begin, end)
    for story_id, due, headline in drafts:
        d = days[index(due)]
        if len(d.drafts) < DAY_LIMIT:
            d.drafts.append(DraftEntry(dt.datetime.fromtimestamp(due, zone).strftime("%H:%M"), story_id, headline,
                                       story_id in reveal))
        else:
            d.more_drafts += 1
    return Calendar(first, days, weeks, settings.timezone, first - dt.timedelta(days=7),
                    first + dt.timedelta(days=7), monday(today), unrendered, len(drafts))


def _drafts(store: Store, begin: dt.datetime, end: dt.datetime) -> list[tuple[str, float, str]]:
    """The drafts due in ``[begin, end)``: (id, due time in POSIX seconds, headline), in due order."""
    with store.session() as session:
        found = session.execute(
            select(StoryRow.id, _epoch(store, StoryRow.root_due), StoryRow.content["headline"].as_string())
            .where(StoryRow.draft.is_(True), StoryRow.root_due >= begin, StoryRow.root_due < end)
            .order_by(StoryRow.root_due, StoryRow.id)).all()
    return [(sid, float(due), headline or "") for sid, due, headline in found]


def day_limit(days: int, platforms: int) -> int:
    """Posts shown per platform per day on a calendar of ``days`` days (the rest: "N more")."""
    return max(5, min(DAY_LIMIT, ENTRY_BUDGET // max(1, days * platforms)))


def _own_posts(plans: list[_Item], platforms: list[str]) -> dict[str, list[_Item]]:
    """The posts of stories not rendered yet in ``plans`` that each platform makes."""
    if any(p.only for p in plans):
        return {platform: [p for p in plans if p.only is None or platform in p.only] for platform in platforms}
    return dict.fromkeys(platforms, plans)


@dataclasses.dataclass(slots=True)
class _Item:
    """A post on the calendar: a delivery, or a post of a story not rendered yet (``status``
    :data:`NOT_RENDERED`). Times are POSIX seconds; only the posts shown get a datetime."""

    story_id: str
    platform: str
    kind: str
    due: float
    status: str = NOT_RENDERED
    link: bool = False
    """An X post with a link (X's price differs)."""
    id: int = 0
    part: int = 1
    parts: int = 1
    remote_url: str | None = None
    last_error: str | None = None
    only: frozenset[str] | None = None
    """A story not rendered yet that names its own platforms: those."""

    @property
    def due_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.due, dt.UTC)


def _epoch(store: Store, column: Any) -> Any:
    """``column`` (a stored UTC time) as POSIX seconds, computed by the database."""
    if store.is_sqlite:  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff': whole seconds, then the fraction
        return cast(func.strftime("%s", column), Float) + cast(func.substr(column, 20), Float)
    return cast(func.extract("epoch", column), Float)


ALL_STATUSES = tuple(S)
"""Every status, so that a due-time range reads the (status, due_at) index."""


def _deliveries(store: Store, begin: dt.datetime, end: dt.datetime
                ) -> tuple[list[tuple[str, str, float, int]], dict[int, float], set[int]]:
    """The deliveries due in ``[begin, end)`` (and those posted in it up to a day after their due
    time): (platform, status, due time, id) of each, read from the (platform, status, due_at) index
    alone; when each one posted was posted; and which X posts have a link (X's price differs).
    Times are POSIX seconds, computed by the database."""
    since = begin - dt.timedelta(days=1)
    in_range = (DeliveryRow.platform.in_(PLATFORMS), DeliveryRow.status.in_(ALL_STATUSES),
                DeliveryRow.due_at >= since, DeliveryRow.due_at < end)
    x_text = case((DeliveryRow.text.contains("://"), ""), else_=DeliveryRow.text)
    with store.session() as session:
        connection = session.connection()
        rows = connection.execute(select(DeliveryRow.platform, DeliveryRow.status, _epoch(store, DeliveryRow.due_at),
                                         DeliveryRow.id).where(*in_range)).cursor.fetchall()
        posted = dict(connection.execute(
            select(DeliveryRow.id, _epoch(store, DeliveryRow.posted_at)).where(
                DeliveryRow.status == S.POSTED, DeliveryRow.posted_at.is_not(None),
                DeliveryRow.due_at >= since, DeliveryRow.due_at < end)).cursor.fetchall())
        # an X text comes back only when it has no "://" (else "": it has a link), to be scanned here
        x_rows = connection.execute(select(DeliveryRow.id, x_text).where(
            DeliveryRow.platform == "x", DeliveryRow.status.in_(sorted(POSTING)),
            DeliveryRow.due_at >= since, DeliveryRow.due_at < end)).cursor.fetchall()
    linked = {id_ for id_, text in x_rows if text == "" or (text and url_spans(text))}
    return [(p, st, float(due), id_) for p, st, due, id_ in rows], \
        {id_: float(when) for id_, when in posted.items()}, linked


def _details(store: Store, ids: set[int]) -> dict[int, _Item]:
    """The deliveries shown on the calendar, with what their entries show."""
    found: dict[int, _Item] = {}
    ordered = sorted(ids)
    with store.session() as session:
        connection = session.connection()
        for start in range(0, len(ordered), 500):
            for (id_, story_id, platform, kind, part, parts, status, due, remote_url, last_error
                 ) in connection.execute(select(
                     DeliveryRow.id, DeliveryRow.story_id, DeliveryRow.platform, DeliveryRow.kind, DeliveryRow.part,
                     DeliveryRow.parts, DeliveryRow.status, _epoch(store, DeliveryRow.due_at), DeliveryRow.remote_url,
                     DeliveryRow.last_error).where(DeliveryRow.id.in_(ordered[start:start + 500]))).cursor.fetchall():
                found[id_] = _Item(story_id, platform, kind, float(due), status, id=id_, part=part, parts=parts,
                                   remote_url=remote_url, last_error=last_error)
    return found


def _threads(items: list[_Item]) -> list[list[_Item]]:
    """Shown posts grouped into threads (the parts of one story's post on one platform), in order."""
    threads: dict[tuple[str, str, float], list[_Item]] = {}
    for item in items:
        threads.setdefault((item.story_id, item.kind, item.due), []).append(item)
    return list(threads.values())


def _unrendered(store: Store, settings: Settings, begin: dt.datetime, end: dt.datetime, *,
                earlier: dt.timedelta = dt.timedelta(0)) -> tuple[list[_Item], int]:
    """The posts of stories not rendered yet that fall in ``[begin - earlier, end)``, from a few fields
    of their story rows, without rendering or storing anything; and how many stories have posts in
    ``[begin, end)``.

    A follow-up is looked for up to a week after its root, as rendering would place it. For X's
    price, a root counts as a post with a link when its story has a URL, a follow-up as one without.
    """
    content = StoryRow.content
    with store.session() as session:
        found = session.execute(
            select(StoryRow.id, _epoch(store, StoryRow.root_due), content["url"].as_string(),
                   content["platforms"].as_string(), content["followup_after"].as_integer())
            .where(StoryRow.rendered.is_(False), StoryRow.draft.is_(False),
                   StoryRow.root_due >= begin - earlier - dt.timedelta(days=7),
                   StoryRow.root_due < end)).all()
    plans: list[_Item] = []
    stories = 0
    low, high, default_delay = begin.timestamp(), end.timestamp(), settings.followup_delay.total_seconds()
    lowest = (begin - earlier).timestamp()
    for story_id, root_due, url, only, after in found:
        root_due = float(root_due)
        delay = after if after else default_delay
        names = _platform_names(only)
        inside = False
        for kind, due in (("root", root_due), ("followup", root_due + delay)):
            if lowest <= due < high:
                plans.append(_Item(story_id, "", kind, due, link=kind == "root" and bool(url),
                                   only=names))
                inside = inside or due >= low
        stories += inside
    plans.sort(key=lambda p: (p.due, p.kind != "root", p.story_id))
    return plans, stories


def _platform_names(raw: Any) -> frozenset[str] | None:
    """A story's own platforms from its stored content (JSON text, or a list on some backends)."""
    if isinstance(raw, str):
        if raw in ("", "[]"):
            return None
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return frozenset(map(str, raw)) if isinstance(raw, list) and raw else None


def _entry(items: list[Any], titles: dict[str, str], zone: ZoneInfo, now: dt.datetime,
           settings: Settings) -> Entry:
    items = sorted(items, key=lambda r: r.part)
    head = min(items, key=lambda r: S(r.status).rank if r.status in ALL_STATUSES else len(S))
    first = items[0]
    late = head.status == S.PENDING and first.due_at < now - LATE
    reasons = [r.last_error for r in items if r.last_error and r.status != S.POSTED]
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
    pictures: dict[str, dict[str, object]] = dataclasses.field(default_factory=dict)
    """What is stored of each picture the parts show, by hash (bytes, type, dimensions)."""

    @property
    def can_skip(self) -> bool:
        return any(d.status in SKIPPABLE for d in self.deliveries)

    @property
    def can_retry(self) -> bool:
        return any(d.status in RETRYABLE for d in self.deliveries)

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
    pictures = pictures_info(store, [p.sha256 for part in parts for p in part.pictures])
    return StoryView(item, origin, root_due, threads, deliveries, error, pictures)


def link_check_view(store: Store, story_id: str) -> LinkResult | None:
    """The story's latest link check (``_link_check.html``): ``None`` when its current link was never checked."""
    return result_for(store, story_id)


# ---------------------------------------------------------------------------- status page


@dataclasses.dataclass
class ProblemView:
    row: DeliveryRow
    headline: str

    @property
    def can_retry(self) -> bool:
        return self.row.status in RETRYABLE

    @property
    def can_skip(self) -> bool:
        return self.row.status in SKIPPABLE


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
