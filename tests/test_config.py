"""Settings: precedence, validation that names the culprit, secrets kept out of sight."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from bot.config import SPEC_BY_NAME, SPECS, Settings, env_example, load_settings, mask_url
from posts.errors import ConfigError
from posts.masking import Secret


def test_defaults_are_sandbox_all_platforms_utc():
    s = load_settings({}, environ={}, env_file=None)
    assert s.mode == "sandbox" and s.platforms == ("x", "reddit", "bluesky", "mastodon") and s.timezone == "UTC"
    assert s.years == 1 and s.leap_day == "feb28" and s.grace == dt.timedelta(hours=2)
    assert s.posting_window == (dt.time(9), dt.time(21)) and s.followup_delay == dt.timedelta(hours=6)


def test_options_beat_environment_beat_env_file_beat_defaults(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("ONEYEARAGO_TIMEZONE=Europe/Paris\nONEYEARAGO_YEARS=3\nONEYEARAGO_GRACE=4h\n")
    s = load_settings({"timezone": "Asia/Tokyo"}, environ={"ONEYEARAGO_YEARS": "2"}, env_file=env_file)
    assert (s.timezone, s.years, s.grace) == ("Asia/Tokyo", 2, dt.timedelta(hours=4))
    assert s.sources["timezone"] == "option" and s.sources["years"] == "environment"
    assert s.sources["grace"] == str(env_file) and s.sources["mode"] == "default"


def test_settings_are_frozen():
    s = load_settings({}, environ={}, env_file=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mode = "live"  # type: ignore[misc]


@pytest.mark.parametrize(("name", "value", "message"), [
    ("timezone", "Mars/Olympus", "ONEYEARAGO_TIMEZONE=Mars/Olympus (from option): 'Mars/Olympus' is not an IANA"),
    ("platforms", "x,myspace", "unknown platform 'myspace'"),
    ("platforms", "blusky", "did you mean 'bluesky'?"),
    ("mode", "production", "'production' is not one of sandbox, live"),
    ("leap_day", "feb29", "not one of feb28, mar1"),
    ("posting_window", "21:00-09:00", "must start before it ends"),
    ("followup_delay", "soon", "is not a duration"),
    ("years", "0", "at least 1"),
])
def test_bad_values_name_the_variable_the_source_and_the_fix(name, value, message):
    with pytest.raises(ConfigError) as info:
        load_settings({name: value}, environ={}, env_file=None)
    assert message in str(info.value)


def test_unknown_option_gets_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'timezone'"):
        load_settings({"timezon": "UTC"}, environ={}, env_file=None)


def test_transcript_defaults_next_to_the_sqlite_database(tmp_path: Path):
    s = load_settings({"database_url": f"sqlite:///{tmp_path}/sub/q.db"}, environ={}, env_file=None)
    assert s.transcript_path == tmp_path / "sub" / "transcript.jsonl"


def test_env_example_lists_every_setting_with_comment_and_default():
    text = (Path(__file__).parents[1] / ".env.example").read_text()
    assert text == env_example(), "regenerate .env.example: python -c 'from bot.config import env_example; ...'"
    for spec in SPECS:
        assert f"\n{spec.env}={spec.default}\n" in text
        before = text.split(f"\n{spec.env}=")[0].rstrip().splitlines()[-1]
        assert before.startswith("# ")


def test_each_setting_is_declared_once_as_a_settings_field():
    fields = [f for f in dataclasses.fields(Settings) if f.name != "sources"]
    assert [spec.name for spec in SPECS] == [f.name for f in fields]  # .env.example keeps the fields' order
    for spec, field in zip(SPECS, fields, strict=True):
        default, doc, parse, secret, group = field.metadata["setting"]
        assert (spec.default, spec.doc, spec.parse, spec.secret, spec.group) == (default, doc, parse, secret, group)
    assert load_settings({}, environ={}, env_file=None).years == SPEC_BY_NAME["years"].parse("1") == 1


def test_secrets_never_show_in_repr_or_masked_urls():
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and secret.masked() == "********"
    assert mask_url("postgresql+psycopg://bot:hunter2@db:5432/q") == "postgresql+psycopg://bot:********@db:5432/q"
    assert "hunter2" not in str(load_settings({"database_url": "postgresql://u:hunter2@h/d"}, environ={},
                                              env_file=None).describe())
