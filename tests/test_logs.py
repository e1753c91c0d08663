"""Log lines: human by default, one JSON object per line with ONEYEARAGO_LOG_FORMAT=json; never a secret."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import cli
from bot.cli import log_handler
from tests.conftest import story
from tests.test_cli import STORIES

UTC = dt.UTC
ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cr3t-Token/with+chars=="


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[logging.Logger, io.StringIO, list[logging.Handler]]]:
    """A logger whose records go through the CLI's handler into a string."""
    stream = io.StringIO()
    logger = logging.getLogger("bot")
    handlers: list[logging.Handler] = []
    monkeypatch.setattr(logger, "level", logging.INFO)
    monkeypatch.setattr(logger, "disabled", False)
    # Earlier tests (the CLI's own logging set-up) may have left levels or a disabled flag on the loggers
    # below ``bot``, or a global ``logging.disable``: here every record of ``bot`` must reach the handler.
    monkeypatch.setattr(logging.root.manager, "disable", logging.NOTSET)
    for name, child in list(logging.root.manager.loggerDict.items()):
        if name.startswith("bot.") and isinstance(child, logging.Logger):
            monkeypatch.setattr(child, "level", logging.NOTSET)
            monkeypatch.setattr(child, "disabled", False)
    # Setting ``level`` directly (not through setLevel) leaves each logger's cached isEnabledFor answers:
    # one cached while the level was WARNING would drop the INFO records of the engine's events.
    logging.Logger.manager._clear_cache()
    yield logger, stream, handlers
    logging.Logger.manager._clear_cache()
    for handler in handlers:
        logger.removeHandler(handler)


def _attach(captured, settings) -> None:
    logger, stream, handlers = captured
    handler = log_handler(settings, stream)
    logger.addHandler(handler)
    handlers.append(handler)


def test_the_default_is_human_lines(make_settings, captured):
    settings = make_settings()
    assert settings.log_format == "human"
    _attach(captured, settings)
    logger, stream, _ = captured
    logger.getChild("test").warning("hello %s", "there")
    line = stream.getvalue().strip()
    assert line.endswith("WARNING bot.test: hello there")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_a_bad_log_format_names_the_variable(make_settings):
    with pytest.raises(Exception, match="ONEYEARAGO_LOG_FORMAT"):
        make_settings(log_format="xml")


def test_json_lines_carry_the_event_the_delivery_and_the_platform(make_settings, planner, engine, clock, captured):
    _attach(captured, make_settings(log_format="json"))
    planner.load([story("a", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC))], now=clock["t"])
    clock["t"] = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    report = engine.run_once(clock["t"])
    posted = {(e.delivery_id, e.platform) for e in report.events if e.action == "posted"}
    assert len(posted) == 4
    lines = [json.loads(line) for line in captured[1].getvalue().splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    events = [line for line in lines if line.get("event") == "posted"]
    assert {(line["delivery"], line["platform"]) for line in events} == posted
    assert all(line["story"] == "a" and line["level"] == "INFO" and line["logger"] == "bot.engine.engine"
               for line in events)
    assert dt.datetime.fromisoformat(events[0]["time"]).tzinfo is not None


@pytest.mark.parametrize("log_format", ["human", "json"])
def test_no_secret_in_either_format(make_settings, captured, monkeypatch, log_format):
    settings = make_settings(log_format=log_format, mastodon_access_token=SECRET)
    monkeypatch.setattr(cli, "MASKER", [settings.masker()])
    _attach(captured, settings)
    logger, stream, _ = captured
    log = logger.getChild("test")
    log.warning("server said %s", f"bad token {SECRET}", extra={"platform": "mastodon", "story": SECRET})
    log.warning("escaped: %s", json.dumps({"token": SECRET}))
    try:
        raise RuntimeError(f"refused {SECRET}")
    except RuntimeError:
        log.exception("failed")
    text = stream.getvalue()
    assert SECRET not in text and json.dumps(SECRET)[1:-1] not in text
    assert "********" in text
    assert "failed" in text and "RuntimeError: refused" in text
    if log_format == "json":
        lines = [json.loads(line) for line in text.splitlines()]
        assert len(lines) == 3
        assert lines[0]["platform"] == "mastodon" and lines[0]["story"] == "********"
        assert "RuntimeError: refused ********" in lines[2]["exception"]


def _environ(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEYEARAGO_")}
    # this checkout's `bot`, whatever the venv has installed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return {**env, "ONEYEARAGO_DATABASE_URL": f"sqlite:///{tmp_path / 'q.db'}",
            "ONEYEARAGO_TRANSCRIPT": str(tmp_path / "t.jsonl"), "ONEYEARAGO_LOG_FORMAT": "json",
            "ONEYEARAGO_LOG_LEVEL": "INFO", "ONEYEARAGO_MASTODON_ACCESS_TOKEN": SECRET, **extra}


def test_run_once_logs_one_json_object_per_line(tmp_path):
    (tmp_path / "stories.yaml").write_text(STORIES)
    env = _environ(tmp_path)
    subprocess.run([sys.executable, "-m", "bot", "load", "stories.yaml"], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    done = subprocess.run([sys.executable, "-m", "bot", "run", "--once", "--now", "2026-03-01T12:00:00Z"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    posted = [line for line in lines if line.get("event") == "posted"]
    assert {line["platform"] for line in posted} == {"x", "reddit", "bluesky", "mastodon"}
    assert all(isinstance(line["delivery"], int) and line["story"] == "alpha" for line in posted)
    assert SECRET not in done.stderr + done.stdout


def test_the_run_loop_in_json_writes_only_json_lines(tmp_path):
    (tmp_path / "stories.yaml").write_text(STORIES)
    env = _environ(tmp_path)
    subprocess.run([sys.executable, "-m", "bot", "load", "stories.yaml"], env=env, cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--now", "2026-03-01T12:00:00Z"], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    seen = ""
    while time.monotonic() < deadline and seen.count('"event": "posted"') < 4:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    out, errors = proc.communicate(timeout=30)
    assert proc.returncode == 0, errors
    lines = [json.loads(line) for line in (seen + errors).splitlines()]
    messages = [line["message"] for line in lines]
    assert any("Ctrl-C stops" in m for m in messages) and messages[-1] == "Stopped."
    posted = [line for line in lines if line.get("event") == "posted"]
    assert {line["platform"] for line in posted} == {"x", "reddit", "bluesky", "mastodon"}
    assert out == ""  # no post panels, no event lines: the posts are in the log
    assert SECRET not in seen + errors
