"""The benchmark harness itself: its arithmetic and its output (the figures are in docs/benchmarks.md;
CI smoke-runs every benchmark with ``python -m bench --quick``)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bench import __main__ as runner
from bench import cases


def test_percentiles_pick_the_nearest_rank():
    values = list(range(1, 101))
    assert cases._pct(values, 50) == 50
    assert cases._pct(values, 99) == 99
    assert cases._pct(values, 100) == 100
    assert cases._pct([7.0], 99) == 7.0
    assert str(cases._pct([], 50)) == "nan"


def test_a_story_dated_a_year_before_is_due_at_exactly_that_instant():
    from bot.config import load_settings
    from bot.planner import timed_due

    settings = load_settings({}, environ={}, env_file=None)
    for due in (dt.datetime(2026, 12, 2, 17, 30, 1, 250_000, tzinfo=dt.UTC),
                dt.datetime(2028, 3, 1, 0, 0, tzinfo=dt.UTC), dt.datetime(2027, 2, 28, 23, 59, tzinfo=dt.UTC)):
        story = cases._story(1, __import__("random").Random(1), cases._year_before(due))
        assert timed_due(story, settings) == due
    with pytest.raises(SystemExit, match="29 February"):
        cases._year_before(dt.datetime(2028, 2, 29, 12, tzinfo=dt.UTC))


def test_the_tables_show_every_row_with_its_target_and_verdict():
    rows = [cases._row("loading", "ours / floor", 0.0881, "x", ">= 0.33", False),
            cases._row("tick", "ratio", 0.91, "x", "<= 2", True),
            cases._row("rendering", "3,000 stories", 640.4, "stories/s")]
    text = runner.render_table(rows)
    assert "ours / floor" in text and "NO" in text and "yes" in text and "640" in text
    markdown = runner.render_markdown(rows, {"cores": "2", "cpu": "cpu", "system": "Linux", "python": "3.11"},
                                      "python -m bench", 240.0, {"loading": 31.0, "tick": 12.0})
    lines = markdown.splitlines()
    assert lines[0].startswith("Command: `python -m bench`") and "loading 31 s" in lines[0]
    assert "| loading | ours / floor | 0.0881 x | >= 0.33 | **no** |" in lines
    assert "| rendering | 3,000 stories | 640 stories/s |  |  |" in lines


def test_a_failing_background_benchmark_fails_the_run():
    def boom() -> list[dict]:
        raise RuntimeError("the idle process died")

    with pytest.raises(RuntimeError, match="idle process died"):
        runner._Background("idle", boom).result()


@pytest.mark.slow
def test_the_command_runs_benchmarks_and_writes_json_and_markdown(tmp_path, capsys):
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    assert runner.main(["tick", "--quick", "--json", str(out), "--markdown", str(md)]) == 0
    data = json.loads(out.read_text())
    assert data["command"] == f"python -m bench tick --quick --json {out} --markdown {md}"
    assert {r["benchmark"] for r in data["results"]} == {"tick"}
    ratio = next(r for r in data["results"] if r["metric"] == "engine tick posting one delivery: ratio")
    assert ratio["target"] == "<= 2" and ratio["verdict"] in ("yes", "NO")
    assert "| tick |" in md.read_text()
    assert "engine tick posting one delivery" in capsys.readouterr().out


def test_an_unknown_benchmark_is_named_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        runner.main(["punctuallity"])
    assert "unknown benchmark 'punctuallity'; choose from punctuality" in capsys.readouterr().err
