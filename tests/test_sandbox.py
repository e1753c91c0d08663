"""The sandbox adapter: records each post as the platform would show it, and can find it again."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from adapters.base import Outgoing, ThreadState
from adapters.sandbox import SandboxAdapter, SandboxConfig, read_transcript, sandbox_ref
from tests.replies import replying

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def post(key: str, kind: str = "root", part: int = 1, platform: str = "x") -> Outgoing:
    return Outgoing(platform, "story-1", kind, part, {"text": f"text {key}"}, key)


def test_posts_and_replies_are_recorded_with_their_thread_position(tmp_path):
    shown = []
    sandbox = SandboxAdapter(SandboxConfig("x", tmp_path / "t.jsonl"), clock=lambda: NOW, show=shown.append)
    root = sandbox.publish(post("k1"))
    reply = sandbox.reply(replying(post("k2", "followup"), root, root))
    records = read_transcript(tmp_path / "t.jsonl")
    assert [r["remote_id"] for r in records] == [root.id, reply.id]
    assert records[0]["reply_to"] is None and records[1]["reply_to"] == root.id
    assert records[1] == {**records[1], "platform": "x", "story_id": "story-1", "kind": "followup", "part": 1,
                          "text": "text k2", "posted_at": NOW.isoformat(), "key": "k2"}
    assert shown == records


def test_ids_look_like_each_platform(tmp_path):
    assert sandbox_ref("x", "k").id.isdigit()
    assert len(sandbox_ref("reddit", "k").id) == 7
    ref = sandbox_ref("bluesky", "3l25zusnsfck2")
    assert ref.id == "at://did:plc:sandbox/app.bsky.feed.post/3l25zusnsfck2" and ref.extra["cid"].startswith("bafy")
    status = sandbox_ref("mastodon", "3l25zusnsfck2")
    assert status.id.isdigit() and len(status.id) == 18
    assert status.url == f"https://mastodon.example/@oneyearago/{status.id}"


def test_find_by_key_after_a_crash_and_a_torn_last_line(tmp_path):
    path = tmp_path / "t.jsonl"
    sandbox = SandboxAdapter(SandboxConfig("bluesky", path), clock=lambda: NOW)
    ref = sandbox.publish(post("k1", platform="bluesky"))
    with open(path, "a") as handle:
        handle.write('{"platform": "bluesky", "key": "k2"')  # the process died mid-write
    again = SandboxAdapter(SandboxConfig("bluesky", path), clock=lambda: NOW)
    assert again.find(post("k1", platform="bluesky")) == ref
    assert again.find(post("k2", platform="bluesky")) is None
    assert again.thread_state(ref) is ThreadState.OPEN
    assert again.thread_state(sandbox_ref("bluesky", "zzz")) is ThreadState.GONE


def test_mastodon_records_the_status_and_keeps_its_content_warning_in_the_payload(tmp_path):
    sandbox = SandboxAdapter(SandboxConfig("mastodon", tmp_path / "t.jsonl"), clock=lambda: NOW)
    root = sandbox.publish(Outgoing("mastodon", "s", "root", 1, {"status": "Root", "language": "en"}, "k1"))
    payload = {"status": "Reveal", "language": "en", "spoiler_text": "One year later — spoiler"}
    reply = sandbox.reply(replying(Outgoing("mastodon", "s", "followup", 1, payload, "k2"), root, root))
    first, second = read_transcript(tmp_path / "t.jsonl")
    assert (first["text"], second["text"]) == ("Root", "Reveal")
    assert second["payload"] == payload and second["reply_to"] == root.id and reply.url.startswith("https://mastodon.example/")
    assert sandbox.find(Outgoing("mastodon", "s", "followup", 1, payload, "k2")) == reply


def test_reddit_root_records_title_and_self_text(tmp_path):
    sandbox = SandboxAdapter(SandboxConfig("reddit", tmp_path / "t.jsonl"), clock=lambda: NOW)
    sandbox.publish(Outgoing("reddit", "s", "root", 1, {"title": "T", "selftext": "Body"}, "k"))
    record = json.loads((tmp_path / "t.jsonl").read_text())
    assert record["text"] == "T\n\nBody" and record["payload"] == {"title": "T", "selftext": "Body"}


def test_simulated_latency_uses_the_injected_sleep(tmp_path):
    slept = []
    sandbox = SandboxAdapter(SandboxConfig("x", tmp_path / "t.jsonl", latency=0.1), clock=lambda: NOW, sleep=slept.append)
    sandbox.publish(post("k"))
    assert slept == [0.1]


def test_look_ups_see_every_append_and_a_rewritten_transcript(tmp_path):
    """Look-ups read only what was appended since the last one, yet miss nothing: posts written by
    another process, a line finished after a look-up saw half of it, and a transcript edited by hand
    (a post deleted) are all seen."""
    path = tmp_path / "t.jsonl"
    reader = SandboxAdapter(SandboxConfig("x", path), clock=lambda: NOW)
    assert reader.find(post("k1")) is None  # no transcript yet
    first = SandboxAdapter(SandboxConfig("x", path), clock=lambda: NOW).publish(post("k1"))
    assert reader.find(post("k1")) == first
    line = path.read_text(encoding="utf-8").split("\n")[0].replace("k1", "k2").replace(first.id, sandbox_ref("x", "k2").id)
    with open(path, "a", encoding="utf-8") as handle:  # another process, caught mid-write
        handle.write(line[:20])
    assert reader.find(post("k2")) is None
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line[20:] + "\n")
    assert reader.find(post("k2")) == sandbox_ref("x", "k2")
    assert reader.thread_state(first) is ThreadState.OPEN
    kept = path.read_text(encoding="utf-8").split("\n")[1]  # the operator deletes the first post by hand
    path.write_text(kept.replace("k2", "k3") + "\n" + kept + "\n", encoding="utf-8")
    assert reader.thread_state(first) is ThreadState.GONE
    assert reader.find(post("k1")) is None and reader.find(post("k2")) == sandbox_ref("x", "k2")


def test_the_sandbox_is_built_from_its_own_config_alone(tmp_path):
    slept: list[float] = []
    sandbox = SandboxAdapter(SandboxConfig("reddit", tmp_path / "t.jsonl", latency=0.25), sleep=slept.append)
    ref = sandbox.publish(post("k1", platform="reddit"))
    assert ref == sandbox_ref("reddit", "k1") and slept == [0.25]
    assert [r["platform"] for r in read_transcript(tmp_path / "t.jsonl")] == ["reddit"]


def test_a_reply_names_its_parent_and_root_in_the_post_itself(tmp_path):
    sandbox = SandboxAdapter(SandboxConfig("x", tmp_path / "t.jsonl"), clock=lambda: NOW, show=lambda _: None)
    with pytest.raises(ValueError, match="names no parent and root"):
        sandbox.reply(post("k2", "followup"))
    assert not (tmp_path / "t.jsonl").exists() or read_transcript(tmp_path / "t.jsonl") == []


def test_a_post_without_a_key_is_not_found_rather_than_an_error(tmp_path):
    """A delivery claimed live on X or Reddit has no key; looked up in sandbox mode it is simply absent
    (an error outside the adapter vocabulary would escape every sweep's settlement)."""
    sandbox = SandboxAdapter(SandboxConfig("x", tmp_path / "t.jsonl"), clock=lambda: NOW, show=lambda _: None)
    sandbox.publish(post("k1"))
    assert sandbox.find(post(None)) is None
