"""Who may reply: the settings, the story field, what rendering tells each platform, preview and the sandbox."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.sandbox import read_transcript
from bot.config import load_settings
from bot.models import DeliveryRow
from bot.planner import Planner, plan_fingerprint, render_options
from bot.sources.stories import load_stories
from bot.store import Store
from posts.errors import ConfigError, StoryError
from posts.render import RenderOptions, render, stamp
from tests.cli_support import isolate, run_cli
from tests.conftest import story

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FOLLOWER = {"$type": "app.bsky.feed.threadgate#followerRule"}
MENTION = {"$type": "app.bsky.feed.threadgate#mentionRule"}


def settings(**values: str):  # type: ignore[no-untyped-def]
    return load_settings({"database_url": "sqlite://", **values}, environ={}, env_file=None)


# ---------------------------------------------------------------- settings


def test_the_default_is_everyone_and_each_platform_inherits_unless_set() -> None:
    chosen = settings(replies="Followers", replies_x="mentioned")
    assert chosen.replies == "followers"
    assert {p: chosen.replies_for(p) for p in ("x", "bluesky", "mastodon", "reddit")} == {
        "x": "mentioned", "bluesky": "followers", "mastodon": "followers", "reddit": "followers"}
    assert settings().replies_for("bluesky") == "everyone"


@pytest.mark.parametrize("name", ["replies", "replies_x", "replies_bluesky", "replies_mastodon", "replies_reddit"])
def test_a_bad_value_is_a_config_error_naming_the_variable_and_the_choices(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**{name: "friends"})
    message = str(caught.value)
    assert f"ONEYEARAGO_{name.upper()}" in message and "'friends'" in message
    assert "everyone, followers, mentioned, nobody" in message


def test_the_environment_sets_it_too() -> None:
    chosen = load_settings({}, environ={"ONEYEARAGO_REPLIES_BLUESKY": "nobody"}, env_file=None)
    assert chosen.replies_for("bluesky") == "nobody" and chosen.replies_for("x") == "everyone"


# ---------------------------------------------------------------- rendering


def gated(choice: str, platform: str, **fields: str) -> list:  # type: ignore[type-arg]
    return render(story("s1", **fields), platform, RenderOptions(replies={platform: choice}))


@pytest.mark.parametrize(("choice", "value"), [("followers", "following"), ("mentioned", "mentionedUsers"),
                                               ("nobody", "mentionedUsers")])
def test_x_gets_reply_settings_on_the_root_only(choice: str, value: str) -> None:
    root, *followups = gated(choice, "x")
    assert root.payload["reply_settings"] == value and root.replies == choice
    assert followups and all("reply_settings" not in p.payload for p in followups)


def test_everyone_leaves_x_reply_settings_out_and_makes_no_threadgate() -> None:
    for platform in ("x", "bluesky"):
        root = gated("everyone", platform)[0]
        assert "reply_settings" not in root.payload and "threadgate" not in root.payload
        assert root.payload == render(story("s1"), platform)[0].payload


@pytest.mark.parametrize(("choice", "allow"), [("followers", [FOLLOWER]), ("mentioned", [MENTION]), ("nobody", [])])
def test_bluesky_gets_a_threadgate_record_with_the_root_only(choice: str, allow: list) -> None:  # type: ignore[type-arg]
    root, *followups = gated(choice, "bluesky")
    assert root.payload["threadgate"] == {"$type": "app.bsky.feed.threadgate", "allow": allow,
                                          "createdAt": root.payload["createdAt"]}
    assert followups and all("threadgate" not in p.payload for p in followups)
    # the post record itself is unchanged by the gate
    plain = render(story("s1"), "bluesky")[0].payload
    assert {k: v for k, v in root.payload.items() if k != "threadgate"} == plain


def test_stamping_the_root_stamps_its_threadgate_with_the_same_time() -> None:
    root = gated("nobody", "bluesky")[0]
    sent = stamp("bluesky", root.payload, NOW)
    assert sent["createdAt"] == sent["threadgate"]["createdAt"] == "2026-03-01T12:00:00.000Z"


@pytest.mark.parametrize("platform", ["mastodon", "reddit"])
def test_mastodon_and_reddit_are_told_nothing_and_preview_says_so(platform: str) -> None:
    root = gated("nobody", platform)[0]
    assert root.payload == render(story("s1"), platform)[0].payload
    assert root.to_dict()["replies"]["choice"] == "nobody"
    assert "not applied" in root.to_dict()["replies"]["applied"]


def test_the_story_field_wins_over_the_platform_setting_which_wins_over_the_default() -> None:
    options = render_options(settings(replies="nobody", replies_x="followers", platforms="x,bluesky"))
    assert render(story("s1"), "x", options)[0].payload["reply_settings"] == "following"
    assert render(story("s1"), "bluesky", options)[0].payload["threadgate"]["allow"] == []
    assert "reply_settings" not in render(story("s1", replies="everyone"), "x", options)[0].payload
    assert render(story("s1", replies="mentioned"), "bluesky", options)[0].payload["threadgate"]["allow"] == [MENTION]


def test_the_fingerprint_stays_as_it_was_until_a_gate_is_set() -> None:
    assert plan_fingerprint(settings()) == plan_fingerprint(settings(replies="everyone"))
    assert plan_fingerprint(settings(replies_bluesky="nobody")) != plan_fingerprint(settings())


# ---------------------------------------------------------------- story files


def test_a_story_file_sets_replies_and_a_bad_one_names_file_line_and_choices(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("- id: a\n  date: 2025-03-01\n  headline: A\n  replies: Nobody\n")
    (loaded,) = load_stories([good])
    assert loaded.replies == "nobody" and loaded.content()["replies"] == "nobody"
    assert "replies" not in story("plain").content()  # unset: the content (and its hash) stays as it was
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: a\n  date: 2025-03-01\n  headline: A\n- id: b\n  date: 2025-03-02\n  headline: B\n"
                   "  replies: friends\n")
    with pytest.raises(StoryError) as caught:
        load_stories([bad])
    (problem,) = caught.value.problems
    text = f"{problem} {problem.hint}"
    assert f"{bad}:4" in text and "replies 'friends'" in text and "everyone, followers, mentioned, nobody" in text


def test_the_queue_stores_the_gate_with_the_root_and_a_new_setting_reaches_the_unsent_root(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    store = Store(url)
    try:
        Planner(store, settings(database_url=url, platforms="x,bluesky")).load([story("s1")], now=NOW)
        Planner(store, settings(database_url=url, platforms="x,bluesky", replies="followers")).load(
            [story("s1")], now=NOW)
        with store.session() as session:
            rows = {(r.platform, r.kind, r.part): r.payload for r in session.scalars(select(DeliveryRow))}
    finally:
        store.dispose()
    assert rows[("x", "root", 1)]["reply_settings"] == "following"
    assert rows[("bluesky", "root", 1)]["threadgate"]["allow"] == [FOLLOWER]
    assert all("reply_settings" not in p and "threadgate" not in p for k, p in rows.items() if k[1] != "root")


# ---------------------------------------------------------------- preview and the sandbox

STORIES = """\
- id: alpha
  date: 2025-03-01T12:00:00Z
  headline: Alpha model released
  url: https://example.com/alpha
  one_year_later: It became the default choice.
  replies: followers
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    (tmp_path / "stories.yaml").write_text(STORIES)
    return tmp_path


def test_preview_json_shows_the_exact_x_field_and_threadgate_record_and_what_is_not_applied(
        env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "--platforms", "x,bluesky,mastodon,reddit", "load", "stories.yaml")[0] == 0
    code, out, _ = run_cli(capsys, "--platforms", "x,bluesky,mastodon,reddit", "preview", "alpha", "--json")
    assert code == 0
    roots = {p["platform"]: p for p in json.loads(out) if p["kind"] == "root"}
    assert roots["x"]["payload"]["reply_settings"] == "following"
    assert roots["bluesky"]["payload"]["threadgate"] == {
        "$type": "app.bsky.feed.threadgate", "allow": [FOLLOWER], "createdAt": "2026-03-01T12:00:00.000Z"}
    for platform in ("mastodon", "reddit"):
        assert "not applied" in roots[platform]["replies"]["applied"]
    assert all("replies" not in p for p in json.loads(out) if p["kind"] != "root")
    code, out, _ = run_cli(capsys, "--platforms", "x,bluesky,mastodon,reddit", "preview", "alpha")
    assert code == 0 and "who may reply: followers" in out and "threadgate" in out


def test_the_sandbox_records_the_gate_each_root_told_its_platform(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "--platforms", "x,bluesky,mastodon", "load", "stories.yaml")[0] == 0
    assert run_cli(capsys, "--platforms", "x,bluesky,mastodon", "run", "--once", "--now",
                   "2026-03-01T12:00:30Z")[0] == 0
    records = {r["platform"]: r for r in read_transcript(env / "transcript.jsonl") if r["kind"] == "root"}
    assert records["x"]["gate"] == {"reply_settings": "following"}
    gate = records["bluesky"]["gate"]["threadgate"]
    assert gate["post"] == records["bluesky"]["remote_id"] and gate["allow"] == [FOLLOWER]
    assert "gate" not in records["mastodon"]


def test_the_bluesky_adapter_refuses_a_threadgate_on_a_reply_or_a_malformed_one_before_any_request(
        tmp_path: Path) -> None:
    from adapters.base import Outgoing, PostRef
    from adapters.bluesky import BlueskyAdapter, BlueskyConfig
    from adapters.tid import next_tid
    from posts.errors import Rejected

    adapter = BlueskyAdapter(BlueskyConfig("bot.test", "app-pass", tmp_path / "session", "http://127.0.0.1:9"))
    root = gated("nobody", "bluesky")[0]
    ref = PostRef("bluesky", "at://did:plc:x/app.bsky.feed.post/3l25zusnsfck2", "",
                  {"uri": "at://did:plc:x/app.bsky.feed.post/3l25zusnsfck2", "cid": "bafyreib"})
    reply = Outgoing("bluesky", "s1", "followup", 1, root.payload, next_tid(), ref, ref)
    with pytest.raises(Rejected, match="only a root has one"):
        adapter.reply(reply)
    broken = {**root.payload, "threadgate": {"$type": "app.bsky.feed.threadgate", "allow": [{"$type": "x#y"}],
                                             "createdAt": "2026-03-01T12:00:00.000Z"}}
    with pytest.raises(Rejected, match="is not an app.bsky.feed.threadgate record"):
        adapter.publish(Outgoing("bluesky", "s1", "root", 1, broken, next_tid()))


def test_preview_says_that_mentioned_admits_no_one_on_bluesky_since_the_bot_writes_no_mention_facets() -> None:
    """Bluesky's mentionRule reads the root's mention facets (the AppView stand-in's tests prove it), and
    rendering makes none: the preview must not let an operator believe @handles in the text open the thread."""
    from posts.replies import applied

    assert "no one else may reply" in applied("bluesky", "mentioned")
    assert "no one else may reply" not in applied("bluesky", "followers")
