"""One quota model: load warnings, the agenda's days and the calendar count as the engine holds posts back."""

from __future__ import annotations

import datetime as dt

import pytest

from adapters.fake import FakeAdapter, FakeConfig
from bot import ops
from bot.engine import Engine
from bot.planner import Planner
from bot.quotas import busiest
from bot.store import Store
from bot.web.pages import calendar
from tests.conftest import story

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 1, tzinfo=UTC)
# two posts late on Sunday, two early on Monday: two a calendar day, four in 24 hours
TIMES = [dt.datetime(2025, 3, 1, 22, 0), dt.datetime(2025, 3, 1, 23, 0),
         dt.datetime(2025, 3, 2, 1, 0), dt.datetime(2025, 3, 2, 2, 0)]


def stories():
    # the follow-ups come ten days later, the same way: two one evening, two the next morning
    return [story(f"s{i}", when.replace(tzinfo=UTC), followup_after=dt.timedelta(days=10))
            for i, when in enumerate(TIMES)]


@pytest.fixture
def quota_settings(make_settings):
    return make_settings(platforms="x", quota_x_24h=3, quota_x_15m=0, timezone="UTC", backlog_pace="0s")


def test_busiest_counts_the_window_ending_at_each_post_of_the_day():
    hour = 3600.0
    times = [22 * hour, 23 * hour, 25 * hour, 26 * hour]
    assert busiest(times, 24 * hour, 0, 24 * hour) == 2
    assert busiest(times, 24 * hour, 24 * hour, 48 * hour) == 4
    assert busiest(times, 2 * hour, 24 * hour, 48 * hour) == 2  # (23h, 25h]: the 23h post is out
    assert busiest([], 24 * hour, 0, 24 * hour) == 0


@pytest.mark.parametrize("render", [True, False])
def test_a_day_within_its_calendar_quota_is_over_when_24_hours_hold_too_many(store: Store, quota_settings,
                                                                            clock, render):
    report = Planner(store, quota_settings).load(stories(), now=NOW, render=render)
    if render:  # a load that leaves its stories to be rendered later has no posts to count yet
        assert report.over_quota == ["2026-03-02 x: 4 posts within 24 hours > 3 a day"]  # the roots' days

    start = dt.datetime(2026, 3, 2, tzinfo=UTC)
    planner = Planner(store, quota_settings)
    rows = ops.agenda(store, start=start, end=start + dt.timedelta(days=1), now=NOW, planner=planner)
    counts = {c.day: c for c in ops.agenda_days(store, rows, quota_settings, start=start, now=NOW, planner=planner)}
    assert list(counts) == ["2026-03-02"] and counts["2026-03-02"].posts == 2
    assert counts["2026-03-02"].over == ["4 posts within 24 hours > 3 a day"]

    def over(week: dt.date) -> dict[str, list[str]]:
        shown = calendar(store, quota_settings, now=NOW, start=week, weeks=1)
        return {d.date.isoformat(): d.over for d in shown.days if d.platforms}

    assert over(dt.date(2026, 3, 2)) == {"2026-03-02": ["X: 4 posts within 24 hours > 3 a day"]}
    assert over(dt.date(2026, 2, 23)) == {"2026-03-01": []}  # Sunday alone is fine, as for the engine

    # and the engine, counting the last 24 hours, holds Monday's second post back
    fake = FakeAdapter(FakeConfig("x"))
    engine = Engine(store, {"x": fake}, quota_settings, clock=lambda: clock["t"], worker="w")
    for when in TIMES:
        clock["t"] = when.replace(year=2026, tzinfo=UTC)
        report = engine.run_once(clock["t"])
    assert len(fake.posts) == 3 and report.count("deferred") == 1
