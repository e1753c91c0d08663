"""Table tests of the story loader: every format, every field, every validation error."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest

import bot.sources
from bot.sources.stories import load_stories, story_files
from posts.errors import Problem, StoryError
from posts.story import FILE_FIELDS, Story, derive_id

UTC = dt.UTC
DATE_HINT = ("write YYYY-MM-DD, or an ISO 8601 date-time such as 2025-01-12T14:30:00 or "
             "2025-01-12T14:30:00+01:00")
EXTENSIONS_HINT = ".csv, .json, .jsonl, .markdown, .md, .ndjson, .yaml, .yml"


def case(*values: object, id: str):
    return pytest.param(*values, id=id)


def write(folder: Path, name: str, text: str) -> Path:
    """Write a fixture file (dedented, without its first newline) and return its path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(*paths: Path | str) -> list[Problem]:
    with pytest.raises(StoryError) as info:
        load_stories(paths)
    return info.value.problems


def only_problem(*paths: Path | str) -> Problem:
    problems = problems_of(*paths)
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    return problems[0]


def load_one(folder: Path, name: str, text: str) -> Story:
    stories = load_stories([write(folder, name, text)])
    assert len(stories) == 1
    return stories[0]


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------

# The same two stories in every format: one date-only, one with a time and a time zone.
FORMATS = [
    case("stories.yaml", """
        - date: 2025-01-20
          headline: DeepSeek releases R1
          tags: [deepseek, models]

        - date: 2025-01-21T16:30:00
          timezone: America/New_York
          headline: Stargate unveiled at the White House
          platforms: [x, bluesky]
          followup_after: 6h
        """, [1, 5], id="yaml-list"),
    case("stories.yml", """
        ---
        date: 2025-01-20
        headline: DeepSeek releases R1
        tags: deepseek, models
        ---
        # the second story
        date: 2025-01-21T16:30:00
        timezone: America/New_York
        headline: Stargate unveiled at the White House
        platforms: x, bluesky
        followup_after: 6h
        """, [2, 7], id="yaml-documents"),
    case("stories.json", """
        [
          {"date": "2025-01-20", "headline": "DeepSeek releases R1", "tags": ["deepseek", "models"]},
          {
            "date": "2025-01-21T16:30:00",
            "timezone": "America/New_York",
            "headline": "Stargate unveiled at the White House",
            "platforms": ["x", "bluesky"],
            "followup_after": "6h"
          }
        ]
        """, [2, 3], id="json-array"),
    case("stories.jsonl", """
        {"date": "2025-01-20", "headline": "DeepSeek releases R1", "tags": ["deepseek", "models"]}

        {"date": "2025-01-21T16:30:00", "timezone": "America/New_York", "headline": "Stargate unveiled at the White House", "platforms": "x,bluesky", "followup_after": "6h"}
        """, [1, 3], id="json-lines"),
    case("stories.ndjson", """
        {"date": "2025-01-20", "headline": "DeepSeek releases R1", "tags": ["deepseek", "models"]}
        {"date": "2025-01-21T16:30:00", "timezone": "America/New_York", "headline": "Stargate unveiled at the White House", "platforms": "x,bluesky", "followup_after": "6h"}
        """, [1, 2], id="ndjson"),
    case("stories.csv", """
        date,headline,tags,timezone,platforms,followup_after
        2025-01-20,DeepSeek releases R1,"deepseek, models",,,
        2025-01-21T16:30:00,Stargate unveiled at the White House,,America/New_York,"x,bluesky",6h
        """, [2, 3], id="csv"),
]

EXPECTED_FORMAT_STORIES = [
    {"date": dt.date(2025, 1, 20), "headline": "DeepSeek releases R1", "timezone": None,
     "tags": ("deepseek", "models"), "platforms": (), "followup_after": None},
    {"date": dt.datetime(2025, 1, 21, 16, 30), "headline": "Stargate unveiled at the White House",
     "timezone": "America/New_York", "tags": (), "platforms": ("x", "bluesky"),
     "followup_after": dt.timedelta(hours=6)},
]


@pytest.mark.parametrize(("name", "text", "lines"), FORMATS)
def test_every_format_reads_the_same_stories(tmp_path, name, text, lines):
    path = write(tmp_path, name, text)
    stories = load_stories([path])
    assert len(stories) == 2
    for story, expected in zip(stories, EXPECTED_FORMAT_STORIES, strict=True):
        for field, value in expected.items():
            assert getattr(story, field) == value, field
        assert story.id == derive_id(story.date, story.headline)
        assert story.lang == ""  # the bot's default applies (ONEYEARAGO_LANG)
    assert [s.origin for s in stories] == [f"{path}:{line}" for line in lines]


def test_every_format_gives_identical_content(tmp_path):
    contents = []
    for number, (name, text, _lines) in enumerate(p.values for p in FORMATS):
        path = write(tmp_path / str(number), name, text)
        contents.append([s.content() for s in load_stories([path])])
    assert all(c == contents[0] for c in contents[1:])


def test_markdown_story_takes_its_body_from_after_the_front_matter(tmp_path):
    path = write(tmp_path, "sleeper.md", """
        ---
        id: sleeper-agents
        date: 2024-01-12
        headline: "Models can be trained to deceive"
        tags: [ai-safety, research]
        ---

        First paragraph of the *body*.

        Second paragraph.

        """)
    [story] = load_stories([path])
    assert story.id == "sleeper-agents"
    assert story.date == dt.date(2024, 1, 12)
    assert story.headline == "Models can be trained to deceive"
    assert story.body == "First paragraph of the *body*.\n\nSecond paragraph."
    assert story.tags == ("ai-safety", "research")
    assert story.origin == f"{path}:1"


@pytest.mark.parametrize(("text", "body"), [
    case("---\ndate: 2024-01-12\nheadline: H\n---\n", "", id="no-body"),
    case("---\ndate: 2024-01-12\nheadline: H\nbody: From the front matter\n---\n", "From the front matter",
         id="body-in-front-matter-only"),
    case("---\ndate: 2024-01-12\nheadline: H\n...\nThe body\n", "The body", id="front-matter-ends-with-dots"),
    case("---\r\ndate: 2024-01-12\r\nheadline: H\r\n---\r\nWindows body\r\n", "Windows body",
         id="windows-line-endings"),
])
def test_markdown_front_matter_variants(tmp_path, text, body):
    path = tmp_path / "story.markdown"
    path.write_bytes(text.encode())
    [story] = load_stories([path])
    assert (story.headline, story.body) == ("H", body)


def test_a_folder_loads_every_story_file_in_sorted_order(tmp_path):
    write(tmp_path, "b.json", '[{"date": "2025-01-02", "headline": "B from JSON"}]')
    write(tmp_path, "a.yaml", "- date: 2025-01-01\n  headline: A from YAML\n")
    write(tmp_path, "c.csv", "date,headline\n2025-01-03,C from CSV\n")
    write(tmp_path, "sub/d.md", "---\ndate: 2025-01-04\nheadline: D from Markdown\n---\nBody\n")
    write(tmp_path, "sub/deeper/e.jsonl", '{"date": "2025-01-05", "headline": "E from JSON Lines"}\n')
    write(tmp_path, "z.YML", "- date: 2025-01-06\n  headline: Z with an upper-case ending\n")
    # ignored: hidden files and folders, and files that are not story files
    write(tmp_path, ".hidden.yaml", "- this: is not a story\n")
    write(tmp_path, ".git/config.yaml", "- nor: this\n")
    write(tmp_path, "sub/.drafts/x.md", "not even front matter\n")
    write(tmp_path, "notes.txt", "free text\n")
    write(tmp_path, "picture.png", "")
    stories = load_stories([tmp_path])
    assert [s.headline for s in stories] == [
        "A from YAML", "B from JSON", "C from CSV", "D from Markdown", "E from JSON Lines",
        "Z with an upper-case ending",
    ]
    assert [Path(s.origin.rsplit(":", 1)[0]).relative_to(tmp_path).as_posix() for s in stories] == [
        "a.yaml", "b.json", "c.csv", "sub/d.md", "sub/deeper/e.jsonl", "z.YML",
    ]


def test_story_files_lists_files_in_sorted_order(tmp_path):
    for name in ["b.yaml", "a.json", "sub/c.csv", ".hidden/d.yaml", "e.txt"]:
        write(tmp_path, name, "")
    files, problems = story_files([tmp_path])
    assert problems == []
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.json", "b.yaml", "sub/c.csv"]


def test_several_paths_load_in_the_order_given(tmp_path):
    second = write(tmp_path, "b.yaml", "- date: 2025-01-02\n  headline: Second\n")
    first = write(tmp_path, "a.yaml", "- date: 2025-01-01\n  headline: First\n")
    assert [s.headline for s in load_stories([second, first])] == ["Second", "First"]
    assert [s.headline for s in load_stories([str(first), str(second)])] == ["First", "Second"]


def test_a_file_named_twice_is_read_once(tmp_path):
    path = write(tmp_path, "a.yaml", "- id: only-once\n  date: 2025-01-01\n  headline: Once\n")
    assert [s.id for s in load_stories([path, path])] == ["only-once"]
    assert [s.id for s in load_stories([tmp_path, path])] == ["only-once"]
    assert [s.id for s in load_stories([path, tmp_path / "." / "a.yaml"])] == ["only-once"]


@pytest.mark.parametrize(("name", "text"), [
    case("a.yaml", "- date: 2025-01-01\n  headline: BOM\n", id="yaml"),
    case("a.json", '[{"date": "2025-01-01", "headline": "BOM"}]', id="json"),
    case("a.jsonl", '{"date": "2025-01-01", "headline": "BOM"}\n', id="jsonl"),
    case("a.csv", "date,headline\n2025-01-01,BOM\n", id="csv"),
    case("a.md", "---\ndate: 2025-01-01\nheadline: BOM\n---\n", id="markdown"),
])
def test_a_byte_order_mark_is_ignored_in_every_format(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    [story] = load_stories([path])
    assert story.headline == "BOM"
    assert story.origin == f"{path}:1" if name != "a.csv" else f"{path}:2"


@pytest.mark.parametrize(("name", "text"), [
    case("empty.yaml", "", id="empty-yaml"),
    case("comments.yaml", "# nothing here yet\n", id="comments-only-yaml"),
    case("empty-list.yaml", "[]\n", id="empty-yaml-list"),
    case("empty.json", "[ ]\n", id="empty-json-array"),
    case("empty.jsonl", "\n\n", id="blank-json-lines"),
    case("header-only.csv", "date,headline\n", id="csv-header-only"),
])
def test_a_file_without_stories_loads_nothing(tmp_path, name, text):
    assert load_stories([write(tmp_path, name, text)]) == []


def test_empty_yaml_documents_are_skipped(tmp_path):
    path = write(tmp_path, "stories.yaml", """
        ---
        date: 2025-01-01
        headline: One
        ---
        ---
        # only a comment
        ---
        date: 2025-01-02
        headline: Two
        ---
        """)
    stories = load_stories([path])
    assert [(s.headline, s.origin) for s in stories] == [("One", f"{path}:2"), ("Two", f"{path}:8")]


def test_csv_lines_count_blank_lines_and_multi_line_cells(tmp_path):
    path = write(tmp_path, "stories.csv", """
        date,headline,summary

        2025-01-01,First,"a summary
        over two lines"

        2025-01-02,Second,
        ,,
        2025-01-03,Third,
        """)
    stories = load_stories([path])
    assert [(s.headline, s.origin) for s in stories] == [
        ("First", f"{path}:3"), ("Second", f"{path}:6"), ("Third", f"{path}:8"),
    ]
    assert stories[0].summary == "a summary\nover two lines"


def test_csv_header_names_are_trimmed_and_empty_cells_are_absent(tmp_path):
    story = load_one(tmp_path, "s.csv", """
        date , headline , lang , tags
        2025-01-01,  Padded headline  ,,
        """)
    assert (story.headline, story.lang, story.tags) == ("Padded headline", "", ())


def test_json_lines_keep_unicode_line_separators_inside_strings(tmp_path):
    path = tmp_path / "s.jsonl"
    lines = ['{"date": "2025-01-01", "headline": "one\u2028two"}', '{"date": "2025-01-02", "headline": "x\u2029y"}']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stories = load_stories([path])
    assert [(s.headline, s.origin) for s in stories] == [("one\u2028two", f"{path}:1"), ("x\u2029y", f"{path}:2")]


def test_loading_twice_gives_the_same_stories(tmp_path):
    path = write(tmp_path, "s.yaml", FORMATS[0].values[1])
    assert load_stories([path]) == load_stories([path])


def test_progress_is_reported_every_thousand_stories(tmp_path):
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"date": "2025-01-01", "headline": f"Story {n}"}) + "\n"
                            for n in range(2500)), encoding="utf-8")
    seen: list[int] = []
    stories = load_stories([path], progress=seen.append)
    assert len(stories) == 2500
    assert seen == [1000, 2000]


# --------------------------------------------------------------------------------------------
# Fields
# --------------------------------------------------------------------------------------------

DATES = [
    case("2025-01-12", dt.date(2025, 1, 12), id="date-only"),
    case("2025-01-12T14:30:00", dt.datetime(2025, 1, 12, 14, 30), id="naive"),
    case("2025-01-12T14:30", dt.datetime(2025, 1, 12, 14, 30), id="naive-without-seconds"),
    case("2025-01-12 14:30:00", dt.datetime(2025, 1, 12, 14, 30), id="naive-with-a-space"),
    case("2025-01-12T14:30:00.250", dt.datetime(2025, 1, 12, 14, 30, 0, 250000), id="fractional-seconds"),
    case("2025-01-12T14:30:00+01:00", dt.datetime(2025, 1, 12, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
         id="offset"),
    case("2025-01-12T14:30:00-0530", dt.datetime(2025, 1, 12, 14, 30,
                                                 tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30))),
         id="offset-without-colon"),
    case("2025-01-12T14:30:00Z", dt.datetime(2025, 1, 12, 14, 30, tzinfo=UTC), id="z"),
    case("2024-02-29", dt.date(2024, 2, 29), id="leap-day"),
]


@pytest.mark.parametrize(("text", "expected"), DATES)
@pytest.mark.parametrize("style", ["yaml-plain", "yaml-quoted", "json", "csv"])
def test_dates_parse_as_written(tmp_path, style, text, expected):
    if style == "yaml-plain":
        story = load_one(tmp_path, "s.yaml", f"- date: {text}\n  headline: H\n")
    elif style == "yaml-quoted":
        story = load_one(tmp_path, "s.yaml", f"- date: '{text}'\n  headline: H\n")
    elif style == "json":
        story = load_one(tmp_path, "s.json", json.dumps([{"date": text, "headline": "H"}]))
    else:
        story = load_one(tmp_path, "s.csv", f"date,headline\n{text},H\n")
    assert story.date == expected
    assert type(story.date) is type(expected)
    assert story.has_time == isinstance(expected, dt.datetime)
    if isinstance(expected, dt.datetime):
        assert story.date.utcoffset() == expected.utcoffset()


def test_a_time_zone_is_kept_with_the_story(tmp_path):
    story = load_one(tmp_path, "s.yaml", "- date: 2025-03-09T02:30:00\n  timezone: America/New_York\n  headline: H\n")
    assert story.timezone == "America/New_York"
    assert story.date == dt.datetime(2025, 3, 9, 2, 30)


@pytest.mark.parametrize(("value", "expected"), [
    case("[ai, research]", ("ai", "research"), id="yaml-list"),
    case("ai, research", ("ai", "research"), id="comma-string"),
    case("ai; research", ("ai", "research"), id="semicolon-string"),
    case("'#ai, #research'", ("ai", "research"), id="hashes-dropped"),
    case("[ai, ai, research]", ("ai", "research"), id="duplicates-dropped"),
    case("[ai, 2025]", ("ai", "2025"), id="numbers-become-words"),
    case("[]", (), id="empty-list"),
    case("''", (), id="empty-string"),
])
def test_tags_parse_as_a_list_or_a_comma_string(tmp_path, value, expected):
    story = load_one(tmp_path, "s.yaml", f"- date: 2025-01-01\n  headline: H\n  tags: {value}\n")
    assert story.tags == expected


@pytest.mark.parametrize(("value", "expected"), [
    case("[x, bluesky]", ("x", "bluesky"), id="list"),
    case("reddit", ("reddit",), id="one-name"),
    case("X, Bluesky", ("x", "bluesky"), id="case-insensitive-string"),
    case("[bluesky, x, bluesky]", ("bluesky", "x"), id="duplicates-dropped-order-kept"),
    case("[x, reddit, bluesky]", ("x", "reddit", "bluesky"), id="all"),
    case("[]", (), id="empty-means-every-platform"),
])
def test_platforms_name_a_subset(tmp_path, value, expected):
    story = load_one(tmp_path, "s.yaml", f"- date: 2025-01-01\n  headline: H\n  platforms: {value}\n")
    assert story.platforms == expected


@pytest.mark.parametrize(("value", "expected"), [
    case("90m", dt.timedelta(minutes=90), id="minutes"),
    case("6h", dt.timedelta(hours=6), id="hours"),
    case("1h30m", dt.timedelta(minutes=90), id="hours-and-minutes"),
    case("1d", dt.timedelta(days=1), id="day"),
    case("45", dt.timedelta(minutes=45), id="bare-number-is-minutes"),
])
def test_followup_after_parses_a_delay(tmp_path, value, expected):
    story = load_one(tmp_path, "s.yaml", f"- date: 2025-01-01\n  headline: H\n  followup_after: {value}\n")
    assert story.followup_after == expected


def test_a_story_without_followup_after_uses_the_default_delay(tmp_path):
    story = load_one(tmp_path, "s.yaml", "- date: 2025-01-01\n  headline: H\n")
    assert story.followup_after is None


def test_every_text_field_is_read_and_trimmed(tmp_path):
    story = load_one(tmp_path, "s.json", json.dumps([{
        "id": "every-field", "date": "2025-01-01", "timezone": "Europe/Paris", "headline": "  Headline  ",
        "summary": "Summary", "body": "Body", "category": "research", "source": "Anthropic",
        "url": "https://example.com/story", "one_year_later": "Spoiler", "followup_after": "2h",
        "platforms": ["x"], "tags": ["ai"], "lang": "pt-BR",
    }]))
    assert story == Story(
        id="every-field", date=dt.date(2025, 1, 1), timezone="Europe/Paris", headline="Headline",
        summary="Summary", body="Body", category="research", source="Anthropic", url="https://example.com/story",
        one_year_later="Spoiler", followup_after=dt.timedelta(hours=2), platforms=("x",), tags=("ai",),
        lang="pt-BR", origin=story.origin,
    )


def test_an_image_path_is_relative_to_the_story_file(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    folder = tmp_path / "queue" / "2025"
    (folder / "img").mkdir(parents=True)
    PILImage.new("RGB", (40, 30), "navy").save(folder / "img" / "chart.png")
    monkeypatch.chdir(tmp_path)  # not the story's folder: the path must not depend on the cwd
    story = load_one(folder, "s.yaml", "- date: 2025-01-01\n  headline: H\n  image: img/chart.png\n")
    assert story.image == "img/chart.png"  # as written; the bytes are read now and go with the story
    assert story.prepared_image is not None and story.prepared_image.sha256 == story.image_sha256
    assert (story.prepared_image.width, story.prepared_image.height) == (40, 30)


def test_an_absolute_image_path_is_refused(tmp_path):
    from PIL import Image as PILImage

    picture = tmp_path / "abs.png"
    PILImage.new("RGB", (4, 4)).save(picture)
    assert [p.message for p in problems_of(write(tmp_path, "s.yaml", f"""
        - id: s
          date: 2025-01-01
          headline: Absolute
          image: {picture}
        """))] == [f"image {str(picture)!r} is an absolute path; an image must be inside the story file's folder"]


def test_an_explicit_id_is_kept(tmp_path):
    story = load_one(tmp_path, "s.yaml", "- id: my-story_1.2\n  date: 2025-01-01\n  headline: H\n")
    assert story.id == "my-story_1.2"


def test_a_numeric_id_becomes_text(tmp_path):
    story = load_one(tmp_path, "s.json", '[{"id": 42, "date": "2025-01-01", "headline": "H"}]')
    assert story.id == "42"


DERIVED_ID_FILES = [
    case("s.yaml", "- date: 2024-01-12\n  headline: Anthropic researchers show deception\n", id="yaml"),
    case("s.json", '[{"date": "2024-01-12", "headline": "Anthropic researchers show deception"}]', id="json"),
    case("s.jsonl", '{"headline": "Anthropic researchers show deception", "date": "2024-01-12"}\n', id="jsonl"),
    case("s.csv", "headline,date\nAnthropic researchers show deception,2024-01-12\n", id="csv"),
    case("s.md", "---\ndate: 2024-01-12\nheadline: Anthropic researchers show deception\n---\nBody\n", id="markdown"),
    case("s.yaml", "- date: 2024-01-12T09:15:00+01:00\n  headline: '  Anthropic researchers show deception '\n",
         id="timed-same-day-padded-headline"),
]


@pytest.mark.parametrize(("name", "text"), DERIVED_ID_FILES)
def test_a_derived_id_is_the_same_in_every_format(tmp_path, name, text):
    story = load_one(tmp_path, name, text)
    assert story.id == "2024-01-12-anthropic-researchers-show-deception-" + derive_id(
        dt.date(2024, 1, 12), "Anthropic researchers show deception")[-6:]
    assert story.id == derive_id(dt.date(2024, 1, 12), "Anthropic researchers show deception")


def test_a_different_headline_or_date_derives_a_different_id(tmp_path):
    stories = load_stories([write(tmp_path, "s.yaml", """
        - date: 2024-01-12
          headline: Same words
        - date: 2024-01-13
          headline: Same words
        - date: 2024-01-12
          headline: Same words!
        """)])
    assert len({s.id for s in stories}) == 3


# --------------------------------------------------------------------------------------------
# Validation errors: one story per case, after a valid story, so its line is 4
# --------------------------------------------------------------------------------------------

GOOD = "- id: good\n  date: 2025-01-01\n  headline: A valid story\n"

FIELD_ERRORS = [
    # unknown fields
    case("id: s\ndate: 2025-01-02\nheadline: H\nsumary: text", "s", "unknown field 'sumary'",
         "did you mean 'summary'?", id="unknown-field-did-you-mean"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nHeadline: again", "s", "unknown field 'Headline'",
         "did you mean 'headline'?", id="unknown-field-wrong-case"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nwibble: 1", "s", "unknown field 'wibble'",
         f"known fields: {', '.join(FILE_FIELDS)}", id="unknown-field-no-suggestion"),
    case("id: s\ndate: 2025-01-02\nheadline: H\norigin: x.yaml:1", "s", "unknown field 'origin'",
         f"known fields: {', '.join(FILE_FIELDS)}", id="origin-is-not-a-field"),
    # required fields
    case("id: s\ndate: 2025-01-02", "s", "headline is required",
         "add a headline: the one-line title of the story", id="missing-headline"),
    case("id: s\ndate: 2025-01-02\nheadline: '   '", "s", "headline is required",
         "add a headline: the one-line title of the story", id="blank-headline"),
    case("id: s\nheadline: H", "s", "date is required", DATE_HINT, id="missing-date"),
    case("id: s\ndate:\nheadline: H", "s", "date is required", DATE_HINT, id="null-date"),
    case("id: s\ndate: ''\nheadline: H", "s", "date is required", DATE_HINT, id="empty-date"),
    # invalid dates
    case("id: s\ndate: 2025-02-30\nheadline: H", "s", "date '2025-02-30' is not a valid date", DATE_HINT,
         id="date-30-february"),
    case("id: s\ndate: 2025-02-29\nheadline: H", "s", "date '2025-02-29' is not a valid date", DATE_HINT,
         id="date-29-february-in-a-common-year"),
    case("id: s\ndate: 2025-13-01\nheadline: H", "s", "date '2025-13-01' is not a valid date", DATE_HINT,
         id="date-month-13"),
    case("id: s\ndate: yesterday\nheadline: H", "s", "date 'yesterday' is not a valid date", DATE_HINT,
         id="date-yesterday"),
    case("id: s\ndate: 12/01/2025\nheadline: H", "s", "date '12/01/2025' is not a valid date", DATE_HINT,
         id="date-slashes"),
    case("id: s\ndate: 2025-1-5\nheadline: H", "s", "date '2025-1-5' is not a valid date", DATE_HINT,
         id="date-without-leading-zeros"),
    case("id: s\ndate: 2025-01-12T25:00\nheadline: H", "s", "date '2025-01-12T25:00' is not a valid date",
         DATE_HINT, id="date-hour-25"),
    case("id: s\ndate: 2025-01-12T10:00+25:00\nheadline: H", "s",
         "date '2025-01-12T10:00+25:00' is not a valid date", DATE_HINT, id="date-offset-too-large"),
    case("id: s\ndate: 20250112\nheadline: H", "s", "date 20250112 is not a valid date", DATE_HINT,
         id="date-a-number"),
    case("id: s\ndate: [2025-01-12]\nheadline: H", "s", "date ['2025-01-12'] is not a valid date", DATE_HINT,
         id="date-a-list"),
    # time zones
    case("id: s\ndate: 2025-01-02\ntimezone: Europe/Pari\nheadline: H", "s", "unknown time zone 'Europe/Pari'",
         "did you mean 'Europe/Paris'?", id="timezone-did-you-mean"),
    case("id: s\ndate: 2025-01-02\ntimezone: America/NewYork\nheadline: H", "s",
         "unknown time zone 'America/NewYork'", "did you mean 'America/New_York'?", id="timezone-missing-underscore"),
    case("id: s\ndate: 2025-01-02\ntimezone: Mars/Olympus\nheadline: H", "s", "unknown time zone 'Mars/Olympus'",
         "use an IANA name such as Europe/London or America/New_York", id="timezone-no-suggestion"),
    case("id: s\ndate: 2025-01-02\ntimezone: ../../etc/passwd\nheadline: H", "s",
         "unknown time zone '../../etc/passwd'", "use an IANA name such as Europe/London or America/New_York",
         id="timezone-path"),
    case("id: s\ndate: 2025-01-02\ntimezone: zone.tab\nheadline: H", "s", "unknown time zone 'zone.tab'",
         "use an IANA name such as Europe/London or America/New_York", id="timezone-not-a-zone-file"),
    # URLs
    case("id: s\ndate: 2025-01-02\nheadline: H\nurl: example.com/story", "s",
         "url 'example.com/story' must start with http:// or https://",
         "give the full address, e.g. https://example.com/story", id="url-without-scheme"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nurl: ftp://example.com/story", "s",
         "url 'ftp://example.com/story' must start with http:// or https://",
         "give the full address, e.g. https://example.com/story", id="url-ftp"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nurl: https://localhost/story", "s",
         "url 'https://localhost/story' has no valid host name",
         "give the full address, e.g. https://example.com/story", id="url-host-without-a-dot"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nurl: https:///story", "s",
         "url 'https:///story' has no valid host name",
         "give the full address, e.g. https://example.com/story", id="url-without-host"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nurl: https://example.com/a story", "s",
         "url 'https://example.com/a story' contains white space (percent-encode it as %20)",
         "give the full address, e.g. https://example.com/story", id="url-with-a-space"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nurl: 'http://[::1/story'", "s",
         "url 'http://[::1/story' cannot be parsed (Invalid IPv6 URL)",
         "give the full address, e.g. https://example.com/story", id="url-broken-ipv6"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nurl: 'https://example.com:port/story'", "s",
         "url 'https://example.com:port/story' cannot be parsed (Port could not be cast to integer value as 'port')",
         "give the full address, e.g. https://example.com/story", id="url-port-not-a-number"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nimage: 'https://cdn/chart.png'", "s",
         "image 'https://cdn/chart.png' has no valid host name", "give an image URL or a path to a local file",
         id="image-url-host-without-a-dot"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nimage: missing.png", "s", "image file 'missing.png' does not exist",
         "give a path relative to the story file", id="image-file-missing"),
    # platforms
    case("id: s\ndate: 2025-01-02\nheadline: H\nplatforms: [x, blusky]", "s", "unknown platform 'blusky'",
         "did you mean 'bluesky'?", id="platform-did-you-mean"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nplatforms: myspace", "s", "unknown platform 'myspace'",
         "known: x, reddit, bluesky, mastodon", id="platform-unknown"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nplatforms: {x: true}", "s", "platforms must be a list",
         "write platforms: [x, bluesky] or platforms: x,bluesky", id="platforms-a-mapping"),
    # followup_after
    case("id: s\ndate: 2025-01-02\nheadline: H\nfollowup_after: soon", "s", "followup_after 'soon' is not a delay",
         "write it like 90m, 6h, 1h30m or 1d", id="followup-after-a-word"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nfollowup_after: 0m", "s", "followup_after '0m' is not a delay",
         "write it like 90m, 6h, 1h30m or 1d", id="followup-after-zero"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nfollowup_after: '-1h'", "s",
         "followup_after '-1h' is not a delay", "write it like 90m, 6h, 1h30m or 1d", id="followup-after-negative"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nfollowup_after: 99999999999d", "s",
         "followup_after '99999999999d' is not a delay", "write it like 90m, 6h, 1h30m or 1d",
         id="followup-after-too-long"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nfollowup_after: 31d", "s",
         "followup_after '31d' is longer than 30 days",
         "the follow-up replies within 30 days of its post; write it like 6h or 2d", id="followup-after-a-month"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nfollowup_after: true", "s", "followup_after True is not a delay",
         "write it like 90m, 6h, 1h30m or 1d", id="followup-after-a-boolean"),
    # non-text values
    case("id: s\ndate: 2025-01-02\nheadline: [Two, parts]", "s", "headline must be text, not list",
         "write headline as a plain string", id="headline-a-list"),
    case("id: s\ndate: 2025-01-02\nheadline: {a: b}", "s", "headline must be text, not dict",
         "write headline as a plain string", id="headline-a-mapping"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nsummary: true", "s", "summary must be text, not bool",
         "write summary as a plain string", id="summary-a-boolean"),
    case("id: [a, b]\ndate: 2025-01-02\nheadline: H", "", "id must be text, not list",
         "write id as a plain string, or leave it out", id="id-a-list"),
    # ids, tags, lang
    case("id: has space\ndate: 2025-01-02\nheadline: H", "has space", "id 'has space' is not valid",
         "use letters, digits, '.', '_' or '-' (at most 100, no spaces)", id="id-with-a-space"),
    case("id: -leading-dash\ndate: 2025-01-02\nheadline: H", "-leading-dash", "id '-leading-dash' is not valid",
         "use letters, digits, '.', '_' or '-' (at most 100, no spaces)", id="id-leading-dash"),
    case("id: s\ndate: 2025-01-02\nheadline: H\ntags: [two words]", "s", "tag 'two words' is not one word",
         "tags are single words without spaces", id="tag-two-words"),
    case("id: s\ndate: 2025-01-02\nheadline: H\ntags: [[nested]]", "s", "tags must be a list of words",
         "write tags: [ai, research]", id="tags-nested-list"),
    case("id: s\ndate: 2025-01-02\nheadline: H\nlang: English", "s", "lang 'English' is not a language tag",
         "use a BCP 47 tag such as en, de or pt-BR", id="lang-a-word"),
]


def as_yaml_item(fields: str) -> str:
    lines = fields.splitlines()
    return "- " + lines[0] + "\n" + "".join(f"  {line}\n" for line in lines[1:])


@pytest.mark.parametrize(("fields", "story_id", "message", "hint"), FIELD_ERRORS)
def test_an_invalid_field_is_reported_at_its_story(tmp_path, fields, story_id, message, hint):
    path = write(tmp_path, "stories.yaml", GOOD + as_yaml_item(fields))
    problem = only_problem(path)
    assert problem == Problem(str(path), 4, story_id, message, hint)


@pytest.mark.parametrize(("fields", "story_id", "message", "hint"), [
    p for p in FIELD_ERRORS if p.id in {"unknown-field-did-you-mean", "missing-headline", "date-30-february",
                                       "timezone-did-you-mean", "url-without-scheme", "platform-did-you-mean"}
])
def test_an_invalid_field_is_reported_the_same_from_json(tmp_path, fields, story_id, message, hint):
    import yaml

    data = yaml.safe_load(fields.replace("2025-02-30", "'2025-02-30'"))
    data = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in data.items()}
    path = write(tmp_path, "stories.json", '[\n{"id": "good", "date": "2025-01-01", "headline": "A valid story"},\n'
                 + json.dumps(data) + "\n]\n")
    assert only_problem(path) == Problem(str(path), 3, story_id, message, hint)


def test_every_problem_of_one_story_is_reported(tmp_path):
    path = write(tmp_path, "stories.yaml", GOOD + as_yaml_item(
        "id: many\ndate: 2025-02-30\ntimezone: Europe/Pari\nurl: ftp://example.com\nplatforms: [blusky]\nsumary: s"))
    problems = problems_of(path)
    assert [(p.line, p.story_id) for p in problems] == [(4, "many")] * 6
    assert [p.message for p in problems] == [
        "unknown field 'sumary'",
        "headline is required",
        "date '2025-02-30' is not a valid date",
        "unknown time zone 'Europe/Pari'",
        "url 'ftp://example.com' must start with http:// or https://",
        "unknown platform 'blusky'",
    ]


def test_every_problem_in_every_file_is_reported_and_nothing_is_returned(tmp_path):
    a = write(tmp_path, "a.yaml", GOOD + "- date: 2025-13-01\n  headline: Bad month\n- date: 2025-01-03\n")
    b = write(tmp_path, "b.jsonl", '{"date": "2025-01-04", "headline": "Fine"}\n{"date": "2025-01-05", "headline": }\n'
              '{"date": "2025-01-06", "headline": "H", "url": "example.com"}\n')
    c = write(tmp_path, "c.csv", "date,headline,platforms\n2025-01-07,Fine,x\n2025-01-08,Bad platform,twitter\n")
    with pytest.raises(StoryError) as info:
        load_stories([a, b, c, tmp_path / "missing.yaml"])
    problems = info.value.problems
    assert [(Path(p.file).name, p.line, p.message) for p in problems] == [
        ("missing.yaml", 0, "no such file or folder"),
        ("a.yaml", 4, "date '2025-13-01' is not a valid date"),
        ("a.yaml", 6, "headline is required"),
        ("b.jsonl", 2, "JSON syntax error: Expecting value"),
        ("b.jsonl", 3, "url 'example.com' must start with http:// or https://"),
        ("c.csv", 3, "unknown platform 'twitter'"),
    ]
    assert str(info.value) == "6 problems in the story files"


def test_one_problem_is_counted_in_the_singular(tmp_path):
    with pytest.raises(StoryError, match=r"^1 problem in the story files$"):
        load_stories([tmp_path / "missing.yaml"])


def test_a_problem_reads_file_line_id_message_and_hint(tmp_path):
    path = write(tmp_path, "stories.yaml", GOOD + "- id: s\n  date: 2025-01-02\n  headline: H\n  sumary: x\n")
    assert str(only_problem(path)) == f"{path}:4: s: unknown field 'sumary' (did you mean 'summary'?)"
    path = write(tmp_path, "other.yaml", "- date: 2025-01-02\n")
    assert str(only_problem(path)) == f"{path}:1: -: headline is required (add a headline: the one-line title of the story)"


# --------------------------------------------------------------------------------------------
# Duplicate ids
# --------------------------------------------------------------------------------------------

def test_a_duplicate_id_in_one_file_is_reported_at_the_second_story(tmp_path):
    path = write(tmp_path, "stories.yaml", """
        - id: same
          date: 2025-01-01
          headline: First
        - id: other
          date: 2025-01-02
          headline: Other
        - id: same
          date: 2025-01-03
          headline: Second
        """)
    assert only_problem(path) == Problem(str(path), 7, "same", f"the id 'same' is already used at {path}:1",
                                         "give each story its own id")


def test_two_stories_with_the_same_date_and_headline_have_a_duplicate_derived_id(tmp_path):
    path = write(tmp_path, "stories.csv", "date,headline\n2025-01-01,Twice\n2025-01-01T10:00:00,Twice\n")
    sid = derive_id(dt.date(2025, 1, 1), "Twice")
    assert only_problem(path) == Problem(str(path), 3, sid, f"the id {sid!r} is already used at {path}:2",
                                         "give each story its own id")


def test_a_duplicate_id_across_two_files_names_the_first_file(tmp_path):
    first = write(tmp_path, "a.yaml", GOOD)
    second = write(tmp_path, "b.json", '[\n  {"id": "x", "date": "2025-01-02", "headline": "X"},\n'
                                       '  {"id": "good", "date": "2025-01-03", "headline": "Again"}\n]\n')
    assert only_problem(tmp_path) == Problem(str(second), 3, "good", f"the id 'good' is already used at {first}:1",
                                             "give each story its own id")


def test_every_repeat_of_an_id_is_reported_against_the_first(tmp_path):
    path = write(tmp_path, "s.jsonl", "".join(
        json.dumps({"id": "dup", "date": "2025-01-01", "headline": f"H{n}"}) + "\n" for n in range(3)))
    assert [(p.line, p.message) for p in problems_of(path)] == [
        (2, f"the id 'dup' is already used at {path}:1"),
        (3, f"the id 'dup' is already used at {path}:1"),
    ]


# --------------------------------------------------------------------------------------------
# Syntax and file errors
# --------------------------------------------------------------------------------------------

YAML_HINT = "fix the YAML syntax at that line (indentation, quotes, colons)"
JSON_HINT = "fix the JSON at that line (commas, quotes, brackets)"

FILE_ERRORS = [
    case("stories.yaml", GOOD + "- date: 2025-01-02\n  headline: Broken: here\n", 5, "",
         "YAML syntax error: mapping values are not allowed in this context", YAML_HINT, id="yaml-colon-in-a-plain-value"),
    case("stories.yaml", GOOD + "- date: 2025-01-02\n headline: bad indent\n", 5, "",
         "YAML syntax error: did not find expected '-' indicator "
         "(while parsing a block collection on line 1)", YAML_HINT,
         id="yaml-bad-indentation"),
    case("stories.yaml", GOOD + "- date: 2025-01-02\n  headline: 'unclosed\n", 6, "",
         "YAML syntax error: found unexpected end of stream (while scanning a quoted scalar on line 5)",
         YAML_HINT, id="yaml-unclosed-quote-names-where-it-began"),
    case("stories.yaml", GOOD + "- date: 2025-01-02\n  headline: !!python/object:os.system x\n", 5, "",
         "YAML syntax error: could not determine a constructor for the tag "
         "'tag:yaml.org,2002:python/object:os.system'", YAML_HINT, id="yaml-unsafe-tag"),
    case("stories.yaml", GOOD + "- just a string\n", 4, "",
         "a story must be a mapping of fields, not str", "write each story as name: value fields",
         id="yaml-story-not-a-mapping"),
    case("stories.yaml", GOOD + "- \n", 4, "",
         "a story must be a mapping of fields, not NoneType", "write each story as name: value fields",
         id="yaml-empty-list-item"),
    case("stories.json", '[\n  {"date": "2025-01-01", "headline": "Fine"},\n  {"date": "2025-01-02" "headline": "X"}\n]\n',
         3, "", "JSON syntax error: Expecting ',' delimiter", JSON_HINT, id="json-missing-comma-in-a-story"),
    case("stories.json", '[\n  {"date": "2025-01-01", "headline": "Fine"},\n\n  {"date": "2025-01-02", "headline": "X"}\n]\n'
         .replace("},\n\n", "}\n\n"), 4, "", "JSON syntax error: expected ',' or ']'",
         "separate stories with commas and close the array", id="json-missing-comma-between-stories"),
    case("stories.json", '[\n  {"date": "2025-01-01", "headline": "Fine"},\n]\n', 3, "",
         "JSON syntax error: Expecting value", JSON_HINT, id="json-trailing-comma"),
    case("stories.json", '[\n  {"date": "2025-01-01", "headline": "Fine"}\n', 3, "",
         "JSON syntax error: expected ',' or ']'", "separate stories with commas and close the array",
         id="json-unclosed-array"),
    case("stories.json", '\n\n{"date": "2025-01-01", "headline": "Not in an array"}\n', 3, "",
         "a JSON story file must hold an array of stories",
         "wrap the stories in [ ... ], or use .jsonl for one story per line", id="json-top-level-object"),
    case("stories.json", "", 1, "", "a JSON story file must hold an array of stories",
         "wrap the stories in [ ... ], or use .jsonl for one story per line", id="json-empty-file"),
    case("stories.json", '[{"date": "2025-01-01", "headline": "Fine"}]\n\n[]\n', 3, "",
         "JSON syntax error: text after the closing ]",
         "a JSON story file holds one array; remove what follows it", id="json-text-after-the-array"),
    case("stories.json", '[\n  {"date": "2025-01-01", "headline": "Fine"},\n  "a string"\n]\n', 3, "",
         "a story must be a mapping of fields, not str", "write each story as name: value fields",
         id="json-story-not-an-object"),
    case("stories.jsonl", '{"date": "2025-01-01", "headline": "Fine"}\n{"date": "2025-01-02", "headline": }\n',
         2, "", "JSON syntax error: Expecting value", "each line must be one complete JSON object",
         id="jsonl-bad-line"),
    case("stories.jsonl", '{"date": "2025-01-01", "headline": "Fine"}\n[1, 2]\n', 2, "",
         "a story must be a mapping of fields, not list", "write each story as name: value fields",
         id="jsonl-line-not-an-object"),
    case("stories.csv", "date,headline\n2025-01-01,Fine\n2025-01-02,Extra, cells,here\n", 3, "",
         "this row has more cells than the header has columns", "quote cells that contain commas",
         id="csv-row-with-extra-cells"),
    case("stories.csv", 'date,headline,summary\n2025-01-01,Fine,"two\nlines"\n\n2025-01-02,,\n', 5, "",
         "headline is required", "add a headline: the one-line title of the story",
         id="csv-row-line-after-multi-line-cell-and-blank-line"),
    case("stories.csv", "date,headline,colour\n2025-01-01,Fine,red\n", 2, "",
         "unknown field 'colour'", f"known fields: {', '.join(FILE_FIELDS)}", id="csv-unknown-column"),
    case("story.md", "date: 2025-01-01\nheadline: No front matter\n", 1, "",
         "a Markdown story must start with YAML front matter between --- lines",
         "put ---, the fields (date, headline, ...), then --- before the body", id="markdown-without-front-matter"),
    case("story.md", "", 1, "", "a Markdown story must start with YAML front matter between --- lines",
         "put ---, the fields (date, headline, ...), then --- before the body", id="markdown-empty-file"),
    case("story.md", "---\ndate: 2025-01-01\nheadline: Never closed\n\nBody\n", 1, "",
         "the front matter is not closed by a --- line", "add a line with --- after the last field",
         id="markdown-unclosed-front-matter"),
    case("story.md", "---\ndate: 2025-01-01\nheadline: Broken: here\n---\nBody\n", 3, "",
         "YAML syntax error: mapping values are not allowed in this context", YAML_HINT,
         id="markdown-yaml-error-at-its-file-line"),
    case("story.md", "---\n- date: 2025-01-01\n- headline: A list\n---\nBody\n", 2, "",
         "the front matter must be one mapping of fields", "write one field per line: name: value",
         id="markdown-front-matter-a-list"),
    case("story.md", "---\nid: twice\ndate: 2025-01-01\nheadline: H\nbody: here\n---\nand here\n", 1, "twice",
         "body is given twice: in the front matter and after it",
         "keep the body in one place: the Markdown after the front matter", id="markdown-body-twice"),
    case("story.md", "---\ndate: 2025-01-01\nheadlne: Typo\n---\nBody\n", 1, "",
         "unknown field 'headlne'", "did you mean 'headline'?", id="markdown-unknown-field"),
]


@pytest.mark.parametrize(("name", "text", "line", "story_id", "message", "hint"), FILE_ERRORS)
def test_a_broken_file_is_reported_at_its_line(tmp_path, name, text, line, story_id, message, hint):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    problems = problems_of(path)
    assert problems[0] == Problem(str(path), line, story_id, message, hint), "\n".join(map(str, problems))
    if "unknown field" not in message:
        assert len(problems) == 1, "\n".join(map(str, problems))


def test_a_json_lines_story_split_over_two_lines_reports_both_lines(tmp_path):
    path = write(tmp_path, "s.jsonl", '{"date": "2025-01-01", "headline": "Fine"}\n\n{"date": "2025-01-02",\n'
                 ' "headline": "X"}\n')
    hint = "each line must be one complete JSON object"
    assert problems_of(path) == [
        Problem(str(path), 3, "", "JSON syntax error: Expecting property name enclosed in double quotes", hint),
        Problem(str(path), 4, "", "JSON syntax error: Extra data", hint),
    ]


def test_markdown_with_empty_front_matter_reports_the_missing_fields(tmp_path):
    path = write(tmp_path, "story.md", "---\n---\nJust a body\n")
    assert problems_of(path) == [
        Problem(str(path), 1, "", "headline is required", "add a headline: the one-line title of the story"),
        Problem(str(path), 1, "", "date is required", DATE_HINT),
    ]


def test_a_yaml_syntax_error_keeps_the_problems_of_other_files(tmp_path):
    write(tmp_path, "a.yaml", "- date: 2025-01-01\n  headline: [unclosed\n")
    write(tmp_path, "b.yaml", "- date: 2025-01-02\n")
    assert [(Path(p.file).name, p.message.split(":")[0]) for p in problems_of(tmp_path)] == [
        ("a.yaml", "YAML syntax error"), ("b.yaml", "headline is required"),
    ]


@pytest.mark.parametrize(("name", "suffix"), [
    case("notes.txt", "'.txt'", id="text-file"),
    case("stories.toml", "'.toml'", id="toml"),
    case("README", "'(none)'", id="no-extension"),
])
def test_a_file_of_an_unsupported_type_is_reported(tmp_path, name, suffix):
    path = write(tmp_path, name, "date: 2025-01-01\n")
    assert only_problem(path) == Problem(str(path), 0, "", f"unknown story file type {suffix}",
                                         f"rename it to end in one of {EXTENSIONS_HINT}")


def test_a_missing_path_is_reported(tmp_path):
    path = tmp_path / "nowhere" / "stories.yaml"
    assert only_problem(path) == Problem(str(path), 0, "", "no such file or folder", "check the path")


@pytest.mark.parametrize("contents", [
    case([], id="empty"),
    case(["notes.txt", "image.png"], id="only-other-files"),
    case([".hidden.yaml", ".drafts/story.md"], id="only-hidden-files"),
])
def test_a_folder_without_story_files_is_reported(tmp_path, contents):
    folder = tmp_path / "queue"
    folder.mkdir()
    for name in contents:
        write(folder, name, "- date: 2025-01-01\n  headline: H\n")
    assert only_problem(folder) == Problem(str(folder), 0, "", "the folder holds no story files",
                                           f"story files end in {EXTENSIONS_HINT}")


def test_a_file_that_is_not_utf8_is_reported(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("- date: 2025-01-01\n  headline: Caf\u00e9\n".encode("latin-1"))
    problem = only_problem(path)
    assert (problem.file, problem.line, problem.hint) == (str(path), 0, "story files must be readable UTF-8 text")
    assert problem.message.startswith("cannot read the file: 'utf-8' codec can't decode byte 0xe9")


# --------------------------------------------------------------------------------------------
# The bundled sample queue
# --------------------------------------------------------------------------------------------

SAMPLES = Path(bot.sources.__file__).parent / "samples"


def test_the_bundled_sample_queue_loads_without_problems():
    stories = load_stories([SAMPLES])
    assert len(stories) >= 21
    assert len({s.id for s in stories}) == len(stories)
    date_only = [s for s in stories if not s.has_time]
    timed = [s for s in stories if s.has_time]
    assert len(date_only) >= 3
    assert len(timed) >= 3
    assert all(s.timezone or s.date.tzinfo for s in timed), "every timed sample says where its time is"
    seed = {s.id: s for s in stories}["sleeper-agents"]
    assert seed.date == dt.date(2024, 1, 12)
    assert seed.body and seed.one_year_later and seed.url.startswith("https://")
    for story in stories:
        assert story.headline and story.summary and story.url and story.one_year_later, story.id


def test_the_garbage_collector_is_held_off_only_while_loading_even_when_loading_fails(tmp_path):
    import gc

    from posts.gcpause import gc_paused

    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the inner one must not turn it back on
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n')
    with pytest.raises(StoryError):
        load_stories([bad])
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled(), "a collector that was off stays off"
    finally:
        gc.enable()
