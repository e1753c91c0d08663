"""The operator CLI through its real entry point (``bot.cli.main``, the console script's target)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.sandbox import read_transcript
from bot.cli import main
from tests.cli_support import isolate, run_cli, snapshot
from tests.db_support import writes

STORIES = """\
- id: alpha
  date: 2025-03-01T12:00:00Z
  category: research
  source: Example Labs
  headline: Alpha model released
  summary: A lab released a model.
  url: https://example.com/alpha
  one_year_later: It became the default choice.
- id: beta
  date: 2025-03-01
  headline: Beta chip announced
  url: https://example.com/beta
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    (tmp_path / "stories.yaml").write_text(STORIES)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return run_cli(capsys, *args)


def test_load_then_agenda_json_lists_every_delivery(env, capsys):
    code, out, _ = run(capsys, "load", "stories.yaml")
    assert code == 0 and "2 new" in out
    code, out, _ = run(capsys, "agenda", "--from", "2026-03-01", "--to", "2026-03-01", "--json")
    items = json.loads(out)
    assert code == 0 and len(items) == 12  # alpha root+reply, beta root on four platforms
    assert {"story_id", "platform", "kind", "part", "due_at", "status"} <= set(items[0])
    alpha_x = [i for i in items if i["story_id"] == "alpha" and i["platform"] == "x" and i["kind"] == "root"][0]
    assert alpha_x["due_at"] == "2026-03-01T12:00:00+00:00" and alpha_x["status"] == "pending"


def test_agenda_is_a_read_that_writes_nothing(env, capsys):
    code, out, _ = run(capsys, "load", "--defer", "stories.yaml")
    assert code == 0
    before = snapshot("sqlite:///queue.db")
    assert before["deliveries"] == []  # the stories are queued, their posts not rendered yet
    with writes() as seen:
        code, out, _ = run(capsys, "agenda", "--from", "2026-03-01", "--to", "2026-03-01", "--json")
        table_code, table, _ = run(capsys, "agenda", "--from", "2026-03-01", "--to", "2026-03-01")
        days_code, days, _ = run(capsys, "agenda", "--from", "2026-03-01", "--days", "--json")
        assert [run(capsys, *command)[0] for command in (("status",), ("preview", "alpha"))] == [0, 0]
    assert seen == []
    assert snapshot("sqlite:///queue.db") == before
    items = json.loads(out)
    assert code == table_code == days_code == 0 and len(items) == 12 and all(i["text"] for i in items)
    assert "Nothing is due" not in table and sum(d["posts"] for d in json.loads(days)) == 12


def test_agenda_filters_by_platform(env, capsys):
    run(capsys, "load", "stories.yaml")
    _, out, _ = run(capsys, "agenda", "--from", "2026-03-01", "--to", "2026-03-02", "--platform", "reddit", "--json")
    assert {i["platform"] for i in json.loads(out)} == {"reddit"}


def test_bad_story_file_lists_every_problem_and_loads_nothing(env, capsys):
    (env / "bad.yaml").write_text("- date: 2025-02-30\n  headline: x\n- headlin: y\n  date: 2025-01-01\n")
    code, _, err = run(capsys, "load", "stories.yaml", "bad.yaml")
    assert code == 2
    assert "bad.yaml:1: -: date '2025-02-30' is not a valid date" in err
    assert "bad.yaml:3: -: unknown field 'headlin' (did you mean 'headline'?)" in err
    assert "nothing was loaded" in err and "Traceback" not in err
    _, out, _ = run(capsys, "status", "--json")
    assert json.loads(out)["stories"] == 0


def test_preview_json_gives_each_part_with_length_limit_unit_and_payload(env, capsys):
    run(capsys, "load", "stories.yaml")
    code, out, _ = run(capsys, "preview", "alpha", "--json")
    parts = json.loads(out)
    assert code == 0
    assert {(p["platform"], p["kind"]) for p in parts} == {(pl, k) for pl in ("x", "reddit", "bluesky", "mastodon")
                                                           for k in ("root", "followup")}
    for part in parts:
        assert {"platform", "kind", "part", "text", "length", "limit", "unit", "payload"} <= set(part)
        assert 0 < part["length"] <= part["limit"]
    x_root = [p for p in parts if p["platform"] == "x" and p["kind"] == "root"][0]
    assert x_root["unit"] == "weighted characters" and x_root["payload"] == {"text": x_root["text"]}
    toots = [p for p in parts if p["platform"] == "mastodon"]
    assert toots[0]["unit"] == "characters" and toots[0]["payload"] == {"status": toots[0]["text"], "language": "en"}
    assert all(p["payload"]["spoiler_text"] == "One year later — spoiler" for p in toots[1:])


def test_run_once_at_a_simulated_time_posts_and_writes_the_transcript(env, capsys):
    run(capsys, "load", "stories.yaml")
    code, out, _ = run(capsys, "run", "--once", "--now", "2026-03-01T12:00:00+00:00")
    assert code == 0 and "Posted 4" in out
    run(capsys, "run", "--once", "--now", "2026-03-01T15:00:00+00:00")  # beta, date-only: mid-window
    code, out, _ = run(capsys, "run", "--once", "--now", "2026-03-01T18:00:00+00:00")
    records = read_transcript(env / "transcript.jsonl")
    assert len(records) == 8 + 4  # alpha root+reply, beta root (15:00) on four platforms
    for record in records:
        assert {"platform", "story_id", "kind", "part", "remote_id", "reply_to", "text", "posted_at"} <= set(record)
    replies = [r for r in records if r["kind"] == "followup"]
    roots = {(r["platform"], r["story_id"]): r["remote_id"] for r in records if r["kind"] == "root"}
    assert all(r["reply_to"] == roots[(r["platform"], r["story_id"])] for r in replies)


def test_run_dry_run_changes_nothing(env, capsys):
    run(capsys, "load", "stories.yaml")
    code, out, _ = run(capsys, "run", "--dry-run", "--once", "--now", "2026-03-01T12:00:00Z")
    assert code == 0 and "4 posts would go out" in out
    assert not (env / "transcript.jsonl").exists()
    _, out, _ = run(capsys, "status", "--json")
    assert json.loads(out)["counts"] == {"pending": 12}


def test_status_skip_and_retry(env, capsys):
    run(capsys, "load", "stories.yaml")
    code, out, _ = run(capsys, "skip", "beta")
    assert code == 0 and "Skipped 4" in out
    _, out, _ = run(capsys, "status", "--json")
    assert json.loads(out)["counts"] == {"pending": 8, "skipped": 4}
    code, out, _ = run(capsys, "retry", "beta")
    assert code == 0 and out.count("Queued again") == 4
    code, _, err = run(capsys, "retry", "alpha")
    assert code == 1 and "nothing to retry" in err


def test_missed_root_is_listed_and_retry_posts_it(env, capsys):
    run(capsys, "load", "stories.yaml")
    run(capsys, "run", "--once", "--now", "2026-03-02T12:00:00Z")
    _, out, _ = run(capsys, "status", "--json")
    view = json.loads(out)
    assert view["counts"]["missed"] == 8
    missed = [p for p in view["problems"] if p["status"] == "missed"]
    assert missed and "grace" in missed[0]["last_error"]
    code, out, _ = run(capsys, "retry", f"#{missed[0]['id']}")
    assert code == 0 and "Queued again" in out


def test_unknown_story_is_one_clear_line(env, capsys):
    code, _, err = run(capsys, "preview", "nope")
    assert code == 1 and err.strip().startswith("error: no story 'nope'") and "Traceback" not in err


def test_bad_setting_names_the_variable_and_its_source(env, capsys, monkeypatch):
    monkeypatch.setenv("ONEYEARAGO_TIMEZONE", "Mars/Olympus")
    code, _, err = run(capsys, "status")
    assert code == 1 and "ONEYEARAGO_TIMEZONE=Mars/Olympus (from environment)" in err


def test_env_file_is_read_and_options_win_over_it(env, capsys):
    (env / ".env").write_text("ONEYEARAGO_PLATFORMS=x\n")
    run(capsys, "load", "stories.yaml")
    _, out, _ = run(capsys, "agenda", "--from", "2026-03-01", "--to", "2026-03-02", "--json")
    assert {i["platform"] for i in json.loads(out)} == {"x"}
    _, out, _ = run(capsys, "--platforms", "x,bluesky", "load", "stories.yaml")
    assert "updated" in out


def test_doctor_reports_settings_database_and_platforms(env, capsys):
    code, out, _ = run(capsys, "doctor")
    assert code == 0 and "ONEYEARAGO_MODE" in out and "sandbox" in out and "All good" in out


def test_live_mode_without_credentials_names_every_missing_variable(env, capsys):
    run(capsys, "load", "stories.yaml")
    code, _, err = run(capsys, "--mode", "live", "run", "--once")
    assert code == 1 and "Traceback" not in err
    for variable in ("ONEYEARAGO_X_CONSUMER_KEY", "ONEYEARAGO_X_ACCESS_TOKEN_SECRET", "ONEYEARAGO_REDDIT_CLIENT_ID",
                     "ONEYEARAGO_REDDIT_SUBREDDIT", "ONEYEARAGO_BLUESKY_HANDLE", "ONEYEARAGO_BLUESKY_APP_PASSWORD"):
        assert variable in err
    code, out, _ = run(capsys, "--mode", "live", "--platforms", "bluesky", "doctor")
    assert code == 1 and "missing ONEYEARAGO_BLUESKY_HANDLE, ONEYEARAGO_BLUESKY_APP_PASSWORD" in out


def test_secrets_never_appear_in_doctor_or_errors(env, capsys, monkeypatch):
    monkeypatch.setenv("ONEYEARAGO_X_CONSUMER_SECRET", "sup3r-s3cret-value")
    monkeypatch.setenv("ONEYEARAGO_DATABASE_URL", "postgresql+psycopg://bot:db-pass-123@127.0.0.1:1/none")
    try:
        main(["--debug", "doctor"])
    except SystemExit:
        pass
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    assert "sup3r-s3cret-value" not in out + err and "db-pass-123" not in out + err
    assert "bot:********@127.0.0.1" in out + err
    assert "ONEYEARAGO_X_CONSUMER_SECRET" in out and "********" in out


@pytest.mark.slow
def test_demo_replays_the_bundled_queue(env, capsys):
    code, out, _ = run(capsys, "demo", "--quiet")
    assert code == 0 and "sample stories" in out
    records = read_transcript(env / "oneyearago-demo" / "transcript.jsonl")
    assert len(records) > 60
    assert {r["platform"] for r in records} == {"x", "reddit", "bluesky", "mastodon"}


@pytest.mark.slow
def test_console_script_and_module_entry_points_exist(env):
    result = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "oneyearago" in result.stdout.lower() or "Usage" in result.stdout
    for command in ("load", "agenda", "preview", "run", "status", "skip", "retry", "doctor", "demo"):
        assert command in result.stdout


def test_a_broken_template_stops_load_and_preview_with_its_file_and_line(env, capsys):
    (env / "looks").mkdir()
    (env / "looks" / "x_root.j2").write_text("{{ headline }}\n{{ summry }}\n")
    code, _, err = run(capsys, "--templates", "looks", "load", "stories.yaml")
    assert code == 1 and "x_root.j2:2:" in err and "'summry' is undefined" in err and "Traceback" not in err
    _, out, _ = run(capsys, "status", "--json")
    assert json.loads(out)["stories"] == 0


def test_preview_bluesky_payload_is_a_complete_record(env, capsys):
    run(capsys, "load", "stories.yaml")
    _, out, _ = run(capsys, "preview", "alpha", "--platform", "bluesky", "--json")
    root = json.loads(out)[0]["payload"]
    assert root["$type"] == "app.bsky.feed.post" and root["createdAt"] == "2026-03-01T12:00:00.000Z"
    assert root["embed"]["external"]["uri"] == "https://example.com/alpha" and root["langs"] == ["en"]


def test_agenda_days_counts_posts_per_platform_per_day_and_estimates_x_cost(env, capsys):
    run(capsys, "load", "stories.yaml")
    code, out, _ = run(capsys, "agenda", "--from", "2026-03-01", "--to", "2026-03-01", "--days", "--json")
    days = {(d["day"], d["platform"]): d for d in json.loads(out)}
    assert code == 0 and days[("2026-03-01", "x")]["posts"] == 3  # two roots and one reply
    assert days[("2026-03-01", "x")]["cost_usd"] == pytest.approx(0.2 + 0.2 + 0.015)
    assert days[("2026-03-01", "reddit")]["cost_usd"] is None
    assert all(d["over_quota"] == [] for d in days.values())


def test_load_and_agenda_warn_about_days_over_a_quota(env, capsys):
    code, out, _ = run(capsys, "-s", "quota_x_24h=2", "load", "stories.yaml")
    assert code == 0 and "would exceed a quota" in out and "2026-03-01 x: 3 posts > 2 a day" in out
    _, out, _ = run(capsys, "-s", "quota_x_24h=2", "agenda", "--from", "2026-03-01", "--to", "2026-03-01", "--days",
                    "--json")
    over = [d for d in json.loads(out) if d["over_quota"]]
    assert [(d["platform"], d["over_quota"]) for d in over] == [("x", ["3 posts > 2 a day"])]
