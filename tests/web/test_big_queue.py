"""A big queue: pages read without writing, and stay bounded however many stories are queued."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import func, select, text

from bot.models import DeliveryRow, StoryRow
from bot.planner import Planner
from bot.store import Store
from bot.web.pages import DAY_LIMIT, ENTRY_BUDGET, MAX_WEEKS, PAGE_LIMIT, day_limit
from posts.story import Story
from tests.db_support import writes
from tests.web.helpers import NOW

PER_DAY = 450
"""Stories on each of the first two days of the week shown (more than a page of a day)."""


@pytest.fixture
def big(store: Store, settings) -> Store:
    """Stories queued as a big load leaves them: story rows only, rendered a day before they are due."""
    stories = [Story(id=f"s{day}-{i}", date=dt.date(2025, 3, 2 + day), headline=f"Story {i} of day {day}",
                     url=f"https://example.com/{day}/{i}", one_year_later="It happened.")
               for day in range(2) for i in range(PER_DAY)]
    Planner(store, settings).load(stories, now=NOW, render=False)
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(DeliveryRow)) == 0
    return store


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    with store.engine.connect() as conn:
        tables = [r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))]
        return {t: sorted(map(tuple, conn.execute(text(f'SELECT * FROM "{t}"'))), key=repr) for t in tables}


def test_a_get_never_writes(make_client, big: Store):
    client = make_client()
    before = snapshot(big)
    with writes(big.engine) as seen:
        for path in ("/", f"/?weeks={MAX_WEEKS}", "/?day=2026-03-02&page=2", "/status", "/story/s0-1",
                     "/story/s1-7", "/upload", "/login"):
            assert client.get(path).status_code == 200, path
    assert seen == []
    assert snapshot(big) == before
    with big.session() as session:
        assert session.scalar(select(func.count()).select_from(StoryRow).where(StoryRow.rendered.is_(True))) == 0


def test_the_calendar_shows_stories_not_rendered_yet_from_their_rows(make_client, big: Store):
    page = make_client().get("/?weeks=1").text
    assert "Story 0 of day 0" in page and "queued" in page
    with big.session() as session:
        dues = list(session.scalars(select(StoryRow.root_due)))
    for day in (dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)):
        # a root and a follow-up per platform, each counted on the day it is due
        posts = 4 * sum((due.date() == day) + ((due + dt.timedelta(hours=6)).date() == day) for due in dues)
        html = page.split(f'id="d{day.isoformat()}"', 1)[1].split('<li class="day', 1)[0]
        assert f'<span class="count">{posts} posts</span>' in html


def test_the_calendar_is_bounded_with_links_to_the_rest(make_client, big: Store):
    client = make_client()
    page = client.get(f"/?weeks={MAX_WEEKS}")
    assert len(page.text) < 2_000_000
    entries = page.text.count('class="entry ')
    assert entries <= ENTRY_BUDGET
    assert day_limit(7, 3) == DAY_LIMIT and day_limit(7 * MAX_WEEKS, 3) == ENTRY_BUDGET // (7 * MAX_WEEKS * 3)
    assert day_limit(7 * 52, 3) == 5
    more = re.findall(r'href="(/\?start=[^"]+&amp;day=2026-03-02&amp;page=1[^"]*)">(\d+) more on X this day', page.text)
    with big.session() as session:
        dues = list(session.scalars(select(StoryRow.root_due)))
    day = dt.date(2026, 3, 2)
    on_day = sum((due.date() == day) + ((due + dt.timedelta(hours=6)).date() == day) for due in dues)
    assert more and int(more[0][1]) == on_day - day_limit(7 * MAX_WEEKS, 4)  # roots and follow-ups on X
    first = client.get(more[0][0].replace("&amp;", "&"))
    assert "Page 1 of" in first.text
    day = first.text.split('id="d2026-03-02"', 1)[1].split('id="d2026-03-03"', 1)[0]
    assert day.count('class="entry ') == 4 * PAGE_LIMIT
    last = client.get("/?day=2026-03-02&page=99").text
    assert "Page 4 of 4" in last and "← previous" in last and "next →" not in last


def test_the_range_is_capped(make_client, big: Store):
    page = make_client().get("/?weeks=1000").text
    assert page.count('<li class="day') == 7 * MAX_WEEKS


def test_a_bad_day_or_page_is_a_clear_400(make_client, big: Store):
    client = make_client()
    for query in ("day=tomorrow", "day=2026-03-02&page=x"):
        response = client.get(f"/?{query}")
        assert response.status_code == 400 and "day must be a date (YYYY-MM-DD)" in response.text


@pytest.mark.postgres
def test_the_calendar_reads_the_same_on_postgresql(postgres_url: str, settings, web_settings, big: Store):
    from bot.web.pages import calendar

    pg_settings = web_settings(database_url=postgres_url)
    pg = Store(postgres_url)
    try:
        with big.session() as session:
            stories = [Story.from_content(c) for c in session.scalars(select(StoryRow.content))]
        Planner(pg, pg_settings).load(stories, now=NOW, render=False)
        for store_, settings_ in ((big, settings), (pg, pg_settings)):
            Planner(store_, settings_).render_stories([s.id for s in stories if s.id.startswith("s0-")], now=NOW)

        def shown(store_: Store, settings_) -> list[Any]:
            cal = calendar(store_, settings_, now=NOW, weeks=1)
            return [(d.date, p.platform, p.posts, p.more, p.count.posts, p.count.busiest_15m, p.count.cost_usd,
                     [(e.time, e.story_id, e.kind, e.status) for e in p.entries]) for d in cal.days for p in d.platforms]

        assert shown(big, settings) == shown(pg, pg_settings)
        assert shown(big, settings)  # not empty
    finally:
        pg.dispose()


def test_a_story_not_rendered_yet_shows_on_its_own_platforms_at_its_own_delay(make_client, store: Store, settings):
    story = Story(id="only-x", date=dt.datetime(2025, 3, 3, 10, 0), timezone="UTC", headline="Only on X",
                  url="https://example.com/x", one_year_later="Later.", platforms=("x",),
                  followup_after=dt.timedelta(hours=2))
    Planner(store, settings).load([story], now=NOW, render=False)
    page = make_client().get("/?weeks=1").text
    day = page.split('id="d2026-03-03"', 1)[1].split('id="d2026-03-04"', 1)[0]
    assert '<span class="pfname">X</span>' in day and "Bluesky" not in day and "Reddit" not in day
    assert "<time>10:00</time>" in day and "<time>12:00</time>" in day and "Only on X" in day
    Planner(store, settings).render_stories(["only-x"], now=NOW)  # rendered, it shows the same
    rendered = make_client().get("/?weeks=1").text.split('id="d2026-03-03"', 1)[1].split('id="d2026-03-04"', 1)[0]
    assert "<time>10:00</time>" in rendered and "<time>12:00</time>" in rendered and "Bluesky" not in rendered
