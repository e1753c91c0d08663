"""The dashboard editor's queries and saves on SQLite and PostgreSQL: a save and its history, the
stories that need a reveal, and drafts on the calendar (kept apart from the posts)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from bot import ops
from bot.images import media_policy, stored_image
from bot.models import DeliveryRow, ImageRow, StoryRow
from bot.planner import Planner
from bot.sources.export import export
from bot.sources.stories import load_stories
from bot.web.editor import (
    IMAGE_FILE,
    LISTED,
    form_values,
    history,
    picture_token,
    pictures_of,
    save,
)
from bot.web.pages import calendar
from posts.errors import StoryError
from posts.media import prepare_versions
from tests.conftest import story

UTC = dt.UTC
SAMPLES = Path(__file__).resolve().parents[1] / "bot" / "sources" / "samples" / "2025.yaml"
NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SECRET = b"the dashboard's signing key in these tests"


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
    missing = ops.needs_reveal(store, NOW, settings.reveal_lead, followup_delay=settings.followup_delay)
    assert [(r.id, r.draft) for r in missing] == [("drafted", True), ("soon", False)]
    cal = calendar(store, settings, now=NOW, weeks=1)
    tuesday = next(d for d in cal.days if d.date == dt.date(2026, 3, 3))
    assert [d.story_id for d in tuesday.drafts] == ["drafted"] and tuesday.drafts[0].needs_reveal
    assert tuesday.posts == 0 and cal.drafts == 1
    wednesday = next(d for d in cal.days if d.date == dt.date(2026, 3, 4))
    marked = {e.story_id for p in wednesday.platforms for e in p.entries if e.needs_reveal}
    assert marked == {"soon"} and wednesday.reveals == 1


def _png(color: str) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (40, 30), color).save(out, "PNG")
    return out.getvalue()


def _upload(folder: Path, name: str, data: bytes) -> Path:
    """A file as the dashboard keeps an upload for the editor: in a folder of its own, under its name."""
    path = folder / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path


def test_pictures_saved_in_the_editor_are_stored_and_go_with_the_posts(store, settings, tmp_path):
    Planner(store, settings).load([story("a", dt.date(2025, 3, 5), one_year_later="Reveal")], now=NOW)
    form = {**form_values(ops.story(store, "a")), LISTED: "listed", "images.new.alt": "Then",
            "followup_images.new.alt": "Now"}
    uploads = {"images.new.file": _upload(tmp_path / "1", "then.png", _png("red")),
               "followup_images.new.file": _upload(tmp_path / "2", "now.png", _png("blue"))}
    saved = save(store, settings, "a", form, now=NOW, uploads=uploads, secret=SECRET)
    assert saved.problems == [] and saved.report is not None and saved.report.updated == ["a"]
    shown = ops.story(store, "a")
    expected = prepare_versions(_png("red"), "then.png", tuple(settings.platforms))
    assert [(i.ref, i.alt) for i in shown.images] == [("then.png", "Then")]
    assert dict(shown.images[0].versions) == {p: image.sha256 for p, image in expected.items()}
    with store.session() as session:
        for image in expected.values():
            row = session.get(ImageRow, image.sha256)
            assert row is not None and bytes(row.data) == image.data and row.mime == "image/png"
        rows = {(r.platform, r.kind): r for r in session.scalars(select(DeliveryRow).where(DeliveryRow.story_id == "a"))}
    for platform in settings.platforms:
        assert rows[(platform, "root")].pictures == [{"sha256": expected[platform].sha256, "alt": "Then"}]
        assert rows[(platform, "followup")].pictures == [{"sha256": shown.followup_images[0].versions[platform],
                                                          "alt": "Now"}]
    [change] = [c for c in history(store, settings, "a") if c.source == "dashboard"]
    assert {f.field for f in change.fields} == {"images", "followup_images"}
    # the form the page shows names the pictures it keeps: removing the reveal's keeps the post's
    kept = {LISTED: "listed", **form_values(shown), "images.1.pic": picture_token(SECRET, "then.png",
                                                                                  shown.images[0].versions),
            "images.1.alt": "Then, again"}
    saved = save(store, settings, "a", kept, now=NOW + dt.timedelta(minutes=5), secret=SECRET)
    assert saved.problems == []
    after = ops.story(store, "a")
    assert [(i.ref, i.alt) for i in after.images] == [("then.png", "Then, again")] and after.followup_images == ()
    with store.session() as session:
        reply = session.scalars(select(DeliveryRow).where(DeliveryRow.story_id == "a", DeliveryRow.kind == "followup",
                                                          DeliveryRow.platform == "x")).one()
    assert reply.pictures is None


def test_an_export_of_a_story_pictured_in_the_editor_loads_back_unchanged(store, settings, tmp_path):
    Planner(store, settings).load([story("a", dt.date(2025, 3, 5))], now=NOW)
    form = {**form_values(ops.story(store, "a")), LISTED: "listed", "images.new.alt": "A chart"}
    saved = save(store, settings, "a", form, now=NOW, secret=SECRET,
                 uploads={"images.new.file": _upload(tmp_path / "up", "chart.png", _png("green")),
                          IMAGE_FILE: _upload(tmp_path / "up2", "card.png", _png("yellow"))})
    assert saved.problems == []
    out = tmp_path / "kept" / "stories.yaml"
    out.parent.mkdir()
    report = export(store, ["a"], out=out)
    assert report.warnings == []
    assert (out.parent / "chart.png").is_file() and (out.parent / "card.png").is_file()  # beside the output
    assert "path: chart.png" in out.read_text(encoding="utf-8")
    with store.session() as session:  # the bytes stored for X (the largest version)
        fullest = stored_image(session, ops.story(store, "a").images[0].versions["x"])
    assert fullest is not None and (out.parent / "chart.png").read_bytes() == fullest.data
    shown = io.StringIO()  # to standard output nothing is written beside it: a warning says so
    assert any("images[1] 'chart.png' is stored only with the queue" in w
               for w in export(store, ["a"], stdout=shown).warnings)
    again = load_stories([out], media=media_policy(settings))
    reload = Planner(store, settings).load(again, now=NOW + dt.timedelta(hours=1), force=True)
    assert reload.unchanged == 1 and reload.updated == []


def test_every_view_of_a_missing_reveal_uses_one_window_from_now_up_to_the_lead(store, settings):
    """status, notifications, the reveals page, the calendar, the story page and the drafts list all ask
    :func:`ops.in_reveal_lead`: a story due at ``now`` is in it, one due exactly ``lead`` later is not."""
    from bot.web.editor import editor_view

    lead = settings.reveal_lead
    at_lead = NOW + lead
    untold = {"one_year_later": ""}
    Planner(store, settings).load([
        story("now", NOW.replace(year=NOW.year - 1), **untold),
        story("edge", at_lead.replace(year=at_lead.year - 1), **untold)], now=NOW)
    Planner(store, settings).load([story("draft-edge", at_lead.replace(year=at_lead.year - 1), **untold)], now=NOW,
                                  draft=True)
    assert [r.id for r in ops.needs_reveal(store, NOW, lead, followup_delay=settings.followup_delay)] == ["now"]
    assert [r.id for r in ops.status(store, NOW, reveal_lead=lead).needs_reveal] == ["now"]
    assert editor_view(store, settings, "now", now=NOW).needs_reveal
    assert not editor_view(store, settings, "edge", now=NOW).needs_reveal
    assert [d.needs_reveal for d in ops.drafts(store, now=NOW, lead=lead)[1]] == [False]
    assert ops.in_reveal_lead(NOW, NOW, lead) and not ops.in_reveal_lead(at_lead, NOW, lead)


# -- saves and loads that race ----------------------------------------------------------------


def test_a_story_whose_root_is_out_needs_a_reveal_until_its_follow_up_time(store, settings):
    """A reveal written after the root went out still goes out as the follow-up: until the follow-up's
    time (the story's followup_after, else the setting) the story still needs one, in every view; a root
    that was missed takes no follow-up, so its story needs none."""
    from bot.web.editor import editor_view

    delay = settings.followup_delay
    untold = {"one_year_later": ""}
    root_at = NOW - dt.timedelta(hours=1)
    Planner(store, settings).load([
        story("out", root_at.replace(year=root_at.year - 1), **untold),
        story("long", root_at.replace(year=root_at.year - 1), followup_after=dt.timedelta(days=2), **untold),
        story("missed", root_at.replace(year=root_at.year - 1), **untold)], now=root_at - dt.timedelta(days=1))
    with store.session() as session:
        for row in session.scalars(select(DeliveryRow).where(DeliveryRow.kind == "root")):
            row.status = "missed" if row.story_id == "missed" else "posted"
            row.posted_at = root_at
    lead = settings.reveal_lead

    def missing(at: dt.datetime) -> list[str]:
        ids = [r.id for r in ops.needs_reveal(store, at, lead, followup_delay=delay)]
        assert ids == [r.id for r in ops.status(store, at, reveal_lead=lead, followup_delay=delay).needs_reveal]
        assert ids == [sid for sid in ("long", "missed", "out")
                       if editor_view(store, settings, sid, now=at).needs_reveal]
        return ids

    assert missing(NOW) == ["long", "out"]
    assert missing(root_at + delay) == ["long", "out"]  # the follow-up's own time: still
    assert missing(root_at + delay + dt.timedelta(seconds=1)) == ["long"]
    assert missing(root_at + dt.timedelta(days=2, seconds=1)) == []


def test_a_save_refuses_a_change_a_load_committed_after_the_form_check(store, settings, tmp_path, monkeypatch):
    """The form's version is checked again, in the save's own transaction: a file load committed between
    the editor's check and the write is never silently reverted."""
    import bot.web.editor as editor

    path = tmp_path / "s.yaml"
    path.write_text("- {id: a, date: 2025-03-05, headline: Hello, summary: v1}\n")
    Planner(store, settings).load(load_stories([path]), now=NOW)
    form = {**form_values(ops.story(store, "a")), "version": _hash(store, "a"), "headline": "From the dashboard"}

    class LoadCommittedMeanwhile(Planner):
        def load(self, stories, **options):
            if options.get("source") == "dashboard":
                path.write_text(path.read_text().replace("v1", "v2 with a fact fixed"))
                Planner(store, settings).load(load_stories([path]), now=NOW)
            return super().load(stories, **options)

    monkeypatch.setattr(editor, "Planner", LoadCommittedMeanwhile)
    saved = save(store, settings, "a", form, now=NOW)
    assert [p.message for p in saved.problems] == ["was changed meanwhile (by a load, a capture or another tab) "
                                                   "since this edit began"]
    assert "reload the page" in saved.problems[0].hint
    shown = ops.story(store, "a")
    assert (shown.headline, shown.summary) == ("Hello", "v2 with a fact fixed")


def _hash(store, story_id):
    with store.session() as session:
        return session.get(StoryRow, story_id).content_hash


@pytest.mark.parametrize("first", ["dashboard", "file"])
def test_a_change_committed_between_a_load_reading_and_writing_is_kept(store, settings, monkeypatch, first):
    """Each update is a compare-and-set on the hash it read: whichever of a dashboard save and a file load
    commits second finds the story changed and writes nothing (on PostgreSQL the two really interleave)."""
    Planner(store, settings).load([story("a", dt.date(2025, 3, 5), summary="v1")], now=NOW)
    mine = story("a", dt.date(2025, 3, 5), summary="mine")
    theirs = story("a", dt.date(2025, 3, 5), summary="theirs")
    other = "file" if first == "dashboard" else "dashboard"
    version = _hash(store, "a")
    real = Planner._old_contents
    done = []

    def meanwhile(session, ids):  # called after the stories were read, before any is written
        if not done:
            done.append(first)  # before: the other load reads and writes through this same hook
            Planner(store, settings).load([theirs], now=NOW, source=first)
        return real(session, ids)

    monkeypatch.setattr(Planner, "_old_contents", staticmethod(meanwhile))
    with pytest.raises(StoryError) as caught:
        Planner(store, settings).load([mine], now=NOW, source=other,
                                      expected={"a": version} if other == "dashboard" else None)
    assert "changed meanwhile" in caught.value.problems[0].message
    assert ops.story(store, "a").summary == "theirs"
    assert [c.source for c in history(store, settings, "a")] == [first, "file"]


def test_a_reveal_written_after_the_root_went_out_is_posted_as_its_follow_up(store, settings, fakes, clock):
    """What the widened "needs a reveal" promises: the root is out without a reveal, the operator writes
    one in the dashboard before the follow-up's time, and the engine posts it under the root."""
    from bot.engine import Engine

    due = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    planner = Planner(store, settings)
    planner.load([story("late", due.replace(year=2025), one_year_later="")], now=due - dt.timedelta(days=1))
    engine = Engine(store, fakes, settings, clock=lambda: clock["t"], worker="test-worker")
    clock["t"] = due
    engine.run_once(due)
    assert [r.id for r in ops.needs_reveal(store, due, settings.reveal_lead,
                                           followup_delay=settings.followup_delay)] == ["late"]
    written = dataclasses.replace(ops.story(store, "late"), one_year_later="It all turned out well.")
    planner.load([written], now=due + dt.timedelta(hours=1), source="dashboard")
    clock["t"] = due + settings.followup_delay + dt.timedelta(minutes=5)
    for _ in range(10):
        engine.run_once(clock["t"])
        clock["t"] += dt.timedelta(seconds=30)
    with store.session() as session:
        followups = list(session.scalars(select(DeliveryRow).where(DeliveryRow.story_id == "late",
                                                                   DeliveryRow.kind == "followup")))
    assert followups and all(row.status == "posted" for row in followups)
    assert any("It all turned out well" in str(post) for fake in fakes.values() for post in fake.posts)


def test_needs_reveal_reckons_in_64_bits_for_stories_far_ahead(store, settings):
    """A story due after 2038 is past 32 bits of seconds: PostgreSQL's INTEGER overflowed, and one such
    story made status, agenda, the calendar and the notifier fail for the whole queue."""
    Planner(store, settings).load([story("far", dt.date(2999, 12, 31), one_year_later=""),
                                   story("soon", NOW.replace(year=NOW.year - 1) + dt.timedelta(days=1),
                                         followup_after=dt.timedelta(days=30), one_year_later="")], now=NOW)
    assert [r.id for r in ops.needs_reveal(store, NOW, settings.reveal_lead,
                                           followup_delay=settings.followup_delay)] == ["soon"]
    far = dt.datetime(3000, 12, 30, tzinfo=dt.UTC)
    assert [r.id for r in ops.needs_reveal(store, far, settings.reveal_lead,
                                           followup_delay=settings.followup_delay)] == ["far"]
