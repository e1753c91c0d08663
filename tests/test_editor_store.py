"""The dashboard editor's queries and saves on SQLite and PostgreSQL: a save and its history, the
stories that need a reveal, and drafts on the calendar (kept apart from the posts)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot import ops
from bot.images import media_policy
from bot.planner import Planner
from bot.sources.stories import load_stories
from bot.web.editor import form_values, history, needing_reveal, pictures_of, save
from bot.web.pages import calendar
from tests.conftest import story

UTC = dt.UTC
SAMPLES = Path(__file__).resolve().parents[1] / "bot" / "sources" / "samples" / "2025.yaml"
NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_a_save_is_recorded_and_a_refused_one_is_not(store, settings):
    Planner(store, settings).load([story("a", dt.date(2025, 3, 5), one_year_later="Old reveal")], now=NOW)
    form = form_values(ops.story(store, "a"))
    saved = save(store, settings, "a", {**form, "one_year_later": "New reveal"}, now=NOW + dt.timedelta(hours=1))
    assert saved.problems == [] and saved.report is not None and saved.report.updated == ["a"]
    refused = save(store, settings, "a", {**form, "date": "yesterday"}, now=NOW + dt.timedelta(hours=2))
    assert [p.message for p in refused.problems] == ["date 'yesterday' is not a valid date"]
    changes = history(store, settings, "a")
    assert [c.source for c in changes] == ["dashboard", "file"]  # newest first
    assert [(f.field, f.old, f.new) for f in changes[0].fields] == [("one_year_later", "Old reveal", "New reveal")]
    assert changes[1].created


@pytest.mark.parametrize("card", ["false", "true"])
def test_every_sample_story_saved_as_the_editor_shows_it_is_unchanged(store, make_settings, card):
    """The form writes each field as a file does: saving it untouched changes nothing (pictures, story
    cards, times, lists)."""
    settings = make_settings(story_card=card)
    stories = load_stories([SAMPLES], media=media_policy(settings))
    if card == "true":
        stories = stories[:6]  # drawing the cards takes a while
    Planner(store, settings).load(stories, now=NOW)
    for item in stories:
        shown = ops.story(store, item.id)
        form = {**form_values(shown), **{p.name: p.alt for p in pictures_of(shown)}}
        saved = save(store, settings, item.id, form, now=NOW)
        assert saved.problems == [] and saved.report is not None, item.id
        assert saved.report.unchanged == 1, (item.id, history(store, settings, item.id)[0].fields)


def test_needing_reveal_and_drafts_on_the_calendar(store, settings):
    planner = Planner(store, settings)
    untold = {"one_year_later": ""}
    planner.load([story("soon", dt.date(2025, 3, 4), **untold), story("later", dt.date(2025, 4, 30), **untold),
                  story("told", dt.date(2025, 3, 4), one_year_later="Told")], now=NOW)
    planner.load([story("drafted", dt.date(2025, 3, 3), **untold)], now=NOW, draft=True)
    assert [r.story_id for r in needing_reveal(store, settings, now=NOW)] == ["drafted", "soon"]
    assert [r.draft for r in needing_reveal(store, settings, now=NOW)] == [True, False]
    cal = calendar(store, settings, now=NOW, weeks=1)
    tuesday = next(d for d in cal.days if d.date == dt.date(2026, 3, 3))
    assert [d.story_id for d in tuesday.drafts] == ["drafted"] and tuesday.drafts[0].needs_reveal
    assert tuesday.posts == 0 and cal.drafts == 1
    wednesday = next(d for d in cal.days if d.date == dt.date(2026, 3, 4))
    marked = {e.story_id for p in wednesday.platforms for e in p.entries if e.needs_reveal}
    assert marked == {"soon"} and wednesday.reveals == 1
