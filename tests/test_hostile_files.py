"""Hostile story files through ``oneyearago load``: a clear FILE:LINE error, exit 2, the queue
untouched, in bounded time and memory; and no raw control character ever reaches the terminal."""

from __future__ import annotations

import datetime as dt
import json
import re
import tracemalloc
from pathlib import Path

import pytest

from adapters.sandbox import read_transcript
from bot.cli import main
from bot.config import load_settings
from bot.planner import Planner
from bot.store import Store
from posts import limits
from posts.story import Story
from tests.cli_support import isolate, snapshot

BASE_STORIES = """\
- id: kept
  date: 2025-03-01
  headline: A story already in the queue
  url: https://example.com/kept
  one_year_later: It stayed.
"""

RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

ALIAS_BOMB = """\
- id: bomb
  headline: An alias bomb
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  date: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Path:
    """A working folder whose queue (SQLite, or PostgreSQL for the postgres marker) holds one story."""
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("ONEYEARAGO_DATABASE_URL", db_url)
    monkeypatch.setenv("ONEYEARAGO_TRANSCRIPT", str(tmp_path / "transcript.jsonl"))
    (tmp_path / "base.yaml").write_text(BASE_STORIES)
    code = _main("load", "base.yaml")
    assert code == 0
    return tmp_path


def _main(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = _main(*args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(capsys: pytest.CaptureFixture[str], db_url: str, path: Path, line: int, fragment: str) -> str:
    """``load path`` exits 2 naming ``path:line`` with ``fragment``, and changes nothing in the queue."""
    before = snapshot(db_url)
    code, out, err = cli(capsys, "load", path.name)
    assert code == 2, (out, err)
    assert f"{path.name}:{line}: " in err, err
    assert fragment in err, err
    assert "nothing was loaded" in err and "Traceback" not in err and "internal error" not in err
    assert not RAW_CONTROL.search(out + err), err
    assert max(map(len, err.splitlines())) < 600, "a message quotes an unbounded value"
    assert snapshot(db_url) == before
    assert before["stories"], "the queue held a story before the load"
    return err


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- aliases and size


@pytest.mark.timeout(60)
def test_a_yaml_alias_bomb_is_refused_quickly_in_little_memory(env, capsys, db_url):
    path = write(env, "bomb.yaml", ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 700
    tracemalloc.start()
    try:
        err = assert_refused(capsys, db_url, path, 9, "the YAML aliases of this file stand for more than 1,000,000 "
                             "values")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 1024 * 1024, f"peak {peak:,} bytes"
    assert "lol" not in err


def test_aliases_standing_for_too_many_values_and_an_alias_to_itself_are_refused(env, capsys, db_url):
    values = ", ".join(["w"] * 1_000)
    many = f"- id: a\n  date: 2025-01-01\n  headline: h\n  tags: &t [{values}]\n" + "".join(
        f"- id: s{i}\n  date: 2025-01-01\n  headline: h\n  tags: *t\n" for i in range(1_000))
    assert_refused(capsys, db_url, write(env, "many.yaml", many), 4 * 1_000 + 4,
                   "the YAML aliases of this file stand for more than 1,000,000 values")
    hundred = ", ".join(["w"] * 100)
    story = f"- id: wide\n  date: 2025-01-01\n  headline: h\n  x: &x [{hundred}]\n  y: [{', '.join(['*x'] * 100)}]\n"
    assert_refused(capsys, db_url, write(env, "wide.yaml", story), 1,
                   "this story holds more than 10,000 values once its YAML aliases are expanded")
    assert_refused(capsys, db_url, write(env, "self.yaml", "- id: s\n  headline: h\n  date: &d [*d]\n"), 3,
                   "the YAML alias *d is used inside the value it names")


def test_defaults_merged_into_many_stories_still_load(env, capsys):
    text = "- &defaults\n  id: s0\n  date: 2025-01-01\n  headline: h\n  category: wire\n" + "".join(
        f"- <<: *defaults\n  id: s{i}\n" for i in range(1, 3_000))
    code, out, err = cli(capsys, "load", "--defer", write(env, "defaults.yaml", text).name)
    assert code == 0 and "3000 new" in out, err


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("name", "build"), [
    ("summary.yaml", lambda text: f"- id: big\n  date: 2025-01-01\n  headline: h\n  summary: {text}\n"),
    ("summary.jsonl", lambda text: json.dumps({"id": "big", "date": "2025-01-01", "headline": "h",
                                               "summary": text}) + "\n"),
    ("summary.csv", lambda text: f"id,date,headline,summary\nbig,2025-01-01,h,{text[:130_000]}\n"),
])
def test_a_huge_field_is_refused_before_any_rendering(env, capsys, db_url, name, build):
    tracemalloc.start()
    try:
        text = "x" * (10 * 1000 * 1000)
        path = write(env, name, build(text))
        del text
        tracemalloc.reset_peak()
        started = dt.datetime.now()
        assert_refused(capsys, db_url, path, 1 if name.endswith("jsonl") else 2 if name.endswith("csv") else 1,
                       "summary is ")
        elapsed = (dt.datetime.now() - started).total_seconds()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 30
    assert peak < 400 * 1024 * 1024, f"peak {peak:,} bytes"


@pytest.mark.parametrize(("field", "limit"), sorted(limits.MAX_FIELD_CHARS.items()))
def test_every_field_has_a_documented_maximum(env, capsys, db_url, field, limit):
    value = "a" * (limit + 1)
    story = {"id": "long", "date": "2025-01-01", "headline": "h", field: value}
    path = write(env, f"{field}.jsonl", json.dumps(story) + "\n")
    assert_refused(capsys, db_url, path, 1, f"{field} is {limit + 1:,} characters long; the most it may be is "
                                            f"{limit:,}")
    assert f"`{field}`" in Path(__file__).parents[1].joinpath("docs/reliability.md").read_text()


def test_a_file_over_the_size_limit_is_refused_unread(env, capsys, db_url):
    path = env / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(limits.MAX_FILE_BYTES["yaml"] + 1)  # sparse: refused by its size alone
    assert_refused(capsys, db_url, path, 0, f"a yaml story file may hold at most {limits.MAX_FILE_BYTES['yaml']:,}")


# ---------------------------------------------------------------------------- CSV


def test_an_unclosed_csv_quote_is_an_error_not_a_cell_that_swallows_the_rest(env, capsys, db_url):
    text = ('id,date,headline\n'
            'one,2025-01-01,"Unclosed\n'
            'two,2025-01-02,Second\n'
            'three,2025-01-03,Third\n')
    assert_refused(capsys, db_url, write(env, "open.csv", text), 2, "a quoted cell is not closed")


def test_a_repeated_csv_column_is_an_error(env, capsys, db_url):
    text = "id,date,headline,headline\none,2025-01-01,First,Second\n"
    assert_refused(capsys, db_url, write(env, "dup.csv", text), 1, "the column 'headline' is given twice")


# ---------------------------------------------------------------------------- control characters


@pytest.mark.parametrize(("name", "content", "line", "char"), [
    ("nul.yaml", "- id: a\n  date: 2025-01-01\n  headline: a\x00b\n", 3, "U+0000"),
    ("bel.yaml", "- id: a\n  date: 2025-01-01\n  headline: ring\x07\n", 3, "U+0007"),
    ("esc.md", "---\ndate: 2025-01-01\nheadline: h\n---\nBody \x1b[2J here\n", 5, "U+001B"),
    ("bidi.csv", "id,date,headline\na,2025-01-01,evil\u202etxt.exe\n", 2, "U+202E"),
    ("isolate.jsonl", '{"id": "a", "date": "2025-01-01", "headline": "x\u2066y"}\n', 1, "U+2066"),
    ("c1.json", '[\n{"id": "a", "date": "2025-01-01", "headline": "csi\x9b2J"}\n]\n', 2, "U+009B"),
    ("cr.json", '[{"id": "a", "date": "2025-01-01", "headline": "over\\rwrite"}]', 1, "U+000D"),
    ("escaped-nul.json", '[{"id": "a", "date": "2025-01-01", "headline": "nul\\u0000"}]', 1, "U+0000"),
    ("escaped-esc.yaml", '- id: a\n  date: 2025-01-01\n  headline: "red \\e[31m"\n', 1, "U+001B"),
    ("escaped-bidi.jsonl", '{"id": "a", "date": "2025-01-01", "tags": ["x\\u202ey"], "headline": "h"}\n', 1,
     "U+202E"),
    ("key.json", '[{"id": "a", "date": "2025-01-01", "headline": "h", "x\\u001b": "y"}]', 1, "U+001B"),
    ("id.jsonl", '{"id": "\\u001b[31mred", "date": "2025-01-01", "headline": "h"}\n', 1, "U+001B"),
    ("surrogate.json", '[{"id": "a", "date": "2025-01-01", "headline": "half \\ud800 a pair"}]', 1,
     "U+D800 (a lone surrogate)"),
    ("surrogate-id.jsonl", '{"id": "\\udc00x", "date": "2025-01-01", "headline": "h"}\n', 1, "U+DC00"),
    ("surrogate-tag.json", '[{"id": "a", "date": "2025-01-01", "headline": "h", "tags": ["x\\udbff"]}]', 1,
     "U+DBFF"),
])
def test_control_characters_are_refused_with_their_line(env, capsys, db_url, name, content, line, char):
    assert_refused(capsys, db_url, write(env, name, content), line, char)


def test_tabs_and_line_breaks_are_still_story_text(env, capsys, db_url):
    path = write(env, "ok.yaml", '- id: tabbed\n  date: 2025-01-01\n  headline: "a\\tb"\n  summary: |\n'
                                 '    one\n    two\n')
    code, out, err = cli(capsys, "load", path.name)
    assert code == 0 and "1 new" in out, err


# ---------------------------------------------------------------------------- nesting and dates


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["deep.yaml", "deep.json", "deep.jsonl"])
def test_deep_nesting_is_refused(env, capsys, db_url, name):
    assert_refused(capsys, db_url, write(env, name, "[" * 100_000 + "\n"), 1, "nested")


def test_nesting_deeper_than_the_limit_is_refused_even_when_python_could_read_it(env, capsys, db_url):
    depth = limits.MAX_NESTING + 1
    text = json.dumps({"id": "a", "date": "2025-01-01", "headline": "h", "tags": json.loads("[" * depth + "]" * depth)})
    assert_refused(capsys, db_url, write(env, "nested.jsonl", text + "\n"), 1,
                   f"nested deeper than {limits.MAX_NESTING} levels")


@pytest.mark.parametrize(("date", "line"), [("9998-12-31", 3), ("0001-01-01", 3), ("1899-12-31", 3),
                                            ("3000-01-01T00:00:00+00:00", 3)])
def test_dates_outside_the_supported_range_are_refused(env, capsys, db_url, date, line):
    path = write(env, "dates.yaml", f"- id: old\n  headline: h\n  date: {date}\n")
    assert_refused(capsys, db_url, path, 1, "is outside the supported range 1900-01-01 to 2999-12-31")


def test_the_edges_of_the_date_range_load(env, capsys, db_url):
    path = write(env, "edges.yaml", "- id: first\n  headline: h\n  date: 1900-01-01\n"
                                    "- id: last\n  headline: h\n  date: 2999-12-31T23:59:00-12:00\n")
    code, out, err = cli(capsys, "load", path.name)
    assert code == 0 and "2 new" in out, err
    code, out, err = cli(capsys, "agenda", "--from", "3000-12-31", "--to", "3001-01-02", "--json")
    assert code == 0 and {i["story_id"] for i in json.loads(out)} == {"last"}, err


@pytest.mark.parametrize("args", [
    ("agenda", "--from", "0001-01-01"),
    ("agenda", "--from", "2026-01-01", "--to", "9999-12-31"),
    ("run", "--once", "--now", "9999-12-31T23:00:00+00:00"),
    ("run", "--once", "--now", "0001-01-01T00:00:00+14:00"),
])
def test_time_options_outside_the_range_are_refused_clearly(env, capsys, args):
    code, out, err = cli(capsys, *args)
    assert code == 2, (out, err)
    assert "is outside the supported range 1900-01-01 to 3199-12-31" in err
    assert "Traceback" not in err and "internal error" not in err


# ---------------------------------------------------------------------------- duplicate keys, Markdown


@pytest.mark.parametrize(("name", "content", "line"), [
    ("dup.yaml", "- id: a\n  date: 2025-01-01\n  headline: First\n  summary: s\n  headline: Second\n", 5),
    ("dup.md", "---\nid: a\ndate: 2025-01-01\nheadline: First\nheadline: Second\n---\nBody\n", 5),
    ("dup.json", '[\n  {"id": "a", "date": "2025-01-01", "headline": "First", "headline": "Second"}\n]\n', 2),
    ("dup.jsonl", '{"id": "a", "date": "2025-01-01", "headline": "First", "headline": "Second"}\n', 1),
])
def test_a_field_given_twice_is_an_error(env, capsys, db_url, name, content, line):
    assert_refused(capsys, db_url, write(env, name, content), line, "the field 'headline' is given twice")


def test_a_merge_key_may_still_be_overridden(env, capsys):
    text = ("- &base\n  id: one\n  date: 2025-01-01\n  headline: First\n"
            "- <<: *base\n  id: two\n  headline: Second\n")
    code, out, err = cli(capsys, "load", write(env, "merge.yaml", text).name)
    assert code == 0 and "2 new" in out, err


def test_an_indented_dashes_line_in_a_block_does_not_end_the_front_matter(env, capsys):
    text = ("---\nid: md\ndate: 2025-03-01\nheadline: Markdown story\none_year_later: |\n"
            "  First paragraph.\n  ---\n  Second paragraph, still the spoiler.\n---\nThe body.\n")
    code, out, err = cli(capsys, "load", write(env, "story.md", text).name)
    assert code == 0, err
    code, out, err = cli(capsys, "preview", "md", "--platform", "x", "--json")
    spoiler = [p for p in json.loads(out) if p["kind"] == "followup"]
    assert code == 0 and "Second paragraph, still the spoiler." in " ".join(p["text"] for p in spoiler)


# ---------------------------------------------------------------------------- the terminal


def test_an_id_with_escape_codes_is_echoed_escaped(env, capsys):
    code, out, err = cli(capsys, "preview", "\x1b[31mred\u202e")
    assert code == 1
    assert "\\x1b[31mred\\u202e" in err and not RAW_CONTROL.search(out + err)
    code, out, err = cli(capsys, "skip", "\x1b]0;title\x07")
    assert not RAW_CONTROL.search(out + err) and "\\x1b]0;title\\x07" in out + err
    code, out, err = cli(capsys, "agenda", "--from", "\x1b[2J")
    assert code == 2 and not RAW_CONTROL.search(out + err)
    code, out, err = cli(capsys, "no-such-\x1b[2J-command")
    assert code == 2 and not RAW_CONTROL.search(out + err)


def test_stories_already_in_the_queue_never_reach_the_terminal_raw(env, capsys, db_url):
    """A queue written before these checks (or by hand) may hold control characters: every command
    shows them escaped."""
    settings = load_settings({"database_url": db_url, "transcript": str(env / "transcript.jsonl")},
                             environ={}, env_file=None)
    store = Store(db_url)
    try:
        Planner(store, settings).load([Story(id="evil\x1b[31m", date=dt.date(2025, 3, 2),
                                             headline="Clear the screen \x1b[2J\x07 and \u202eflip",
                                             one_year_later="Spoiler \x9b31m here", url="https://example.com/e")],
                                      now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), render=True)
    finally:
        store.dispose()
    for args in (("preview", "evil\x1b[31m"), ("agenda", "--from", "2026-03-01", "--to", "2026-03-05"),
                 ("agenda", "--from", "2026-03-01", "--to", "2026-03-05", "--json"),
                 ("preview", "evil\x1b[31m", "--json"),
                 ("run", "--once", "--now", "2026-03-02T12:00:00+00:00"),
                 ("run", "--once", "--now", "2026-03-03T12:00:00+00:00"), ("status",), ("status", "--json")):
        code, out, err = cli(capsys, *args)
        assert code == 0, (args, err)
        assert not RAW_CONTROL.search(out + err), (args, out)
    code, out, _ = cli(capsys, "preview", "evil\x1b[31m")
    assert "Clear the screen \\x1b[2J" in out and "\\u202eflip" in out and "\\x9b31m" in out
    code, out, _ = cli(capsys, "preview", "evil\x1b[31m", "--json")
    assert "Clear the screen \x1b[2J\x07 and \u202eflip" in json.loads(out)[0]["text"]  # JSON keeps it, escaped


# ---------------------------------------------------------------------------- the sandbox transcript


def test_line_separators_in_a_headline_keep_the_sandbox_thread_whole(env, capsys):
    story = {"id": "sep", "date": "2025-03-02T09:00:00+00:00", "headline": "Line\u2028separated\u2029headline",
             "one_year_later": "The spoiler follows.", "url": "https://example.com/sep", "followup_after": "1h"}
    path = write(env, "sep.jsonl", json.dumps(story, ensure_ascii=False) + "\n")
    code, out, err = cli(capsys, "load", path.name)
    assert code == 0, err
    code, out, err = cli(capsys, "run", "--once", "--now", "2026-03-02T09:00:30+00:00")
    assert code == 0 and "Posted 4" in out, out + err
    raw = (env / "transcript.jsonl").read_text(encoding="utf-8")
    assert "\u2028" not in raw and "\u2029" not in raw  # escaped in the file
    code, out, err = cli(capsys, "run", "--once", "--now", "2026-03-02T10:00:30+00:00")
    assert code == 0 and "root deleted" not in out + err, out + err
    records = read_transcript(env / "transcript.jsonl")
    replies = [r for r in records if r["kind"] != "root"]
    assert {r["platform"] for r in replies} == {"x", "reddit", "bluesky", "mastodon"}, out
    x_root = [r for r in records if r["kind"] == "root" and r["platform"] == "x"]
    assert "Line\u2028separated\u2029headline" in x_root[0]["text"]


def test_log_lines_write_control_characters_out(env, capsys):
    """Log records (a platform's reason, a story id) pass the same escaping as every other line."""
    import logging

    from bot.cli import EscapeLogControls

    stream = __import__("io").StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(EscapeLogControls())
    logger = logging.getLogger("oneyearago.test.escape")
    logger.addHandler(handler)
    try:
        logger.warning("platform said %s", "\x1b[2J\u202eboom")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "platform said \\x1b[2J\\u202eboom\n"
