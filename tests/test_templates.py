"""Operator templates: they change the look, and a broken one is caught at load time with file and line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.errors import StoryError, TemplateError
from bot.planner import Planner
from posts.render import RenderOptions, render
from posts.templates import Templates
from tests.conftest import story


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_a_template_overrides_the_look_and_still_fits(tmp_path):
    write(tmp_path / "t", "x_root.j2", "🗞️ {{ headline }} ({{ date }})\n{{ summary }}\n{{ url }}")
    templates = Templates.from_directory(tmp_path / "t")
    parts = render(story("a", summary="word " * 200), "x", RenderOptions(templates=templates))
    root = parts[0]
    assert root.text.startswith("🗞️ Headline of a (2025-03-01)")
    assert root.text.endswith("https://example.com/a") and root.cut and root.length <= 280
    assert parts[1].text.startswith("One year later — spoiler")  # no followup template: built-in look


def test_reddit_templates_can_use_the_spoiler_filter(tmp_path):
    write(tmp_path / "t", "reddit_followup.j2", "Spoiler below\n\n{{ reveal | spoiler }}")
    templates = Templates.from_directory(tmp_path / "t")
    follow = render(story("a", one_year_later="It *worked*.\n\nMostly."), "reddit",
                    RenderOptions(templates=templates))[1]
    assert follow.text == "Spoiler below\n\n>!It \\*worked\\*.!<\n\n>!Mostly.!<"


def test_a_syntax_error_names_the_file_and_line(tmp_path):
    path = write(tmp_path / "t", "bluesky_root.j2", "{{ headline }}\n{% if summary %}\n{{ summary }\n")
    with pytest.raises(TemplateError) as info:
        Templates.from_directory(tmp_path / "t")
    assert str(info.value).startswith(f"{path}:3: ")


def test_an_unknown_variable_is_caught_when_the_folder_is_opened(tmp_path):
    path = write(tmp_path / "t", "x_followup.j2", "{{ spoiler_line }}\n\n{{ revel }}")
    with pytest.raises(TemplateError) as info:
        Templates.from_directory(tmp_path / "t")
    assert str(info.value).startswith(f"{path}:3: ") and "'revel' is undefined" in str(info.value)


def test_an_unknown_template_file_gets_a_suggestion(tmp_path):
    write(tmp_path / "t", "x_reply.j2", "x")
    with pytest.raises(TemplateError, match="did you mean x_root.j2"):
        Templates.from_directory(tmp_path / "t")


def test_templates_run_sandboxed(tmp_path):
    write(tmp_path / "t", "x_root.j2", "{{ headline.__class__.__mro__ }}")
    with pytest.raises(TemplateError, match="x_root.j2"):
        Templates.from_directory(tmp_path / "t")


def test_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(TemplateError, match="is not a folder"):
        Templates.from_directory(tmp_path / "nope")


def test_a_template_too_long_for_any_post_fails_the_whole_load(tmp_path, store, settings):
    write(tmp_path / "t", "x_root.j2", "{{ url }} " + "padding " * 60)
    templates = Templates.from_directory(tmp_path / "t")
    planner = Planner(store, settings, templates=templates)
    with pytest.raises(StoryError) as info:
        planner.load([story("a", dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC))], now=dt.datetime(2026, 1, 1,
                                                                                                 tzinfo=dt.UTC))
    assert "cannot be rendered" in str(info.value.problems[0])


def test_changing_a_template_rerenders_unsent_posts_on_reload(tmp_path, store, settings):
    stories = [story("a", dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC))]
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    Planner(store, settings).load(stories, now=now)
    write(tmp_path / "t", "x_root.j2", "NEW LOOK {{ headline }} {{ url }}")
    report = Planner(store, settings, templates=Templates.from_directory(tmp_path / "t")).load(stories, now=now)
    assert report.updated == ["a"]
