"""Chaos: the engine as a separate process, killed with SIGKILL again and again while every platform
misbehaves; then the platforms' own records are checked.

X and Reddit are stateful stand-ins served on 127.0.0.1 (the real tweepy and praw code talks to them
over HTTP); Bluesky is the real reference server behind a fault-injecting proxy; Mastodon (once it is one
of ``posts.story.PLATFORMS``) is the ``mastodon-mock`` stand-in behind the same kind of proxy. Faults: 5xx, 429
with reset headers, Reddit's RATELIMIT inside a 200, answers slower than the bot's timeout, and
posts accepted whose answer is lost (the connection dropped after the write).

Guarantees checked from the servers' side: every delivery is on its platform exactly once, or is
flagged ``unconfirmed`` (at most once there); every follow-up part replies to the right post, in
order; nothing is lost (nothing left pending or sending); nothing was sent to a platform while it
had said wait. ``ONEYEARAGO_CHAOS_CYCLES`` (default 50) sets the kill-and-restart cycles;
``ONEYEARAGO_CHAOS_SEED`` replays a run. The figures go to ``.cache/artifacts/chaos.json``.
"""

from __future__ import annotations

import collections
import datetime as dt
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from adapters.mastodon import html_text
from bot.config import load_settings
from bot.models import DeliveryRow
from bot.planner import Planner
from bot.store import Store
from posts.media import Image, prepare_versions
from posts.story import PLATFORMS, Story, StoryImage
from tests.adapters.x_fixtures import CREDENTIALS
from tests.pds_harness import LocalPDS
from tests.standins import x as x_standin
from tests.standins.bluesky_proxy import FaultProxy
from tests.standins.mastodon import TOKEN as MASTODON_TOKEN
from tests.standins.mastodon import AnswerLossProxy, MastodonMock
from tests.standins.reddit import RedditStandin
from tests.standins.x import XStandin

UTC = dt.UTC
CYCLES = int(os.environ.get("ONEYEARAGO_CHAOS_CYCLES", "50"))
ARTIFACTS = Path(__file__).resolve().parents[1] / ".cache" / "artifacts"
LONG_REVEAL = " ".join(f"Step {{i}}.{j}: the story kept unfolding in ways few predicted at the time."
                       for j in range(9))
"""A reveal long enough to be a thread on X and Bluesky (each story's own: X refuses duplicate text)."""
MASTODON = "mastodon" in PLATFORMS
"""Mastodon takes part once it is a platform (the rendering half of issue 16); until then the run leaves it out."""
CREATE = "/api/v1/statuses"


def _chaos_picture(i: int, j: int) -> tuple[StoryImage, tuple[Image, ...]]:
    """Picture ``j`` of story ``i``: a small PNG of its own colour, prepared for every platform, and its alt text."""
    from PIL import Image as PILImage

    out = io.BytesIO()
    PILImage.new("RGB", (120 + j, 80), ((37 * i) % 256, (91 * j + 40) % 256, 120)).save(out, "PNG")
    versions = prepare_versions(out.getvalue(), f"chaos{i}-{j}.png", PLATFORMS)
    alt = f"Picture {j} of chaos story {i}"
    return (StoryImage(f"chaos{i}-{j}.png", alt, {p: v.sha256 for p, v in versions.items()}),
            tuple(versions.values()))


def chaos_stories(start: dt.datetime, count: int) -> list[Story]:
    """Stories due one after another from ``start``; some with follow-ups long enough to be threads, some
    with pictures (two on the root, and one on the reveal of every other one of those)."""
    stories = []
    for i in range(count):
        due = start + dt.timedelta(seconds=4 * i)
        images: list[StoryImage] = []
        followup_images: list[StoryImage] = []
        prepared: list[Image] = []
        if i % 3 == 1:
            for j in (1, 2):
                image, made = _chaos_picture(i, j)
                images.append(image)
                prepared += made
            if i % 6 == 1:
                image, made = _chaos_picture(i, 3)
                followup_images.append(image)
                prepared += made
        stories.append(Story(
            images=tuple(images), followup_images=tuple(followup_images), prepared_pictures=tuple(prepared),
            id=f"chaos{i:02d}", date=due.replace(year=due.year - 1), headline=f"Chaos headline number {i}",
            summary=f"Summary {i} of a story replayed under fire.", url=f"https://example.com/chaos/{i}",
            category="test", source="Chaos Wire",
            one_year_later=LONG_REVEAL.format(i=i) if i % 3 == 0 else f"Reveal {i}: it held up.",
            followup_after=dt.timedelta(seconds=6 + i % 5),
        ))
    return stories


class Faults:
    """Random faults, injected into the stand-ins and the proxy while the bot runs."""

    def __init__(self, rng: random.Random, x: XStandin, reddit: RedditStandin, proxy: FaultProxy,
                 mastodon: MastodonMock | None = None, mastodon_proxy: AnswerLossProxy | None = None):
        self.rng, self.x, self.reddit, self.proxy = rng, x, reddit, proxy
        self.mastodon, self.mastodon_proxy = mastodon, mastodon_proxy
        self.injected: collections.Counter[str] = collections.Counter()

    def inject(self) -> None:
        kinds = ["x-503", "x-503-applied", "x-429", "x-slow", "x-drop", "reddit-503", "reddit-ratelimit",
                 "reddit-429", "reddit-drop", "reddit-slow", "bluesky-503", "bluesky-429", "bluesky-drop",
                 "bluesky-slow", "none"]
        if self.mastodon is not None:
            kinds += ["mastodon-503", "mastodon-500", "mastodon-429", "mastodon-drop", "mastodon-slow"]
        kind = self.rng.choice(kinds)
        now = time.time()
        if kind == "x-503":
            self.x.fail_next("POST /2/tweets", 503)
        elif kind == "x-503-applied":
            self.x.fail_next("POST /2/tweets", 503, apply=True)
        elif kind == "x-429":
            self.x.rate_limit_next("POST /2/tweets", reset=now + 3)
        elif kind == "x-slow":
            self.x.delay_next("POST /2/tweets", 3.5)
        elif kind == "x-drop":
            self.x.drop_next("POST /2/tweets")
        elif kind == "reddit-503":
            self.reddit.fail_next(self.rng.choice(["submit", "comment"]), status=503)
        elif kind == "reddit-ratelimit":
            self.reddit.rate_limit_next(self.rng.choice(["submit", "comment"]),
                                        message="You are doing that too much. Try again in 2 seconds.")
        elif kind == "reddit-429":
            self.reddit.too_many_requests_next(self.rng.choice(["submit", "comment"]), retry_after=2)
        elif kind == "reddit-drop":
            self.reddit.drop_next(self.rng.choice(["submit", "comment"]))
        elif kind == "reddit-slow":
            self.reddit.delay_next(self.rng.choice(["submit", "comment"]), 3.5)
        elif kind == "bluesky-503":
            self.proxy.respond_next("com.atproto.repo.createRecord", 503)
        elif kind == "bluesky-429":
            self.proxy.respond_next("com.atproto.repo.createRecord", 429,
                                    {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                                    {"ratelimit-reset": str(int(now + 3)), "ratelimit-remaining": "0"})
        elif kind == "bluesky-drop":
            self.proxy.drop_next("com.atproto.repo.createRecord")
        elif kind == "bluesky-slow":
            self.proxy.delay_next("com.atproto.repo.createRecord", 3.5)
        elif kind.startswith("mastodon-") and self.mastodon is not None and self.mastodon_proxy is not None:
            if kind == "mastodon-503":
                self.mastodon.fault(CREATE, {"type": "status", "status": 503})
            elif kind == "mastodon-500":  # as a repeated Idempotency-Key may answer (mastodon/mastodon#40399)
                self.mastodon_proxy.fail_next_create(500)
            elif kind == "mastodon-429":  # the reset as real Mastodon sends it: ISO 8601 with microseconds
                reset = dt.datetime.fromtimestamp(now + 3, UTC).isoformat(timespec="microseconds")
                self.mastodon.fault(CREATE, {"type": "ratelimit", "headers": {
                    "X-RateLimit-Reset": reset.replace("+00:00", "Z"), "Retry-After": "3"}})
            elif kind == "mastodon-drop":
                self.mastodon_proxy.lose_next_create()
            else:
                self.mastodon_proxy.delay_next(CREATE, 3.5)
        self.injected[kind] += 1


@pytest.mark.pds
@pytest.mark.chaos
@pytest.mark.timeout(1500)
def test_killed_again_and_again_under_faults_nothing_is_doubled_or_lost(pds: LocalPDS, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    # The stand-in's real per-window limits are not under test here (the injected 429s are): restarting
    # the bot fifty times must not exhaust X's 15-minute windows and stall the final check for 15 minutes.
    for route in list(x_standin.LIMITS):
        monkeypatch.setitem(x_standin.LIMITS, route, 100_000)
    seed = int(os.environ.get("ONEYEARAGO_CHAOS_SEED", str(random.SystemRandom().randrange(10**6))))
    rng = random.Random(seed)
    print(f"chaos seed {seed}, {CYCLES} cycles")
    x = XStandin(credentials=CREDENTIALS)
    x_url = x.serve()
    reddit = RedditStandin()
    reddit_url = reddit.serve(tls=True)  # praw uploads pictures over https: to the lease's address
    account = pds.create_account("chaos")
    proxy = FaultProxy(pds.url).serve()
    mastodon = MastodonMock(tmp_path / "mastodon").start() if MASTODON else None
    mastodon_proxy = AnswerLossProxy(mastodon.url).serve() if mastodon is not None else None
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONEYEARAGO_")}
    env.update({
        "ONEYEARAGO_DATABASE_URL": f"sqlite:///{tmp_path / 'queue.db'}", "ONEYEARAGO_MODE": "live",
        "ONEYEARAGO_X_CONSUMER_KEY": CREDENTIALS[0], "ONEYEARAGO_X_CONSUMER_SECRET": CREDENTIALS[1],
        "ONEYEARAGO_X_ACCESS_TOKEN": CREDENTIALS[2], "ONEYEARAGO_X_ACCESS_TOKEN_SECRET": CREDENTIALS[3],
        "ONEYEARAGO_X_API_URL": x_url,
        "ONEYEARAGO_REDDIT_CLIENT_ID": reddit.client_id, "ONEYEARAGO_REDDIT_CLIENT_SECRET": reddit.client_secret,
        "ONEYEARAGO_REDDIT_USERNAME": reddit.username, "ONEYEARAGO_REDDIT_PASSWORD": reddit.users[reddit.username],
        "ONEYEARAGO_REDDIT_SUBREDDIT": next(iter(reddit.subreddits)), "ONEYEARAGO_REDDIT_URL": reddit_url,
        "ONEYEARAGO_REDDIT_OAUTH_URL": reddit_url, "REQUESTS_CA_BUNDLE": str(reddit.ca_file),
        "ONEYEARAGO_BLUESKY_HANDLE": account.handle, "ONEYEARAGO_BLUESKY_APP_PASSWORD": account.password,
        "ONEYEARAGO_BLUESKY_PDS_URL": proxy.url, "ONEYEARAGO_BLUESKY_SESSION_FILE": str(tmp_path / "session.json"),
        "ONEYEARAGO_LINK_CHECK": "off",  # the stories' links are not on 127.0.0.1: never reach out to them
        "ONEYEARAGO_HTTP_TIMEOUT": "2s", "ONEYEARAGO_BACKOFF": "1s", "ONEYEARAGO_MAX_ATTEMPTS": "30",
        "ONEYEARAGO_LEASE": "10s", "ONEYEARAGO_SETTLE": "6s", "ONEYEARAGO_RECHECK": "1s", "ONEYEARAGO_BACKLOG_PACE": "0s",
        "ONEYEARAGO_QUOTA_X_24H": "0", "ONEYEARAGO_QUOTA_X_15M": "0", "ONEYEARAGO_QUOTA_REDDIT_24H": "0",
        "ONEYEARAGO_QUOTA_BLUESKY_24H": "0", "ONEYEARAGO_QUOTA_BLUESKY_15M": "0", "ONEYEARAGO_LOG_LEVEL": "error",
    })
    if mastodon_proxy is not None:
        env.update({"ONEYEARAGO_MASTODON_API_BASE_URL": mastodon_proxy.url,
                    "ONEYEARAGO_MASTODON_ACCESS_TOKEN": MASTODON_TOKEN,
                    "ONEYEARAGO_QUOTA_MASTODON_24H": "0", "ONEYEARAGO_QUOTA_MASTODON_15M": "0"})
    settings = load_settings({"database_url": env["ONEYEARAGO_DATABASE_URL"]}, environ={}, env_file=None)
    store = Store(settings.database_url)
    start = dt.datetime.now(UTC) + dt.timedelta(seconds=8)
    stories = chaos_stories(start, max(6, CYCLES // 4))
    Planner(store, settings).load(stories, now=dt.datetime.now(UTC), render=True)
    faults = Faults(rng, x, reddit, proxy, mastodon, mastodon_proxy)
    toots: list[dict[str, Any]] = []
    log = open(tmp_path / "bot.log", "ab")
    kills = 0
    proc: subprocess.Popen[bytes] | None = None

    lives: list[list[float]] = []
    """[started, ended] of each bot process, in wall-clock seconds (the stand-ins' clock)."""

    def start_bot() -> subprocess.Popen[bytes]:
        lives.append([time.time(), float("inf")])
        return subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=log)

    try:
        for _ in range(CYCLES):
            proc = start_bot()
            alive_for = rng.uniform(0.8, 3.5)
            deadline = time.monotonic() + alive_for
            while time.monotonic() < deadline:
                if rng.random() < 0.5:
                    faults.inject()
                time.sleep(rng.uniform(0.1, 0.6))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            lives[-1][1] = time.time()
            kills += 1
        # Then let it finish in peace: faults still queued are dropped, and every delivery must settle.
        for queues in (x._faults, reddit._faults, proxy._faults):
            queues.clear()
        if mastodon is not None and mastodon_proxy is not None:
            mastodon.clear_faults()
            mastodon_proxy._faults.clear()
        with store.session() as session:  # fast-forward the backoff schedule (tested elsewhere), not the rest
            session.execute(update(DeliveryRow).where(DeliveryRow.status == "pending").values(not_before=None))
        proc = start_bot()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with store.session() as session:
                waiting = list(session.scalars(select(DeliveryRow).where(
                    DeliveryRow.status.in_(("pending", "sending")))))
                settled = {(r.story_id, r.platform, r.kind, r.part): r.status
                           for r in session.scalars(select(DeliveryRow))}
            if all(r.kind == "followup" and any(settled.get(k) == "unconfirmed" for k in
                   [(r.story_id, r.platform, "root", 1)]
                   + [(r.story_id, r.platform, "followup", p) for p in range(1, r.part)]) for r in waiting):
                break
            time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        if mastodon is not None:
            toots = mastodon.statuses()
    finally:
        if proc is not None and proc.poll() is None:  # interrupted (e.g. a timeout): never leave the bot running
            proc.kill()
            proc.wait(timeout=30)
        log.close()
        x.stop()
        reddit.stop()
        proxy.stop()
        if mastodon_proxy is not None:
            mastodon_proxy.stop()
        if mastodon is not None:
            mastodon.stop()

    with store.session() as session:
        rows = list(session.scalars(select(DeliveryRow)))
    by_slot = {(r.story_id, r.platform, r.kind, r.part): r for r in rows}
    statuses = collections.Counter(r.status for r in rows)
    problems: list[str] = []

    # Nothing lost: every delivery settled, and only as posted or flagged unconfirmed (the later parts of
    # a thread whose earlier part is unconfirmed wait for the operator with it).
    def behind_unconfirmed(row: DeliveryRow) -> bool:
        earlier = [by_slot.get((row.story_id, row.platform, "root", 1))]
        earlier += [by_slot.get((row.story_id, row.platform, "followup", p)) for p in range(1, row.part)]
        return row.kind == "followup" and any(e is not None and e.status == "unconfirmed" for e in earlier)

    held = [r for r in rows if r.status == "pending" and behind_unconfirmed(r)]
    for row in rows:
        if row.status not in ("posted", "unconfirmed") and row not in held:
            problems.append(f"{row.label}: {row.status} ({row.last_error})")

    # X: each of our posts at most once on the server; posted ones exactly once; replies threaded.
    x_live = [t for t in x.tweets.values() if not t.deleted]
    x_by_text = collections.Counter(t.text for t in x_live)
    x_rows = [r for r in rows if r.platform == "x"]
    for row in x_rows:
        copies = x_by_text[row.payload["text"]]
        if copies > 1 or (row.status == "posted" and copies != 1):
            problems.append(f"x {row.label}: {copies} copies on the server")
    if len(x_live) > len(x_rows):
        problems.append(f"x: {len(x_live)} posts on the server for {len(x_rows)} deliveries")
    x_ids = {t.id: t for t in x_live}
    for row in x_rows:
        if row.kind == "followup" and row.status == "posted":
            parent = by_slot[(row.story_id, "x", "root", 1) if row.part == 1
                             else (row.story_id, "x", "followup", row.part - 1)]
            if x_ids[row.remote_id].reply_to != parent.remote_id:
                problems.append(f"x {row.label}: replies to {x_ids[row.remote_id].reply_to}, not its parent")

    # Pictures: every post that went out with pictures carries them, with their alt text, in order.
    def alts(row: DeliveryRow) -> list[str]:
        return [p["alt"] for p in row.pictures or []]

    pictured = [r for r in rows if r.pictures and r.status == "posted"]
    for row in (r for r in pictured if r.platform == "x"):
        sent = [x.media[m].alt for m in x_ids[row.remote_id].media_ids]
        if sent != alts(row):
            problems.append(f"x {row.label}: pictures {sent}, not {alts(row)}")

    # Reddit: submissions and comments, each at most once; comments under the right parent.
    subs = collections.Counter(s["title"] for s in reddit.posts_by())
    comments = collections.Counter(c["body"] for c in reddit.comments_by())
    for row in (r for r in rows if r.platform == "reddit"):
        copies = subs[row.payload["title"]] if row.kind == "root" else comments[row.payload["text"]]
        if copies > 1 or (row.status == "posted" and copies != 1):
            problems.append(f"reddit {row.label}: {copies} copies on the server")
        if row.kind == "followup" and row.status == "posted":
            parent = by_slot[(row.story_id, "reddit", "root", 1) if row.part == 1
                             else (row.story_id, "reddit", "followup", row.part - 1)]
            expected = f"t3_{parent.remote_id}" if parent.kind == "root" else f"t1_{parent.remote_id}"
            if reddit.comments[row.remote_id]["parent_id"] != expected:
                problems.append(f"reddit {row.label}: under {reddit.comments[row.remote_id]['parent_id']}")

    for row in (r for r in pictured if r.platform == "reddit" and r.kind == "root"):
        submission = reddit.submissions[row.remote_id]
        shown = re.findall(r"\[([^\]]*)\]\(https://preview\.redd\.it/", submission["selftext"])
        if shown != alts(row) or len(submission["media_metadata"] or {}) != len(alts(row)):
            problems.append(f"reddit {row.label}: captions {shown}, not {alts(row)}")

    # Bluesky: the real server's records, one per record key; replies point at the right posts.
    import httpx

    records, cursor = [], None
    while True:
        params = {"repo": account.did, "collection": "app.bsky.feed.post", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = httpx.get(f"{pds.url}/xrpc/com.atproto.repo.listRecords", params=params).json()
        records += page["records"]
        cursor = page.get("cursor")
        if not cursor or not page["records"]:
            break
    bsky_text = collections.Counter(r["value"]["text"] for r in records)
    uris = {r["uri"]: r for r in records}
    for row in (r for r in rows if r.platform == "bluesky"):
        copies = bsky_text[row.payload["text"]]
        if copies > 1 or (row.status == "posted" and copies != 1):
            problems.append(f"bluesky {row.label}: {copies} copies on the server")
        if row.kind == "followup" and row.status == "posted":
            parent = by_slot[(row.story_id, "bluesky", "root", 1) if row.part == 1
                             else (row.story_id, "bluesky", "followup", row.part - 1)]
            root = by_slot[(row.story_id, "bluesky", "root", 1)]
            reply = uris[row.remote_id]["value"]["reply"]
            if reply["parent"]["uri"] != parent.remote_id or reply["root"]["uri"] != root.remote_id:
                problems.append(f"bluesky {row.label}: reply refs point elsewhere")

    for row in (r for r in pictured if r.platform == "bluesky"):
        embed = uris[row.remote_id]["value"].get("embed") or {}
        sent = [i["alt"] for i in embed.get("images", [])]
        if embed.get("$type") != "app.bsky.embed.images" or sent != alts(row):
            problems.append(f"bluesky {row.label}: pictures {sent}, not {alts(row)}")

    # Mastodon: each status at most once (same text behind the same warning); replies under the right parent.
    def toot_key(text: str, warning: str | None) -> tuple[str, str]:
        return " ".join(text.split()), warning or ""

    toot_copies = collections.Counter(toot_key(html_text(t["content"]), t["spoiler_text"]) for t in toots)
    toot_ids = {t["id"]: t for t in toots}
    mastodon_rows = [r for r in rows if r.platform == "mastodon"]
    for row in mastodon_rows:
        copies = toot_copies[toot_key(row.payload["status"], row.payload.get("spoiler_text"))]
        if copies > 1 or (row.status == "posted" and copies != 1):
            problems.append(f"mastodon {row.label}: {copies} copies on the server")
        if row.kind == "followup" and row.status == "posted":
            parent = by_slot[(row.story_id, "mastodon", "root", 1) if row.part == 1
                             else (row.story_id, "mastodon", "followup", row.part - 1)]
            if toot_ids[row.remote_id]["in_reply_to_id"] != parent.remote_id:
                problems.append(f"mastodon {row.label}: replies to {toot_ids[row.remote_id]['in_reply_to_id']}")
    for row in (r for r in pictured if r.platform == "mastodon" and "media_attachments" in toot_ids.get(r.remote_id, {})):
        sent = [m.get("description") for m in toot_ids[row.remote_id]["media_attachments"]]
        if sent != alts(row):
            problems.append(f"mastodon {row.label}: pictures {sent}, not {alts(row)}")
    if len(toots) > len(mastodon_rows):
        problems.append(f"mastodon: {len(toots)} statuses on the server for {len(mastodon_rows)} deliveries")

    # Nothing sent while a platform had said wait, by a bot that knew it: the process that was told, or
    # a later one when the told process had recorded the wait. (A process killed between the answer
    # and recording it takes the news with it; the next one learns it again from the platform.)
    recorded = _rate_limits_recorded(store)
    problems += [f"x: {route} at {when:.3f} before the announced {allowed:.3f}"
                 for route, when, allowed in x.violations
                 if _knew_of_wait(route, when, x.told, lives, recorded["x"])]
    problems += [f"reddit: write at {r.at:.3f} while told to wait" for r in reddit.early_writes
                 if _knew_of_wait("", r.at, [("", *t) for t in reddit.told], lives, recorded["reddit"])]

    figures = {
        "early_after_unrecorded_wait": len(x.violations) + len(reddit.early_writes)
        - sum(1 for p in problems if " before the announced " in p or "while told to wait" in p),
        "seed": seed, "cycles": CYCLES, "kills": kills, "stories": len(stories), "deliveries": len(rows),
        "statuses": dict(statuses), "faults_injected": dict(faults.injected),
        "with_pictures": {p: sum(1 for r in pictured if r.platform == p) for p in PLATFORMS},
        "faults_total": sum(v for k, v in faults.injected.items() if k != "none"),
        "duplicates": sum(1 for p in problems if "copies" in p and not p.endswith(" 0 copies on the server")),
        "held_behind_unconfirmed": len(held),
        "lost": sum(1 for r in rows if r.status in ("pending", "sending", "failed", "missed") and r not in held),
        "problems": problems,
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "chaos.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps({k: v for k, v in figures.items() if k != "problems"}, indent=2))
    assert not problems, "\n".join(problems[:40])


def _rate_limits_recorded(store: Store) -> dict[str, list[float]]:
    """When the bot committed each rate limit it was given, per platform (wall-clock seconds)."""
    from bot.models import AttemptRow

    out: dict[str, list[float]] = collections.defaultdict(list)
    with store.session() as session:
        for platform, finished in session.execute(
                select(DeliveryRow.platform, AttemptRow.finished_at).join(AttemptRow)
                .where(AttemptRow.outcome == "rate-limited", AttemptRow.finished_at.is_not(None))):
            out[platform].append(finished.timestamp())
    return out


def _knew_of_wait(scope: str, at: float, told: list[tuple[str, float, float]], lives: list[list[float]],
                  recorded: list[float]) -> bool:
    """Whether the bot that sent a request at ``at`` knew of a wait in force then.

    It did when the wait was told to the same process, or to an earlier one that recorded it (a rate
    limit committed after the answer and before that process ended)."""
    for where, told_at, until in told:
        if where != scope or not told_at <= at < until:
            continue
        life = next((span for span in lives if span[0] <= told_at < span[1]), None)
        if life is None:
            return True
        if life[0] <= at < life[1] or any(told_at <= r <= life[1] for r in recorded):
            return True
    return False



def test_an_early_request_counts_only_when_the_bot_knew_of_the_wait():
    lives = [[0.0, 10.0], [10.5, 20.0], [20.5, float("inf")]]
    told = [("r", 5.0, 12.0), ("r", 19.0, 30.0)]
    assert _knew_of_wait("r", 6.0, told, lives, [])  # the same process, told at 5 and sending at 6
    assert not _knew_of_wait("r", 11.0, told, lives, [])  # told at 5, killed at 10 before recording it
    assert _knew_of_wait("r", 11.0, told, lives, [5.1])  # recorded at 5.1: the next process must heed it
    assert not _knew_of_wait("r", 11.0, told, lives, [10.2])  # recorded after its process had ended: not that one
    assert not _knew_of_wait("other", 6.0, told, lives, [])  # another route's wait
    assert not _knew_of_wait("r", 13.0, told, lives, [5.1])  # the wait was over
    assert _knew_of_wait("r", 25.0, told, lives, [19.5])
