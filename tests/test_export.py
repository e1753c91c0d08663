"""``oneyearago export``: stories written back as story files that load to the same queue, in every format.

A round trip changes nothing: the export loaded into the queue it came from finds every story
unchanged, and loaded into a fresh queue gives the same stories and the same posts at the same times.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.config import load_settings
from bot.models import DeliveryRow, StoryRow
from bot.planner import Planner
from bot.sources.export import (
    ExportError,
    PicturePaths,
    export,
    markdown_story,
    plan_format,
    stored_stories,
    story_fields,
    text_of,
)
from bot.sources.images import MediaPolicy
from bot.sources.stories import _ID_RE, load_stories
from bot.store import Store
from posts.limits import CONTROL_RE
from posts.story import FILE_FIELDS, PLATFORMS, Story
from tests.cli_support import isolate, run_cli
from tests.conftest import postgres_schema
from tests.test_pictures import picture

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 1, tzinfo=UTC)
FORMATS = ("yaml", "json", "jsonl", "csv", "md")

TRICKY_BODY = (
    "First paragraph: “quotes”, 'single', \"double\", a # hash and key: value.\n"
    "---\n"
    "  indented line with trailing spaces   \n"
    "# not a heading in YAML\n"
    "...\n"
    "- a list item, with commas, and; semicolons\n"
    "\tTabbed\u2028line separator, emoji 🧪, Arabic مرحبا, CJK 漢字, e\u0301 combining\n"
    "| > * & ! % @ ` {braces} [brackets]\n"
    "\n\n"
    "last line ends here"
)

RECORDS: list[dict[str, object]] = [
    {"id": "plain", "date": "2025-03-01", "headline": "A date-only story"},
    {"date": "2025-03-01", "headline": "No id given: the id is derived", "summary": "Second on its day."},
    {"id": "zoned", "date": "2025-03-09T02:30:00", "timezone": "America/New_York",
     "headline": "Timed, with a zone (and a DST gap)", "one_year_later": "It moved forward an hour."},
    {"id": "offset", "date": "2025-06-01T23:45:00+05:30", "headline": "Timed with an offset",
     "followup_after": "1h30m", "one_year_later": "The reveal, 90 minutes later."},
    {"id": "zulu", "date": "2025-07-01T08:00:00.250000Z", "headline": "Zulu, with microseconds"},
    {"id": "naive", "date": "2025-07-02T09:15", "headline": "Naive time, the bot's zone"},
    {"id": "lists", "date": "2025-04-04", "headline": "Platforms, tags and a language",
     "platforms": ["Bluesky", "mastodon"], "tags": ["ai", "#research", "élan"], "lang": "pt-BR",
     "category": "yes", "source": "123", "replies": "followers"},
    {"id": "tricky", "date": "2025-05-05T12:00:00+00:00",
     "headline": "Breaking: \"AI\" wins — 'again', #1 & more: - ? * | > % @",
     "summary": "null", "body": TRICKY_BODY, "category": "true", "source": "Reuters, AP; others",
     "url": "https://example.com/a?b=1&c=%20x#frag", "one_year_later": "Line one\nline two: ok\n---\nthree",
     "followup_after": "2d", "tags": ["one", "two"]},
    {"id": "pics", "date": "2025-08-01T10:00:00+02:00", "headline": "Pictures with alt text",
     "url": "https://example.com/bridge", "image": "pics/card.png",
     "images": [{"path": "pics/then.jpg", "alt": "The bridge in scaffolding, 1999: \"before\""},
                {"path": "pics/map.png", "alt": "A map, with commas, of the river"}],
     "followup_images": [{"path": "pics/now.jpg", "alt": "The finished bridge\nwith traffic"}],
     "one_year_later": "It opened in June."},
]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A folder with a JSON story file of varied stories, and the pictures they show."""
    folder = tmp_path / "src"
    (folder / "pics").mkdir(parents=True)
    picture(folder / "pics" / "then.jpg")
    picture(folder / "pics" / "map.png", (300, 200), (20, 90, 200))
    picture(folder / "pics" / "now.jpg", (800, 600), (30, 160, 60))
    picture(folder / "pics" / "card.png", (600, 315), (90, 90, 10))
    path = folder / "stories.json"
    path.write_text(json.dumps(RECORDS, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def fresh_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database of the same kind as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with postgres_schema() as url:
        yield url


def contents(store: Store) -> dict[str, dict]:
    with store.session() as session:
        return {row.id: row.content for row in session.scalars(select(StoryRow))}


def deliveries(store: Store) -> list[tuple]:
    with store.session() as session:
        return sorted((d.story_id, d.platform, d.kind, d.part, d.parts, d.text,
                       d.due_at.replace(tzinfo=None), json.dumps(d.pictures, sort_keys=True),
                       json.dumps(d.attachments, sort_keys=True))
                      for d in session.scalars(select(DeliveryRow)))


def exported_files(report, out: Path) -> list[Path]:
    return [Path(f) for f in report.files] if report.files else [out]


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_and_reload_round_trips_in_every_format(fmt, source, store, settings, fresh_url):
    planner = Planner(store, settings)
    stories = load_stories([source])
    assert planner.load(stories, now=NOW).added and len(stories) == len(RECORDS)
    # beside the source file (a Markdown folder export writes one file per story there)
    out = source.parent if fmt == "md" else source.with_name(f"export.{fmt}")
    report = export(store, None, fmt=fmt, out=out)
    assert report.stories == len(RECORDS) and report.warned == 0
    files = exported_files(report, out)
    assert len(files) == (len(RECORDS) if fmt == "md" else 1)

    again = planner.load(load_stories(files), now=NOW)  # the same queue: nothing changes
    assert (again.unchanged, again.updated, again.added) == (len(RECORDS), [], [])

    fresh = Store(fresh_url)
    try:
        Planner(fresh, settings).load(load_stories(files), now=NOW)
        assert contents(fresh) == contents(store)
        assert deliveries(fresh) == deliveries(store) and deliveries(store)
    finally:
        fresh.dispose()


def test_an_export_writes_only_the_fields_set_in_field_order(source):
    stories = {s.id: s for s in load_stories([source])}
    plain = story_fields(stories["plain"])
    assert plain == {"id": "plain", "date": "2025-03-01", "headline": "A date-only story"}
    fields = story_fields(stories["pics"])
    assert list(fields) == [f for f in FILE_FIELDS if f in fields]
    assert fields["images"][0] == {"path": "pics/then.jpg", "alt": "The bridge in scaffolding, 1999: \"before\""}
    assert story_fields(stories["offset"])["followup_after"] == "1h30m"
    assert story_fields(stories["zoned"])["date"] == "2025-03-09T02:30:00"
    assert story_fields(stories["lists"])["tags"] == ["ai", "research", "élan"]
    text = text_of([(stories["plain"], "")], "yaml")
    assert text == "- id: plain\n  date: 2025-03-01\n  headline: A date-only story\n"


def test_a_markdown_body_keeps_its_dashes_hashes_and_spacing(source):
    story = next(s for s in load_stories([source]) if s.id == "tricky")
    text = markdown_story(story_fields(story))
    front, body = text.split("\n---\n\n", 1)
    assert "body" not in front and body == TRICKY_BODY + "\n"
    path = source.with_name("tricky.md")
    path.write_text(text, encoding="utf-8")
    assert load_stories([path])[0].content() == story.content()


def test_the_story_card_is_drawn_again_not_written(tmp_path, store, make_settings):
    path = tmp_path / "s.yaml"
    path.write_text("- {id: card, date: 2025-03-01, headline: A story with its card}\n")
    policy = MediaPolicy(story_card=True)
    planner = Planner(store, make_settings(story_card="true"))
    planner.load(load_stories([path], media=policy), now=NOW)
    assert contents(store)["card"]["images"]  # the card is a picture of the story
    export(store, None, out=path)
    assert "images" not in path.read_text()
    assert planner.load(load_stories([path], media=policy), now=NOW).unchanged == 1


def drafts(store: Store) -> dict[str, bool]:
    with store.session() as session:
        return dict(session.execute(select(StoryRow.id, StoryRow.draft)).all())


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_draft_is_exported_as_one_and_stays_one_in_a_new_queue(fmt, tmp_path, store, settings, fresh_url):
    """A captured entry exported and loaded into a fresh queue is still a draft there: never posted
    until approved."""
    path = tmp_path / "s.yaml"
    path.write_text("- {id: d, date: 2025-03-01, headline: Rumour}\n- {id: q, date: 2025-03-02, headline: Queued}\n")
    planner = Planner(store, settings)
    planner.load(load_stories([path])[:1], now=NOW, draft=True)
    planner.load(load_stories([path])[1:], now=NOW)
    out = tmp_path / "out" if fmt == "md" else tmp_path / f"out.{fmt}"
    report = export(store, None, fmt=fmt, out=out)
    files = exported_files(report, out)
    approved_only = io.StringIO()
    export(store, ["q"], fmt=fmt, stdout=approved_only)
    assert "true" not in approved_only.getvalue()  # an approved story is written without the flag
    loaded = {s.id: s for s in load_stories(files)}
    assert (loaded["d"].draft, loaded["q"].draft) == (True, False)
    assert planner.load(list(loaded.values()), now=NOW).unchanged == 2  # the same queue: nothing changes
    fresh = Store(fresh_url)
    try:
        fresh_planner = Planner(fresh, settings)
        assert fresh_planner.load(list(loaded.values()), now=NOW).drafts == ["d"]
        assert drafts(fresh) == {"d": True, "q": False}
        assert {d[0] for d in deliveries(fresh)} == {"q"}  # the draft has no posts until approved
        assert fresh_planner.approve(["d"], now=NOW).approved == ["d"]
        assert {d[0] for d in deliveries(fresh)} == {"d", "q"}
    finally:
        fresh.dispose()


def test_a_story_file_draft_flag_never_withdraws_an_approval(tmp_path, planner, store):
    path = tmp_path / "s.yaml"
    path.write_text("- {id: d, date: 2025-03-01, headline: A draft, draft: true}\n")
    assert planner.load(load_stories([path]), now=NOW).drafts == ["d"]
    planner.approve(["d"], now=NOW)
    path.write_text("- {id: d, date: 2025-03-01, headline: Edited after approval, draft: true}\n")
    assert planner.load(load_stories([path]), now=NOW).updated == ["d"]
    assert drafts(store) == {"d": False} and {d[0] for d in deliveries(store)} == {"d"}


# -- picture paths ---------------------------------------------------------------------------


def test_picture_paths_follow_the_output_folder(source, planner, store):
    planner.load(load_stories([source]), now=NOW)
    inside = source.parent / "pics" / "pics.yaml"  # a folder holding the pictures: paths relative to it
    report = export(store, ["pics"], out=inside)
    assert report.warned == 0
    text = inside.read_text()
    assert "path: then.jpg" in text and "image: card.png" in text
    reloaded = load_stories([inside])[0]
    original = contents(store)["pics"]
    assert [i.versions for i in reloaded.images] == [i["versions"] for i in original["images"]]
    assert reloaded.image_sha256 == original["image_sha256"]

    elsewhere = source.parent.parent / "elsewhere"
    elsewhere.mkdir()
    report = export(store, ["pics"], out=elsewhere / "pics.yaml")
    assert report.warned == 4 and "outside" in report.warnings[0] and "load" in report.warnings[0]
    written = (elsewhere / "pics.yaml").read_text()
    assert f"path: {source.parent / 'pics' / 'then.jpg'}" in written  # absolute: where the picture is


def test_with_a_media_folder_picture_paths_stay_as_given(source, tmp_path):
    story = next(s for s in load_stories([source]) if s.id == "pics")
    paths = PicturePaths(tmp_path / "elsewhere", media_dir=source.parent)
    assert story_fields(story, f"{source}:1", paths)["images"][0]["path"] == "pics/then.jpg"
    assert PicturePaths(tmp_path)("https://example.com/a.png", f"{source}:1", "x", "image") == \
        "https://example.com/a.png"


def test_a_dashboard_edit_keeps_the_file_its_pictures_are_beside(source, planner, store):
    planner.load(load_stories([source]), now=NOW)
    edited = next(s for s in load_stories([source]) if s.id == "pics")
    planner.load([dataclasses.replace(edited, headline="Edited", origin="dashboard")], now=NOW, source="dashboard")
    [(story, origin)] = list(stored_stories(store, ["pics"]))
    assert story.headline == "Edited" and origin.startswith(str(source))


# -- reading the queue -------------------------------------------------------------------------


def test_stories_are_read_in_load_order_a_chunk_at_a_time(tmp_path, planner, store):
    for batch in (["m", "b"], ["z", "a", "k"]):
        path = tmp_path / f"{batch[0]}.yaml"
        path.write_text("".join(f"- {{id: {sid}, date: 2025-03-01, headline: Story {sid}}}\n" for sid in batch))
        planner.load(load_stories([path]), now=NOW)
    statements: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: statements.append(statement))
    stories = stored_stories(store, chunk=2)
    assert next(stories)[0].id == "m"
    assert len([s for s in statements if "FROM stories" in s]) == 1  # only the first chunk was read
    assert [s.id for s, _ in stories] == ["b", "z", "a", "k"]
    assert len([s for s in statements if "FROM stories" in s]) == 3
    assert [s.id for s, _ in stored_stories(store, ["k", "m"], chunk=1)] == ["k", "m"]


# -- formats -------------------------------------------------------------------------------


def test_the_format_comes_from_the_option_or_the_file_ending(tmp_path):
    assert plan_format(None, None) == ("yaml", False)
    assert plan_format(None, tmp_path / "a.yml") == ("yaml", False)
    assert plan_format(None, tmp_path / "a.ndjson") == ("jsonl", False)
    assert plan_format(None, tmp_path / "a.markdown") == ("md", False)
    assert plan_format("md", tmp_path / "new-folder") == ("md", True)
    assert plan_format("md", tmp_path) == ("md", True)
    for fmt, out, words in ((None, tmp_path / "a.txt", "cannot tell"), ("json", tmp_path / "a.yaml", "does not match"),
                            ("yaml", tmp_path, "is a folder"), (None, tmp_path, "is a folder")):
        with pytest.raises(ExportError, match=words):
            plan_format(fmt, out)


def test_a_tag_a_csv_cell_cannot_hold_is_an_error_and_leaves_the_file_alone(tmp_path, planner, store):
    path = tmp_path / "s.json"
    path.write_text(json.dumps([{"id": "t", "date": "2025-03-01", "headline": "H", "tags": ["a,b"]}]))
    planner.load(load_stories([path]), now=NOW)
    out = tmp_path / "out.csv"
    out.write_text("kept\n")
    with pytest.raises(ExportError, match="'a,b'.*comma"):
        export(store, None, out=out)
    assert out.read_text() == "kept\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    export(store, None, out=tmp_path / "out.yaml")  # YAML holds it
    assert load_stories([tmp_path / "out.yaml"])[0].tags == ("a,b",)


def test_a_csv_export_refused_for_a_later_story_writes_nothing_at_all(tmp_path, planner, store):
    """The check comes before the first row: standard output (which cannot be taken back) gets nothing."""
    path = tmp_path / "s.yaml"
    path.write_text("- {id: a, date: 2025-06-01, headline: First}\n"
                    "- {id: b, date: 2025-06-02, headline: Second, tags: ['R&D,AI']}\n")
    planner.load(load_stories([path]), now=NOW)
    shown = io.StringIO()
    with pytest.raises(ExportError, match="story b: the tag 'R&D,AI'.*nothing was written"):
        export(store, None, fmt="csv", stdout=shown)
    assert shown.getvalue() == ""
    assert export(store, ["a"], fmt="csv", stdout=shown).stories == 1  # the other story alone is fine


# -- the property ----------------------------------------------------------------------------

_EXTRA = st.sampled_from(["\n", "\t", " ", ":", "#", "-", "'", '"', "|", ">", ",", ";", "\u2028", "\n---\n",
                          "\n...\n", "- ", ": ", " #", "{", "[", "*", "&", "!", "%", "@", "`", "\\", "é", "🧪"])
_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))


def _text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(_CHARS, _EXTRA), max_size=max_size).map(
        lambda parts: CONTROL_RE.sub("", "".join(parts)).strip())


_DATES = st.one_of(
    st.dates(dt.date(1900, 1, 1), dt.date(2999, 12, 31)),
    st.datetimes(dt.datetime(1900, 1, 2), dt.datetime(2999, 12, 30),
                 timezones=st.none() | st.integers(-14 * 60, 14 * 60).map(
                     lambda m: dt.timezone(dt.timedelta(minutes=m)))),
)

_STORIES = st.builds(
    Story,
    id=st.from_regex(_ID_RE, fullmatch=True),
    date=_DATES,
    headline=_text().filter(bool),
    timezone=st.sampled_from([None, "Europe/London", "America/New_York", "Asia/Kolkata"]),
    summary=_text(), body=_text(80), category=_text(10), source=_text(),
    url=st.sampled_from(["", "https://example.com/a?b=1&c=%20#x", "http://example.org/story"]),
    one_year_later=_text(),
    followup_after=st.none() | st.integers(1, 30 * 86400).map(lambda s: dt.timedelta(seconds=s)),
    platforms=st.lists(st.sampled_from(PLATFORMS), unique=True).map(tuple),
    tags=st.lists(st.text("abcxyz019_-éß漢", min_size=1, max_size=8), unique=True, max_size=4).map(tuple),
    lang=st.sampled_from(["", "en", "de", "pt-BR", "zh-Hant"]),
    replies=st.sampled_from(["", "everyone", "followers", "mentioned", "nobody"]),
)


@pytest.mark.parametrize("fmt", FORMATS)
@hypothesis_settings(max_examples=40, deadline=None)
@given(story=_STORIES)
def test_any_story_survives_a_round_trip(fmt, story):
    suffix = {"md": ".md"}.get(fmt, f".{fmt}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"story{suffix}"
        path.write_text(text_of([(story, "")], fmt), encoding="utf-8")
        [loaded] = load_stories([path])
    assert loaded.content() == story.content()


# -- the command line --------------------------------------------------------------------------

STORIES_YAML = """\
- id: first
  date: 2025-03-01
  headline: The first story
  one_year_later: As it turned out.
- id: second
  date: 2025-03-02T10:00:00+01:00
  headline: The second story
"""


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    folder = isolate(tmp_path, monkeypatch)
    (folder / "stories.yaml").write_text(STORIES_YAML)
    return folder


def cli_planner() -> tuple[Store, Planner]:
    settings = load_settings({"database_url": "sqlite:///queue.db"}, environ={}, env_file=None)
    store = Store(settings.database_url)
    return store, Planner(store, settings)


def edit_in_dashboard(file: str | Path, story_id: str) -> None:
    """Save the story ``story_id`` of ``file`` as the dashboard's editor does, its reveal rewritten."""
    store, planner = cli_planner()
    try:
        saved = next(s for s in load_stories([file]) if s.id == story_id)
        planner.load([dataclasses.replace(saved, one_year_later="Written in the browser")], now=NOW,
                     source="dashboard")
    finally:
        store.dispose()


def test_cli_dashboard_edit_then_export_keeps_it_and_later_file_changes_load(cli_env, capsys):
    assert run_cli(capsys, "load", "stories.yaml")[0] == 0
    edit_in_dashboard("stories.yaml", "first")
    code, _, error = run_cli(capsys, "load", "stories.yaml")  # the file would overwrite the edit
    assert code == 2 and "stories.yaml:1: first:" in error and "--force" in error
    assert "Written in the browser" not in (cli_env / "stories.yaml").read_text()

    code, output, _ = run_cli(capsys, "export", "--out", "stories.yaml")
    assert code == 0 and "Exported 2 stories to stories.yaml" in output
    assert "one_year_later: Written in the browser" in (cli_env / "stories.yaml").read_text()
    code, output, _ = run_cli(capsys, "load", "stories.yaml")
    assert code == 0 and "0 new, 0 updated, 2 unchanged" in output

    # the file caught up with the dashboard: a later change of the file loads without --force
    (cli_env / "stories.yaml").write_text(STORIES_YAML)
    code, output, _ = run_cli(capsys, "load", "stories.yaml")
    assert code == 0 and "1 updated" in output
    code, output, _ = run_cli(capsys, "export", "first", "--format", "json")
    assert json.loads(output)[0]["one_year_later"] == "As it turned out."


def test_cli_a_file_that_caught_up_with_an_edit_loads_under_other_settings(cli_env, capsys):
    """The edit conflict compares the story, not its hash (which also covers the settings that shape the
    posts): after `export`, a load under another time zone or platform list finds the file caught up
    with the dashboard, re-plans the posts for those settings and clears the mark."""
    assert run_cli(capsys, "load", "stories.yaml")[0] == 0
    edit_in_dashboard("stories.yaml", "first")
    assert run_cli(capsys, "export", "--out", "stories.yaml")[0] == 0
    code, output, error = run_cli(capsys, "--timezone", "Asia/Tokyo", "load", "stories.yaml")
    assert code == 0 and "2 updated" in output, output + error
    (cli_env / "stories.yaml").write_text(STORIES_YAML)  # the mark is cleared: a later file change loads
    code, output, error = run_cli(capsys, "--timezone", "Asia/Tokyo", "load", "stories.yaml")
    assert code == 0 and "1 updated" in output, output + error


def test_cli_export_writes_standard_output_in_the_format_asked(cli_env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    code, output, _ = run_cli(capsys, "export")
    assert code == 0 and output == STORIES_YAML  # the file as it was written: default yaml, load order
    code, output, _ = run_cli(capsys, "export", "second", "first", "--format", "jsonl")
    assert [json.loads(line)["id"] for line in output.splitlines()] == ["second", "first"]
    code, output, _ = run_cli(capsys, "export", "second", "--format", "md")
    assert code == 0 and output.startswith("---\nid: second\n")
    code, output, _ = run_cli(capsys, "export", "--format", "csv")
    assert output.splitlines()[0] == ",".join(FILE_FIELDS) and output.count("\n") == 3


def test_cli_unknown_ids_are_listed_and_nothing_is_written(cli_env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    code, output, error = run_cli(capsys, "export", "first", "nope", "gone", "--out", "out.yaml")
    assert code == 1 and output == ""
    assert "no such stories: nope, gone" in error
    assert not (cli_env / "out.yaml").exists()
    code, output, error = run_cli(capsys, "export", "nope")
    assert code == 1 and output == "" and "no such story: nope" in error


def test_cli_markdown_of_several_stories_needs_a_folder(cli_env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    code, output, error = run_cli(capsys, "export", "--format", "md")
    assert code == 1 and output == "" and "one story" in error and "--out FOLDER" in error
    code, output, _ = run_cli(capsys, "export", "--format", "md", "--out", "md")
    assert code == 0 and "2 files in md" in output
    assert sorted(p.name for p in (cli_env / "md").iterdir()) == ["first.md", "second.md"]
    code, output, _ = run_cli(capsys, "load", "md")
    assert code == 0 and "2 unchanged" in output


def test_cli_never_overwrites_a_file_it_was_not_asked_to(cli_env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    (cli_env / "md").mkdir()
    (cli_env / "md" / "first.md").write_text("someone else's file\n")
    code, _, error = run_cli(capsys, "export", "--format", "md", "--out", "md")
    assert code == 1 and "first.md" in error and "not the story's own" in error
    assert (cli_env / "md" / "first.md").read_text() == "someone else's file\n"
    assert not (cli_env / "md" / "second.md").exists()

    # a story loaded from a Markdown file is written back to that very file
    (cli_env / "md" / "first.md").unlink()
    (cli_env / "md" / "my-name.md").write_text("---\nid: third\ndate: 2025-04-01\nheadline: Third\n---\n")
    run_cli(capsys, "load", "md/my-name.md")
    code, _, _ = run_cli(capsys, "export", "--format", "md", "--out", "md")
    assert code == 0
    assert sorted(p.name for p in (cli_env / "md").iterdir()) == ["first.md", "my-name.md", "second.md"]
    assert "headline: Third" in (cli_env / "md" / "my-name.md").read_text()


def test_cli_out_is_replaced_atomically_and_keeps_its_permissions(cli_env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    out = cli_env / "out.json"
    out.write_text("old\n")
    os.chmod(out, 0o640)
    code, _, _ = run_cli(capsys, "export", "--out", "out.json")
    assert code == 0 and [s["id"] for s in json.loads(out.read_text())] == ["first", "second"]
    assert out.stat().st_mode & 0o777 == 0o640
    assert not [p for p in cli_env.iterdir() if p.name.endswith(".tmp")]
    code, _, error = run_cli(capsys, "export", "--format", "json", "--out", "out.yaml")
    assert code == 1 and "does not match" in error
    code, output, _ = run_cli(capsys, "export", "--out", "out.jsonl", "--json")
    assert json.loads(output)["stories"] == 2


def test_cli_out_through_a_symbolic_link_writes_the_linked_file_and_keeps_the_link(cli_env, capsys):
    """A story file kept in version control and linked into place: the export lands in the real file."""
    run_cli(capsys, "load", "stories.yaml")
    (cli_env / "repo").mkdir()
    real = cli_env / "repo" / "stories.json"
    real.write_text("old\n")
    link = cli_env / "linked.json"
    link.symlink_to(Path("repo") / "stories.json")
    code, _, error = run_cli(capsys, "export", "--out", "linked.json")
    assert code == 0, error
    assert link.is_symlink() and os.readlink(link) == str(Path("repo") / "stories.json")
    assert [s["id"] for s in json.loads(real.read_text())] == ["first", "second"]
    assert not [p for p in (cli_env / "repo").iterdir() if p.name.endswith(".tmp")]


def test_cli_export_from_another_folder_finds_the_story_file_and_its_pictures(cli_env, capsys, monkeypatch):
    """The origin of a loaded story names its file absolutely: an export run from elsewhere writes the
    same picture paths (no re-encoded copy beside the output), and loading the result changes nothing."""
    (cli_env / "q" / "pics").mkdir(parents=True)
    picture(cli_env / "q" / "pics" / "a.jpg")
    (cli_env / "q" / "s.yaml").write_text("- id: p1\n  date: 2025-05-01\n  headline: With a picture\n"
                                          "  images:\n    - {path: pics/a.jpg, alt: A photo}\n")
    db = f"sqlite:///{cli_env / 'queue.db'}"
    assert run_cli(capsys, "load", "q/s.yaml", db=db)[0] == 0
    (cli_env / "elsewhere").mkdir()
    monkeypatch.chdir(cli_env / "elsewhere")
    code, _, error = run_cli(capsys, "export", "--out", "../q/s.yaml", db=db)
    assert code == 0, error
    assert "path: pics/a.jpg" in (cli_env / "q" / "s.yaml").read_text()
    assert sorted(p.name for p in (cli_env / "q").iterdir()) == ["pics", "s.yaml"]
    monkeypatch.chdir(cli_env)
    code, output, error = run_cli(capsys, "load", "q/s.yaml", db=db)
    assert code == 0 and "1 unchanged" in output, output + error


def test_cli_keeping_a_dashboard_edit_in_a_folder_of_story_files_as_load_says(cli_env, capsys):
    """A queue loaded from a folder of files: the command the refused load names writes back that file's
    stories only (not every story, which would repeat the other files' in it), and the folder loads."""
    (cli_env / "d").mkdir()
    (cli_env / "d" / "one.yaml").write_text("- id: a1\n  date: 2025-05-01\n  headline: One\n"
                                            "- id: a3\n  date: 2025-05-03\n  headline: Three\n")
    (cli_env / "d" / "two.yaml").write_text("- id: a2\n  date: 2025-05-02\n  headline: Two\n")
    assert run_cli(capsys, "load", "d")[0] == 0
    edit_in_dashboard("d/one.yaml", "a1")
    (cli_env / "d" / "one.yaml").write_text((cli_env / "d" / "one.yaml").read_text().replace("One", "One!"))
    code, _, error = run_cli(capsys, "load", "d")
    assert code == 2 and "keep the edit with `oneyearago export --from d/one.yaml --out d/one.yaml`" in error
    assert "d/one.yaml:1" in error and str(cli_env) not in error  # named as typed, as other problems are
    code, output, error = run_cli(capsys, "export", "--from", "d/one.yaml", "--out", "d/one.yaml")
    assert code == 0 and "Exported 2 stories" in output, error
    written = (cli_env / "d" / "one.yaml").read_text()
    assert "Written in the browser" in written and "a3" in written and "a2" not in written
    code, output, error = run_cli(capsys, "load", "d")
    assert code == 0 and "3 unchanged" in output, output + error
    code, _, error = run_cli(capsys, "export", "--from", "d/three.yaml")
    assert code == 1 and "cannot read the stories of d/three.yaml" in error and "nothing was written" in error
    code, _, error = run_cli(capsys, "export", "a1", "--from", "d/one.yaml")
    assert code == 2 and "not both" in error


def test_cli_export_from_a_file_keeps_a_story_added_to_it_and_one_moved_into_it(cli_env, capsys):
    """``export --from F --out F`` writes the stories F holds now: one moved into F unchanged (its stored
    origin was another file) and one added to F but not loaded (the load was refused for a dashboard
    edit) are kept, the new one as F holds it, and F then loads."""
    (cli_env / "d").mkdir()
    one, two = cli_env / "d" / "one.yaml", cli_env / "d" / "two.yaml"
    one.write_text("- id: a1\n  date: 2025-05-01\n  headline: One\n")
    two.write_text("- id: a2\n  date: 2025-05-02\n  headline: Two\n")
    assert run_cli(capsys, "load", "d")[0] == 0
    one.write_text(one.read_text() + two.read_text())  # a2 moves into one.yaml unchanged
    two.unlink()
    code, output, error = run_cli(capsys, "load", "d")
    assert code == 0 and "2 unchanged" in output, output + error
    store, _ = cli_planner()
    try:
        with store.session() as session:  # the unchanged story's origin names the file it stands in now
            assert session.scalar(select(StoryRow.origin).where(StoryRow.id == "a2")) == f"{one}:4"
    finally:
        store.dispose()
    edit_in_dashboard(one, "a1")
    one.write_text(one.read_text() + "- id: a9\n  date: 2025-05-09\n  headline: Added to the file\n")
    code, _, error = run_cli(capsys, "load", "d")
    assert code == 2 and "export --from d/one.yaml --out d/one.yaml" in error
    code, output, error = run_cli(capsys, "export", "--from", "d/one.yaml", "--out", "d/one.yaml")
    assert code == 0 and "Exported 3 stories" in output, error
    assert "Not in the queue yet, written as d/one.yaml holds them: a9" in error
    assert [s.id for s in load_stories([one])] == ["a1", "a2", "a9"]
    written = one.read_text()
    assert "Written in the browser" in written and "Added to the file" in written
    code, output, error = run_cli(capsys, "load", "d")
    assert code == 0 and "1 new, 0 updated, 2 unchanged" in output, output + error


def test_cli_export_from_a_file_reads_no_picture_of_a_story_the_queue_holds(cli_env, capsys):
    """The queue holds the pictures of the stories it has: `export --from F` reads F for its ids (and
    for the stories the queue lacks), so a picture deleted since the load does not stop it; the export
    writes the picture back beside the file from the bytes stored with the queue."""
    picture(cli_env / "pic.png")
    (cli_env / "one.yaml").write_text("- id: a1\n  date: 2025-05-01\n  headline: One\n"
                                      "  images:\n    - {path: pic.png, alt: A chart}\n")
    assert run_cli(capsys, "load", "one.yaml")[0] == 0
    (cli_env / "pic.png").unlink()
    code, output, error = run_cli(capsys, "export", "--from", "one.yaml", "--out", "one.yaml")
    assert code == 0 and "Exported 1 story" in output, error
    assert (cli_env / "pic.png").exists()
    code, output, error = run_cli(capsys, "load", "one.yaml")
    assert code == 0 and "1 unchanged" in output, output + error


def test_cli_export_from_a_file_that_does_not_read_writes_nothing(cli_env, capsys):
    (cli_env / "one.yaml").write_text("- id: a1\n  date: 2025-05-01\n  headline: One\n")
    assert run_cli(capsys, "load", "one.yaml")[0] == 0
    broken = "- id: a1\n  date: 2025-05-01\n  headline: One\n- id: a2\n  date: someday\n  headline: Two\n"
    (cli_env / "one.yaml").write_text(broken)
    code, _, error = run_cli(capsys, "export", "--from", "one.yaml", "--out", "one.yaml")
    assert code == 1 and "one.yaml:4" in error and "cannot read the stories of one.yaml" in error
    assert (cli_env / "one.yaml").read_text() == broken


def test_cli_export_of_a_queue_that_does_not_exist_writes_an_empty_file(cli_env, capsys):
    code, output, _ = run_cli(capsys, "export", "--format", "json")
    assert code == 0 and json.loads(output) == []
    assert not (cli_env / "queue.db").exists()  # nothing created


def test_cli_a_file_that_cannot_be_written_is_one_clear_error(cli_env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    code, output, error = run_cli(capsys, "export", "--out", "no-such-folder/out.yaml")
    assert code == 1 and "cannot write no-such-folder" in error and "folder exists" in error
    assert "internal error" not in error


def test_a_file_too_large_for_load_is_warned_about(tmp_path, planner, store, monkeypatch):
    from posts import limits

    path = tmp_path / "s.yaml"
    path.write_text(STORIES_YAML)
    planner.load(load_stories([path]), now=NOW)
    assert export(store, None, out=tmp_path / "a.yaml").warned == 0
    monkeypatch.setitem(limits.MAX_FILE_BYTES, "yaml", 100)
    report = export(store, None, out=tmp_path / "b.yaml")
    assert report.warned == 1 and "at most 100 bytes" in report.warnings[0] and "jsonl" in report.warnings[0]
    assert export(store, None, fmt="yaml", stdout=io.StringIO()).warned == 1


def test_cli_a_reader_that_stops_early_ends_the_export_quietly(tmp_path):
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'big.db'}"
    settings = load_settings({"database_url": url}, environ={}, env_file=None)
    store = Store(url)
    try:
        Planner(store, settings).load([Story(id=f"s{i}", date=dt.date(2025, 3, 1), headline=f"Story {i} " + "x" * 80)
                                       for i in range(2000)], now=NOW, render=False)
    finally:
        store.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEYEARAGO_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "--db", url, "export"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    assert proc.stdout is not None and proc.stdout.readline() == b"- id: s0\n"
    proc.stdout.close()  # as `head -1` does: the rest (well over a pipe's buffer) has nowhere to go
    _, error = proc.communicate(timeout=60)
    assert proc.returncode == 1 and error == b""


def test_cli_warns_about_each_picture_load_would_refuse(source, tmp_path, monkeypatch, capsys):
    (tmp_path / "elsewhere").mkdir()
    folder = isolate(tmp_path / "elsewhere", monkeypatch)  # the pictures are in the source's folder, not here
    assert run_cli(capsys, "load", str(source))[0] == 0
    monkeypatch.setattr("bot.sources.export.MAX_WARNINGS", 1)
    code, _, error = run_cli(capsys, "export", "pics", "--out", "pics.yaml")
    assert code == 0 and error.count("warning:") == 2
    assert "pics: image 'pics/card.png' lies outside" in error and "… and 3 more" in error
    assert str(source.parent / "pics" / "then.jpg") in (folder / "pics.yaml").read_text()


def test_stories_that_differ_only_in_case_never_share_a_markdown_file(tmp_path, planner, store):
    path = tmp_path / "s.yaml"
    path.write_text("- {id: Story, date: 2025-03-01, headline: One}\n- {id: story, date: 2025-03-01, headline: Two}\n")
    planner.load(load_stories([path]), now=NOW)
    with pytest.raises(ExportError, match="Story and story would both be written"):
        export(store, None, fmt="md", out=tmp_path / "md")
    assert not (tmp_path / "md").exists()


def test_cli_a_new_out_file_gets_the_usual_permissions_and_json_needs_out(cli_env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    umask = os.umask(0o027)
    try:
        assert run_cli(capsys, "export", "--out", "new.csv")[0] == 0
    finally:
        os.umask(umask)
    assert (cli_env / "new.csv").stat().st_mode & 0o777 == 0o640
    code, output, error = run_cli(capsys, "export", "--json")
    assert code == 2 and output == "" and "--json needs --out" in error
