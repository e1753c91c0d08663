"""Whether each account is marked as automated, and ``accounts --mark-bot``: Mastodon's bot flag against
mastodon-mock, Bluesky's 'bot' self-label against the real local PDS, X and Reddit said to have no API mark."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from adapters.bluesky import BlueskyAdapter
from adapters.mastodon import MastodonAdapter
from bot.accounts import automation_marks
from bot.wiring import bluesky_config, mastodon_config
from tests.adapters.bluesky_fixtures import bluesky_pds, bluesky_settings  # noqa: F401 - pytest fixtures
from tests.adapters.mastodon_fixtures import mastodon_mock, mastodon_server, mastodon_settings  # noqa: F401
from tests.cli_support import isolate, run_cli
from tests.pds_harness import Account, LocalPDS
from tests.standins.mastodon import OTHER_TOKEN, TOKEN, MastodonMock

PROFILE = "app.bsky.actor.profile"


def set_bot_flag(server: MastodonMock, token: str, value: bool) -> None:
    answer = httpx.patch(f"{server.url}/api/v1/accounts/update_credentials", data={"bot": str(value).lower()},
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)
    answer.raise_for_status()
    assert answer.json()["bot"] is value


def profile(pds: LocalPDS, account: Account) -> dict | None:  # type: ignore[type-arg]
    answer = httpx.get(f"{pds.url}/xrpc/com.atproto.repo.getRecord",
                       params={"repo": account.did, "collection": PROFILE, "rkey": "self"}, timeout=30)
    return answer.json() if answer.status_code == 200 else None


def login(pds: LocalPDS, account: Account) -> dict[str, str]:
    answer = httpx.post(f"{pds.url}/xrpc/com.atproto.server.createSession",
                        json={"identifier": account.handle, "password": account.password}, timeout=30)
    return {"Authorization": f"Bearer {answer.json()['accessJwt']}"}


# ---------------------------------------------------------------- Mastodon


@pytest.mark.mastodon
def test_mastodon_reads_and_sets_the_bot_flag(mastodon_mock: MastodonMock, tmp_path: Path) -> None:  # noqa: F811
    set_bot_flag(mastodon_mock, OTHER_TOKEN, False)
    adapter = MastodonAdapter(mastodon_config(mastodon_settings(tmp_path, mastodon_mock.url,
                                                                mastodon_access_token=OTHER_TOKEN)))
    assert adapter.automation_mark() is False
    adapter.mark_automated()
    assert adapter.automation_mark() is True
    adapter.mark_automated()  # already set: nothing changes
    assert adapter.automation_mark() is True
    seeded = MastodonAdapter(mastodon_config(mastodon_settings(tmp_path, mastodon_mock.url, mastodon_access_token=TOKEN)))
    assert seeded.automation_mark() is True  # the stand-in's bot account is seeded with the flag
    set_bot_flag(mastodon_mock, OTHER_TOKEN, False)


# ---------------------------------------------------------------- Bluesky


@pytest.mark.pds
def test_bluesky_adds_the_bot_self_label_and_keeps_the_rest_of_the_profile(
        bluesky_pds: LocalPDS, tmp_path: Path) -> None:  # noqa: F811
    account = bluesky_pds.create_account("bot")
    adapter = BlueskyAdapter(bluesky_config(bluesky_settings(tmp_path, bluesky_pds.url, account)))
    assert adapter.automation_mark() is False and profile(bluesky_pds, account) is None
    adapter.mark_automated()  # no profile yet: one is made with the label alone
    assert profile(bluesky_pds, account)["value"]["labels"] == {  # type: ignore[index]
        "$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "bot"}]}
    assert adapter.automation_mark() is True
    # an existing profile keeps its name, description and other labels
    other = bluesky_pds.create_account("news")
    record = {"$type": PROFILE, "displayName": "One year ago", "description": "News, a year late.",
              "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "!no-unauthenticated"}]}}
    httpx.post(f"{bluesky_pds.url}/xrpc/com.atproto.repo.putRecord", headers=login(bluesky_pds, other), timeout=30,
               json={"repo": other.did, "collection": PROFILE, "rkey": "self", "record": record}).raise_for_status()
    adapter = BlueskyAdapter(bluesky_config(bluesky_settings(tmp_path / "other", bluesky_pds.url, other)))
    assert adapter.automation_mark() is False
    adapter.mark_automated()
    after = profile(bluesky_pds, other)
    assert after is not None and after["value"] == {**record, "labels": {
        "$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "!no-unauthenticated"}, {"val": "bot"}]}}
    adapter.mark_automated()  # already there: the record is not written again
    assert profile(bluesky_pds, other)["cid"] == after["cid"]  # type: ignore[index]


# ---------------------------------------------------------------- what each platform can tell


def test_x_and_reddit_say_why_they_cannot_tell() -> None:
    marks = {m.platform: m for m in automation_marks({"x": object(), "reddit": object()})}
    assert marks["x"].marked is None and "cannot tell by API" in marks["x"].line and "X settings" in marks["x"].line
    assert marks["reddit"].marked is None and "no mark for automated accounts" in marks["reddit"].line


@pytest.mark.pds
@pytest.mark.mastodon
def test_cli_accounts_reports_then_marks_each_platform_and_doctor_shows_it(
        bluesky_pds: LocalPDS, mastodon_mock: MastodonMock, tmp_path: Path,  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    isolate(tmp_path, monkeypatch)
    set_bot_flag(mastodon_mock, OTHER_TOKEN, False)
    account = bluesky_pds.create_account("bot")
    env = {"ONEYEARAGO_MODE": "live", "ONEYEARAGO_PLATFORMS": "bluesky,mastodon,reddit",
           "ONEYEARAGO_BLUESKY_HANDLE": account.handle, "ONEYEARAGO_BLUESKY_APP_PASSWORD": account.password,
           "ONEYEARAGO_BLUESKY_PDS_URL": bluesky_pds.url, "ONEYEARAGO_MASTODON_API_BASE_URL": mastodon_mock.url,
           "ONEYEARAGO_MASTODON_ACCESS_TOKEN": OTHER_TOKEN}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(capsys, "accounts", "--json")
    shown = {m["platform"]: m for m in json.loads(out)}
    assert code != 0 and "reddit" in err  # Reddit's settings are missing: said for Reddit alone
    assert shown["bluesky"]["marked"] is False and shown["mastodon"]["marked"] is False
    assert "ONEYEARAGO_REDDIT" in shown["reddit"]["error"]
    monkeypatch.setenv("ONEYEARAGO_PLATFORMS", "bluesky,mastodon")
    code, out, _ = run_cli(capsys, "accounts", "--mark-bot")
    assert code == 0, out
    assert "Bluesky automated-account mark: now marked" in out and "Mastodon automated-account mark: now marked" in out
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 0, out
    assert "Bluesky automated-account mark: marked as automated (the 'bot' self-label)" in out
    assert "Mastodon automated-account mark: marked as automated (the bot flag" in out
    assert account.password not in out and OTHER_TOKEN not in out
    set_bot_flag(mastodon_mock, OTHER_TOKEN, False)


def test_cli_accounts_needs_live_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    isolate(tmp_path, monkeypatch)
    code, _, err = run_cli(capsys, "accounts")
    assert code != 0 and "ONEYEARAGO_MODE=live" in err
