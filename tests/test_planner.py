"""Loading into the queue: due times, idempotent reloads, edits, date-only spreading."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select

from bot.models import DeliveryRow, StoryRow
from bot.planner import Planner
from tests.conftest import story
from tests.test_engine import rows

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 1, tzinfo=UTC)


def snapshot(store):
    return [(r.id, r.story_id, r.platform, r.kind, r.part, r.due_at, r.text, r.status, r.key, r.updated_at)
            for r in rows(store)]


def test_each_story_gets_a_root_and_followup_per_platform(planner, store):
    report = planner.load([story("a")], now=NOW)
    assert report.added == ["a"] and report.deliveries_added == 8
    kinds = sorted((r.platform, r.kind, r.part) for r in rows(store))
    assert kinds == [(p, k, 1) for p in ("bluesky", "mastodon", "reddit", "x") for k in ("followup", "root")]


def test_a_story_without_one_year_later_has_no_followup(planner, store):
    planner.load([story("a", one_year_later="")], now=NOW)
    assert {r.kind for r in rows(store)} == {"root"}


def test_platforms_field_limits_a_story_to_some_platforms(planner, store):
    planner.load([story("a", platforms=("bluesky",))], now=NOW)
    assert {r.platform for r in rows(store)} == {"bluesky"}


def test_disabled_platforms_get_no_deliveries(make_settings, store):
    settings = make_settings(platforms="x")
    Planner(store, settings).load([story("a")], now=NOW)
    assert {r.platform for r in rows(store)} == {"x"}


def test_timed_story_is_due_at_the_same_local_time_a_year_later(planner, store):
    planner.load([story("a", dt.datetime(2025, 7, 4, 9, 30), timezone="America/New_York")], now=NOW)
    root = rows(store, platform="x", kind="root")[0]
    assert root.due_at == dt.datetime(2026, 7, 4, 13, 30, tzinfo=UTC)
    follow = rows(store, platform="x", kind="followup")[0]
    assert follow.due_at == root.due_at + dt.timedelta(hours=6)


def test_per_story_followup_delay_overrides_the_default(planner, store):
    planner.load([story("a", dt.datetime(2025, 7, 4, 9, 30, tzinfo=UTC), followup_after=dt.timedelta(minutes=90))],
                 now=NOW)
    root, follow = rows(store, platform="x", kind="root")[0], rows(store, platform="x", kind="followup")[0]
    assert follow.due_at - root.due_at == dt.timedelta(minutes=90)


def test_years_setting_moves_the_anniversary(make_settings, store):
    Planner(store, make_settings(years=2)).load([story("a", dt.datetime(2024, 2, 29, 12, 0, tzinfo=UTC))], now=NOW)
    assert rows(store, platform="x", kind="root")[0].due_at == dt.datetime(2026, 2, 28, 12, 0, tzinfo=UTC)


def test_date_only_stories_are_spread_over_the_window_in_load_order(planner, store):
    day = dt.date(2025, 5, 5)
    planner.load([story(f"d{i}", day) for i in range(4)], now=NOW)
    times = [rows(store, story_id=f"d{i}", platform="x", kind="root")[0].due_at for i in range(4)]
    assert times == [dt.datetime(2026, 5, 5, h, m, tzinfo=UTC) for h, m in ((10, 30), (13, 30), (16, 30), (19, 30))]


def test_date_only_window_is_in_the_bot_time_zone(make_settings, store):
    Planner(store, make_settings(timezone="Europe/Berlin", posting_window="08:00-10:00")).load(
        [story("a", dt.date(2025, 6, 1))], now=NOW)
    assert rows(store, platform="x", kind="root")[0].due_at == dt.datetime(2026, 6, 1, 7, 0, tzinfo=UTC)


def test_a_later_load_on_the_same_day_respreads_the_unsent_and_says_so(planner, store):
    day = dt.date(2025, 5, 5)
    planner.load([story("first", day)], now=NOW)
    assert rows(store, story_id="first", platform="x", kind="root")[0].due_at.hour == 15
    report = planner.load([story("second", day)], now=NOW)
    assert report.moved and report.moved[0].startswith("first")
    assert rows(store, story_id="first", platform="x", kind="root")[0].due_at.hour == 12
    assert rows(store, story_id="second", platform="x", kind="root")[0].due_at.hour == 18
    follow = rows(store, story_id="first", platform="x", kind="followup")[0]
    assert follow.due_at.hour == 18


def test_loading_the_same_stories_again_changes_nothing(planner, store):
    stories = [story("a"), story("b", dt.date(2025, 3, 2))]
    planner.load(stories, now=NOW)
    before = snapshot(store)
    report = planner.load(stories, now=NOW + dt.timedelta(days=1))
    assert report.unchanged == 2 and not report.updated and not report.added
    assert snapshot(store) == before


def test_an_edited_story_updates_its_unsent_deliveries_and_says_so(planner, store):
    planner.load([story("a")], now=NOW)
    keys = {(r.platform, r.kind): r.key for r in rows(store)}
    report = planner.load([story("a", headline="A better headline")], now=NOW)
    assert report.updated == ["a"] and report.deliveries_updated >= 3
    assert all("A better headline" in r.text for r in rows(store, kind="root"))
    assert {(r.platform, r.kind): r.key for r in rows(store)} == keys  # idempotency keys never change


def test_an_edit_that_comes_too_late_is_reported_and_never_reposted(planner, store):
    planner.load([story("a")], now=NOW)
    with store.session() as session:
        for row in session.scalars(select(DeliveryRow).where(DeliveryRow.kind == "root")):
            row.status, row.remote_id = "posted", f"id-{row.platform}"
    report = planner.load([story("a", headline="Changed after posting", one_year_later="Changed too")], now=NOW)
    assert len(report.too_late) == 4 and all("already posted" in line for line in report.too_late)
    assert all("Changed after posting" not in r.text for r in rows(store, kind="root"))
    assert all(r.status == "posted" for r in rows(store, kind="root"))
    assert all("Changed too" in r.text for r in rows(store, kind="followup"))


def test_an_edit_that_shortens_the_followup_removes_the_extra_unsent_parts(planner, store):
    long_reveal = " ".join(f"Sentence {i} of a long reveal that goes on and on." for i in range(20))
    planner.load([story("a", one_year_later=long_reveal, platforms=("x",))], now=NOW)
    assert len(rows(store, kind="followup")) > 1
    report = planner.load([story("a", one_year_later="Short now.", platforms=("x",))], now=NOW)
    assert report.deliveries_removed >= 1
    assert [(r.part, r.parts) for r in rows(store, kind="followup")] == [(1, 1)]


def test_dry_run_reports_but_writes_nothing(planner, store):
    report = planner.load([story("a")], now=NOW, dry_run=True)
    assert report.added == ["a"] and report.dry_run
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(StoryRow)) == 0
        assert session.scalar(select(func.count()).select_from(DeliveryRow)) == 0


def test_load_warns_about_stories_that_will_be_cut(planner):
    long = story("long", summary="word " * 400)
    report = planner.load([long], now=NOW)
    assert any(line.startswith("long: cut to fit x") for line in report.cuts)
    assert any("bluesky" in line for line in report.cuts)


def test_load_warns_about_anniversaries_already_past(planner):
    report = planner.load([story("old", dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC))], now=NOW)
    assert report.past_due and report.past_due[0].startswith("old:")


def test_keys_are_chosen_with_the_first_intent_and_are_unique_valid_tids(planner, engine, clock, store):
    from tests.test_pds_keys import TID_RE

    planner.load([story(f"s{i}", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)) for i in range(20)], now=NOW)
    assert {r.key for r in rows(store)} == {None}
    clock["t"] = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    engine.run_once(clock["t"])
    keys = {r.platform: [] for r in rows(store, kind="root")}
    for r in rows(store, kind="root"):
        keys[r.platform].append(r.key)
    # Bluesky's record keys are chosen by its adapter with the first intent; X and Reddit take none.
    assert len(set(keys["bluesky"])) == 20 and all(TID_RE.fullmatch(k) for k in keys["bluesky"])
    assert keys["x"] == keys["reddit"] == [None] * 20


def test_story_round_trips_through_its_stored_content(planner, store):
    original = story("a", dt.datetime(2025, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=5))),
                     tags=("ai", "chips"), followup_after=dt.timedelta(minutes=90), platforms=("x", "reddit"))
    planner.load([original], now=NOW)
    from bot import ops

    assert ops.story(store, "a") == dataclasses.replace(original, origin="")


def test_a_story_is_serialised_once_and_stored_as_the_text_its_hash_was_taken_of(planner, store):
    from sqlalchemy import Text, cast

    from bot.planner import content_hash, encode_content

    original = story("a", headline="Zürich — “quotes” and ünïcode", tags=("ai",))
    planner.load([original], now=NOW)
    with store.session() as session:
        stored, chash, content = session.execute(select(cast(StoryRow.content, Text), StoryRow.content_hash,
                                                        StoryRow.content)).one()
    text = encode_content(original.content())
    assert stored == text  # the canonical form (sorted keys, unescaped), not a second serialisation
    assert content == original.content()
    assert chash == content_hash(text, planner.fingerprint) == content_hash(original.content(), planner.fingerprint)


def test_a_load_runs_with_the_cyclic_garbage_collector_held_off_and_restores_it(planner, store):
    import gc

    seen = []
    assert gc.isenabled()
    planner.load([story(f"s{i}") for i in range(1000)], now=NOW, render=False, progress=lambda _: seen.append(
        gc.isenabled()))
    assert seen == [False]
    assert gc.isenabled()


def test_big_loads_queue_the_stories_and_the_engine_renders_each_a_day_ahead(planner, engine, fakes, clock,
                                                                            store):
    report = planner.load([story("a", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)),
                           story("b", dt.datetime(2025, 6, 1, 12, 0, tzinfo=UTC))], now=NOW, render=False)
    assert report.deferred == 2 and not report.cuts and rows(store) == []
    assert engine.next_wake(NOW) == dt.datetime(2026, 2, 28, 12, 0, tzinfo=UTC)  # wakes to render a day ahead
    clock["t"] = dt.datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    engine.run_once(clock["t"])  # story a gets its deliveries; story b is still months away
    assert {r.story_id for r in rows(store)} == {"a"} and all(r.text for r in rows(store))
    assert engine.next_wake(clock["t"]) == dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    clock["t"] = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    engine.run_once(clock["t"])
    assert all(len(f.posts) == 1 for f in fakes.values())
    assert fakes["x"].posts[0].post.payload["text"] == rows(store, story_id="a", platform="x", kind="root")[0].text


def test_rendering_later_makes_every_followup_part(planner, store):
    reveal = " ".join(f"Sentence {i} of a long reveal that goes on and on." for i in range(20))
    planner.load([story("a", one_year_later=reveal, platforms=("x",))], now=NOW, render=False)
    assert planner.render_stories(["a"], now=NOW) == 1
    parts = rows(store, kind="followup")
    assert len(parts) > 1 and all(r.parts == len(parts) for r in parts)
    assert [r.part for r in parts] == list(range(1, len(parts) + 1))
    assert planner.render_stories(["a"], now=NOW) == 0  # once only


def test_render_at_load_is_the_default_for_small_loads(planner, store):
    report = planner.load([story("a")], now=NOW)
    assert report.deferred == 0 and len(rows(store)) == 8


def test_agenda_renders_the_stories_it_shows_in_memory_and_stores_nothing(planner, store):
    from bot import ops

    planner.load([story("a", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC))], now=NOW, render=False)
    shown = ops.agenda(store, start=dt.datetime(2026, 3, 1, tzinfo=UTC), end=dt.datetime(2026, 3, 2, tzinfo=UTC),
                       now=NOW, planner=planner)
    assert len(shown) == 8 and all(r.text for r in shown)
    assert [(r.kind, r.platform) for r in shown] == sorted(((r.kind, r.platform) for r in shown),
                                                          key=lambda k: (k[0] != "root", k[1]))
    assert all(r.id is None for r in shown) and rows(store) == []
    planner.render_stories(["a"], now=NOW)  # the same posts the engine stores when it renders the story
    stored = ops.agenda(store, start=dt.datetime(2026, 3, 1, tzinfo=UTC), end=dt.datetime(2026, 3, 2, tzinfo=UTC),
                        now=NOW, planner=planner)
    assert [(r.platform, r.kind, r.part, r.due_at, r.text, r.status) for r in stored] == \
        [(r.platform, r.kind, r.part, r.due_at, r.text, r.status) for r in shown]
    only = ops.agenda(store, start=dt.datetime(2026, 3, 1, 18, tzinfo=UTC), end=dt.datetime(2026, 3, 2, tzinfo=UTC),
                      now=NOW, platform="x", planner=planner)
    assert [(r.platform, r.kind) for r in only] == [("x", "followup")]


def test_dry_run_shows_unrendered_stories_without_storing_anything(planner, engine, store, clock):
    planner.load([story("a", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC))], now=NOW, render=False)
    report = engine.run_once(dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC), dry_run=True)
    assert report.count("would-post") == 4 and all(e.text for e in report.events)
    assert rows(store) == []
