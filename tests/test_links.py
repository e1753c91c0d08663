"""Story links on every platform, through `load`: never rewritten, and said when a platform links less.

A reserved character percent-encoded names another resource (``/faq?`` is not ``/faq%3F``), so a
story URL goes out as written. Bluesky links it whole with a facet of its own; X finds links itself,
so where twitter-text ends the link early the load report says so; a link Bluesky's models refuse
(8,192 characters and more) is refused at load.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.sandbox import read_transcript
from tests.cli_support import isolate, run_cli, snapshot
from tests.test_x_fidelity import STORY


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    return tmp_path


@pytest.mark.parametrize(("url", "linked"), [
    ("https://example.com/faq?", "https://example.com/faq"),
    ("https://example.com/story.", "https://example.com/story"),
    ("https://example.com/wiki/C_(", "https://example.com/wiki/C_"),
    ("https://example.com/news!", "https://example.com/news"),
])
def test_load_says_when_x_links_a_story_url_only_in_part(env, capsys, url, linked):
    Path("stories.yaml").write_text(STORY.format(url=url))
    code, out, err = run_cli(capsys, "load", "stories.yaml")
    assert code == 0, err
    out = " ".join(out.split())  # as the terminal wraps it
    assert "1 with a URL X links only in part" in out
    assert f"odd: X links only {linked!r} of {url!r}" in out
    assert "fine:" not in out.split("links only in part", 1)[1]
    code, out, _ = run_cli(capsys, "load", "--dry-run", "--json", "stories.yaml", db="sqlite:///fresh.db")
    assert [line.split(":", 1)[0] for line in json.loads(out)["links"]] == ["odd"]


def test_load_says_nothing_for_a_story_that_does_not_go_to_x(env, capsys):
    Path("stories.yaml").write_text(STORY.format(url="https://example.com/faq?") + "  platforms: [bluesky]\n")
    code, out, err = run_cli(capsys, "load", "stories.yaml")
    assert code == 0, err
    assert "links only in part" not in out


def test_the_posts_carry_the_story_url_as_written(env, capsys):
    url = "https://example.com/faq?"
    Path("stories.yaml").write_text(STORY.format(url=url).replace("2025-03-01", "2025-03-01T12:00:00Z"))
    assert run_cli(capsys, "load", "stories.yaml")[0] == 0
    code, _, err = run_cli(capsys, "run", "--once", "--now", "2026-03-01T12:00:30Z")
    assert code == 0, err
    roots = {r["platform"]: r for r in read_transcript(env / "transcript.jsonl")
             if r["story_id"] == "odd" and r["kind"] == "root"}
    assert url in roots["x"]["text"] and "%3F" not in roots["x"]["text"]
    record = roots["bluesky"]["payload"]
    assert [f["features"][0]["uri"] for f in record["facets"]] == [url]
    assert record["embed"]["external"]["uri"] == url
    assert "(https://example.com/faq?)" in roots["reddit"]["text"]


@pytest.mark.parametrize("field", ["summary", "body", "one_year_later"])
def test_load_refuses_a_link_longer_than_bluesky_takes(env, capsys, field):
    long_link = "https://example.com/" + "a" * 8_200
    Path("stories.yaml").write_text(STORY.format(url="https://example.com/x") + f"  {field}: See {long_link} now\n")
    before = snapshot("sqlite:///queue.db")
    code, out, err = run_cli(capsys, "load", "stories.yaml")
    assert code == 2
    assert "stories.yaml:5" in err and f"{field} holds a link of 8,220 characters" in err
    assert "Bluesky links at most 8,191" in err and "nothing was loaded" in err
    assert snapshot("sqlite:///queue.db") == before
    Path("stories.yaml").write_text(STORY.format(url="https://example.com/x")
                                    + f"  {field}: See https://example.com/{'a' * 8_000} now\n")
    assert run_cli(capsys, "load", "stories.yaml")[0] == 0
