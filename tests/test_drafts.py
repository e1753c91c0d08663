"""Drafts, approval, the history of each story, and loads that would overwrite a dashboard edit."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from sqlalchemy import select

from bot.models import DiscardedStoryRow, StoryChangeRow, StoryRow
from bot.planner import Planner
from bot.sources.feeds import capture
from bot.sources.stories import load_stories
from bot.sources.templates import load_templates
from posts.errors import StoryError
from tests.conftest import story
from tests.test_engine import rows

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 1, tzinfo=UTC)


def changes(store, story_id):
    with store.session() as session:
        return [(c.source, c.origin, c.changes) for c in session.scalars(
            select(StoryChangeRow).where(StoryChangeRow.story_id == story_id).order_by(StoryChangeRow.id))]


def test_a_draft_has_no_deliveries_until_approved(planner, store):
    report = planner.load([story("a")], now=NOW, draft=True)
    assert report.drafts == ["a"] and report.added == ["a"] and report.deliveries_added == 0
    assert rows(store) == []
    assert planner.render_due(NOW + dt.timedelta(days=3650), now=NOW) == 0  # the engine's render skips it
    assert planner.next_render() is None
    approved = planner.approve(["a", "a", "nope"], now=NOW, origin="cli")
    assert approved.approved == ["a"] and approved.unknown == ["nope"]
    assert {r.kind for r in rows(store)} == {"root", "followup"}
    assert planner.approve(["a"], now=NOW).not_drafts == ["a"]
    assert [c[0] for c in changes(store, "a")] == ["file", "approve"]


def test_a_draft_is_never_posted_by_the_engine(planner, store, engine, fakes, clock):
    planner.load([story("a", dt.datetime(2025, 1, 2, 12, tzinfo=UTC))], now=NOW, draft=True)
    clock["t"] = NOW + dt.timedelta(days=2)
    engine.run_once()
    assert rows(store) == [] and all(not fake.posts for fake in fakes.values())


def test_require_approval_makes_new_stories_drafts_but_leaves_queued_ones(make_settings, store):
    Planner(store, make_settings()).load([story("old")], now=NOW)
    planner = Planner(store, make_settings(require_approval="true"))
    report = planner.load([story("old", headline="Edited"), story("new")], now=NOW)
    assert report.drafts == ["new"]
    with store.session() as session:
        assert dict(session.execute(select(StoryRow.id, StoryRow.draft)).all()) == {"old": False, "new": True}
    assert {r.story_id for r in rows(store)} == {"old"}


def test_a_draft_is_checked_as_a_load_checks_any_story(tmp_path, store, settings):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x_root.j2").write_text("{{ url }} " + "padding " * 60)
    planner = Planner(store, settings, templates=load_templates(tmp_path / "t"))
    with pytest.raises(StoryError) as caught:
        planner.load([story("a", dt.datetime(2025, 3, 1, 12, tzinfo=UTC))], now=NOW, draft=True)
    assert "cannot be rendered" in str(caught.value.problems[0])


def test_history_records_each_change_with_its_source(planner, store):
    planner.load([story("a")], now=NOW)
    planner.load([dataclasses.replace(story("a"), headline="Changed", origin="f.yaml:3")], now=NOW)
    planner.load([dataclasses.replace(story("a"), headline="Changed", origin="f.yaml:3")], now=NOW)  # unchanged
    history = changes(store, "a")
    assert len(history) == 2 and history[0][2] is None
    assert history[1][0] == "file" and history[1][1] == "f.yaml:3"
    assert history[1][2]["headline"][1] == "Changed" and "summary" not in history[1][2]


def test_a_load_does_not_overwrite_a_dashboard_edit_without_force(planner, store):
    planner.load([story("a")], now=NOW)
    planner.load([dataclasses.replace(story("a"), one_year_later="Written in the browser")], now=NOW,
                 source="dashboard")
    with pytest.raises(StoryError) as caught:
        planner.load([dataclasses.replace(story("a"), origin="stories.yaml:7")], now=NOW)
    problem = caught.value.problems[0]
    assert (problem.file, problem.line) == ("stories.yaml", 7) and "edited in the dashboard" in problem.message
    assert "--force" in problem.hint
    with store.session() as session:
        assert session.get(StoryRow, "a").content["one_year_later"] == "Written in the browser"
    # the same content as the edit (an export of it) loads as unchanged; --force overwrites
    same = planner.load([dataclasses.replace(story("a"), one_year_later="Written in the browser")], now=NOW)
    assert same.unchanged == 1
    planner.load([story("a")], now=NOW, force=True)
    with store.session() as session:
        row = session.get(StoryRow, "a")
        assert row.content["one_year_later"] == story("a").one_year_later and row.edited_at is None
    assert [c[0] for c in changes(store, "a")] == ["file", "dashboard", "file"]


@pytest.mark.parametrize(("text", "drafted"), [
    ("- {id: a, date: 2025-03-01, headline: H, draft: true}\n", True),
    ("- {id: a, date: 2025-03-01, headline: H, draft: 'yes'}\n", True),
    ("- {id: a, date: 2025-03-01, headline: H, draft: false}\n", False),
    ("- {id: a, date: 2025-03-01, headline: H}\n", False),
])
def test_a_story_file_may_say_a_story_is_a_draft(tmp_path, planner, store, text, drafted):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    report = planner.load(load_stories([path]), now=NOW)
    assert report.drafts == (["a"] if drafted else [])
    assert (rows(store) == []) is drafted  # a draft has no posts until approved
    with store.session() as session:
        assert session.get(StoryRow, "a").draft is drafted


def test_a_draft_flag_that_is_not_true_or_false_names_the_file_and_line(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("id,date,headline,draft\na,2025-03-01,H,maybe\n")
    with pytest.raises(StoryError) as caught:
        load_stories([path])
    problem = caught.value.problems[0]
    assert (problem.file, problem.line, problem.story_id) == (str(path), 2, "a")
    assert "draft 'maybe' is not true or false" in problem.message and "draft: true" in problem.hint


def edited_at(store, story_id):
    with store.session() as session:
        return session.get(StoryRow, story_id).edited_at


def test_a_file_that_caught_up_with_a_dashboard_edit_clears_the_mark(planner, store):
    """After the documented fix (export into the file, then load), later changes of the file load
    without --force."""
    planner.load([story("a")], now=NOW)
    edit = dataclasses.replace(story("a"), one_year_later="Written in the browser")
    planner.load([edit], now=NOW, source="dashboard")
    assert edited_at(store, "a") is not None
    planner.load([dataclasses.replace(edit, origin="f.yaml:1")], now=NOW, dry_run=True)
    assert edited_at(store, "a") is not None  # a dry run changes nothing
    planner.load([edit], now=NOW, source="dashboard")  # the dashboard saving it unchanged keeps the mark
    assert edited_at(store, "a") is not None
    assert planner.load([dataclasses.replace(edit, origin="f.yaml:1")], now=NOW).unchanged == 1
    assert edited_at(store, "a") is None
    later = planner.load([dataclasses.replace(edit, headline="Changed in the file", origin="f.yaml:1")], now=NOW)
    assert later.updated == ["a"]
    assert [c[0] for c in changes(store, "a")] == ["file", "dashboard", "file"]  # clearing is not a change


# -- discard ------------------------------------------------------------------------------------


def test_a_discarded_entry_is_never_captured_again(tmp_path, planner, store):
    from tests.test_capture import drafts_in, item, rss, write

    first = rss(item("Unreviewed rumour", "https://news.example.com/rumour", guid="r-1"),
                item("Council votes budget", "https://news.example.com/budget", guid="b-1"))
    feed = write(tmp_path, "feed.xml", first)
    captured = capture([feed], planner, now=NOW).captured
    assert len(captured) == 2
    rumour = next(sid for sid in captured if "rumour" in sid)
    report = planner.discard([rumour], now=NOW + dt.timedelta(hours=1))
    assert report.discarded == [rumour] and rumour not in drafts_in(store)
    with store.session() as session:
        kept = session.get(DiscardedStoryRow, rumour)
        assert (kept.url, kept.origin, kept.content["headline"]) == ("https://news.example.com/rumour", "cli",
                                                                     "Unreviewed rumour")
        assert session.scalars(select(StoryChangeRow).where(StoryChangeRow.story_id == rumour)).all() == []
    # the same entry again, and the same entry with an edited title, and another entry with its link
    again = capture([write(tmp_path, "feed.xml", rss(  # the same feed: a plain guid counts within its feed
        item("Unreviewed rumour", "https://news.example.com/rumour", guid="r-1"),
        item("Rumour, now with a new title", "https://news.example.com/rumour?v=2", guid="r-1"),
        item("Same link, other id", "https://news.example.com/rumour", guid="r-2")))], planner, now=NOW)
    assert again.captured == []
    assert [s.reason for s in again.skipped] == [f"same id as story {rumour} (discarded)"] * 2 + [
        f"same link as story {rumour} (discarded)"]
    assert rumour not in drafts_in(store)


def test_discard_takes_only_drafts(planner, store):
    planner.load([story("queued")], now=NOW)
    planner.load([story("drafted")], now=NOW, draft=True)
    report = planner.discard(["queued", "drafted", "nope", "drafted"], now=NOW)
    assert (report.discarded, report.not_drafts, report.unknown) == (["drafted"], ["queued"], ["nope"])
    with store.session() as session:
        assert [r.id for r in session.scalars(select(StoryRow))] == ["queued"]
    assert {r.story_id for r in rows(store)} == {"queued"}
    # a discarded story loaded again on purpose, then discarded again, is remembered once
    planner.load([story("drafted")], now=NOW, draft=True)
    assert planner.discard(["drafted"], now=NOW + dt.timedelta(days=1)).discarded == ["drafted"]
    with store.session() as session:
        [kept] = session.scalars(select(DiscardedStoryRow)).all()
        assert kept.discarded_at == NOW + dt.timedelta(days=1)


def test_a_draft_discarded_while_it_is_approved_is_reported_unknown_not_an_internal_error(planner, store):
    """approve reads the drafts, then changes them: a discard (the dashboard, another terminal) that
    commits in between wins, and approve says the story is gone instead of failing on the missing row."""
    from sqlalchemy import event

    planner.load([story("a"), story("b")], now=NOW, draft=True)
    fired: list[bool] = []

    @event.listens_for(store.engine, "after_cursor_execute")
    def discard_in_between(conn, cursor, statement, *args):
        if not fired and statement.lstrip().upper().startswith("SELECT") and "FROM stories" in statement \
                and "stories.id IN" in statement:
            fired.append(True)
            assert Planner(store, planner.settings).discard(["a"], now=NOW).discarded == ["a"]

    try:
        report = planner.approve(["a", "b"], now=NOW)
    finally:
        event.remove(store.engine, "after_cursor_execute", discard_in_between)
    assert fired and (report.approved, report.unknown) == (["b"], ["a"])
    with store.session() as session:
        assert [row.id for row in session.scalars(select(StoryRow))] == ["b"]
        assert not session.get(StoryRow, "b").draft


def test_discard_on_the_command_line(tmp_path, monkeypatch, capsys):
    from tests.cli_support import isolate, run_cli

    folder = isolate(tmp_path, monkeypatch)
    (folder / "s.yaml").write_text("- {id: d, date: 2025-03-01, headline: Rumour, draft: true}\n"
                                   "- {id: q, date: 2025-03-02, headline: Queued}\n")
    assert run_cli(capsys, "load", "s.yaml")[0] == 0
    code, output, _ = run_cli(capsys, "discard", "q")
    assert code == 1 and "Not drafts, left in the queue: q" in output and "oneyearago skip" in output
    code, output, _ = run_cli(capsys, "discard", "d")
    assert code == 0 and "Discarded 1: d" in output
    code, output, _ = run_cli(capsys, "discard", "d", "--json")
    assert code == 1 and json.loads(output) == {"discarded": [], "not_drafts": [], "unknown": ["d"]}
