"""`run --once` reads the conversations (sandbox mode: replies rehearsed in the transcript); `replies` prints them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from adapters.base import PostRef
from adapters.sandbox import SandboxAdapter, SandboxConfig, read_transcript
from tests.cli_support import isolate, run_cli
from tests.test_metrics import STORIES

UTC = dt.UTC


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    (tmp_path / "stories.yaml").write_text(STORIES)
    return tmp_path


def root_of(env: Path, story_id: str, platform: str) -> PostRef:
    (record,) = [r for r in read_transcript(env / "transcript.jsonl")
                 if r["story_id"] == story_id and r["platform"] == platform and r["kind"] == "root"]
    return PostRef(platform, record["remote_id"], record["url"])


def reply(env: Path, platform: str, root: PostRef, author: str, text: str, at: dt.datetime) -> None:
    SandboxAdapter(SandboxConfig(platform, env / "transcript.jsonl")).add_reply(root, author, text, at)


def test_run_once_reads_the_replies_and_replies_prints_them(env, capsys):
    assert run_cli(capsys, "load", "stories.yaml")[0] == 0
    assert run_cli(capsys, "run", "--once", "--now", "2026-03-01T13:00:01Z")[0] == 0
    code, out, _ = run_cli(capsys, "replies", "--json")
    kept = json.loads(out)
    assert code == 0 and {(t["story_id"], t["platform"]) for t in kept} == {
        (s, p) for s in ("alpha", "beta") for p in ("reddit", "bluesky", "mastodon")}  # X: off unless enabled
    assert all(t["total"] == 0 for t in kept)
    root = root_of(env, "alpha", "bluesky")
    reply(env, "bluesky", root, "@fan.bsky.social", "Loved it [red]not markup[/red] <b>", dt.datetime(
        2026, 3, 1, 13, 5, tzinfo=UTC))
    reply(env, "bluesky", root, "@critic.bsky.social", "Wrong then, wrong now", dt.datetime(
        2026, 3, 1, 13, 10, tzinfo=UTC))
    # read again once the interval (30m) is over
    assert run_cli(capsys, "run", "--once", "--now", "2026-03-01T13:20:00Z")[0] == 0
    assert json.loads(run_cli(capsys, "replies", "alpha", "--json")[1])[0]["total"] == 0
    assert run_cli(capsys, "run", "--once", "--now", "2026-03-01T13:31:00Z")[0] == 0
    code, out, _ = run_cli(capsys, "replies", "alpha", "--json")
    (bsky,) = [t for t in json.loads(out) if t["platform"] == "bluesky"]
    assert code == 0 and bsky["total"] == 2 and bsky["new"] == 2
    assert [r["author"] for r in bsky["replies"]] == ["@critic.bsky.social", "@fan.bsky.social"]
    assert set(bsky["replies"][0]) >= {"author", "text", "at", "url", "hidden"}
    code, out, _ = run_cli(capsys, "replies", "alpha")
    assert code == 0 and "alpha · Bluesky · 2 replies (2 new)" in out
    assert "@fan.bsky.social" in out and "Loved it [red]not markup[/red] <b>" in out
    assert "sandbox://bluesky/reply/" in out
    code, out, _ = run_cli(capsys, "replies", "--new", "--json")
    assert [(t["story_id"], t["platform"]) for t in json.loads(out)] == [("alpha", "bluesky")]


def test_replies_of_an_unknown_story_is_one_clear_line(env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    code, _, err = run_cli(capsys, "replies", "nope")
    assert code == 1 and err.strip().startswith("error: no story 'nope'") and "Traceback" not in err


def test_replies_before_any_read_says_how_they_are_read(env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    code, out, _ = run_cli(capsys, "replies", "alpha")
    assert code == 0 and "No replies read under alpha yet" in out and "ONEYEARAGO_CONVERSATION_X" in out


def test_run_once_reads_nothing_with_the_sweep_off(env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    run_cli(capsys, "-s", "conversation_every=off", "run", "--once", "--now", "2026-03-01T13:00:01Z")
    assert json.loads(run_cli(capsys, "replies", "--json")[1]) == []
