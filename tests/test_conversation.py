"""The conversation sweep on a simulated clock: what it keeps, the budget it keeps to, rate limits, hiding."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from adapters.base import PostRef
from adapters.fake import FakeAdapter, FakeConfig
from adapters.sandbox import SandboxAdapter, SandboxConfig
from bot.conversation import ConversationSweep, hide, mark_seen, threads
from bot.engine import Engine
from bot.models import ConversationRow, DeliveryRow, PlatformRow, StoryRow
from bot.runner import every, side_job
from posts.errors import AuthFailed, BotError, NotFound, RateLimited, Transient
from tests.conftest import story
from tests.run_loop import looping, wait_for

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
POSTED = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def timed(sid: str, minute: int = 0) -> object:
    return story(sid, dt.datetime(2025, 3, 1, 12, minute, tzinfo=UTC))


def post_roots(store, platform: str, story_ids, at: dt.datetime = POSTED) -> None:
    """Mark the stories' roots on ``platform`` posted, as the engine leaves them."""
    with store.session() as session:
        for row in session.scalars(select(DeliveryRow).where(
                DeliveryRow.platform == platform, DeliveryRow.kind == "root", DeliveryRow.story_id.in_(story_ids))):
            row.status, row.remote_id, row.posted_at = "posted", f"{platform}-{row.story_id}", at
            row.remote_url = f"https://{platform}.example/{row.story_id}"
            row.remote_extra = {"uri": f"at://did:plc:bot/app.bsky.feed.post/{row.story_id}", "cid": "bafy"}


def ref(platform: str, sid: str) -> PostRef:
    return PostRef(platform, f"{platform}-{sid}", "")


@pytest.fixture
def many(make_settings, store, planner):
    """25 stories whose Bluesky and Reddit roots went out yesterday."""
    ids = [f"s{i:02d}" for i in range(25)]
    planner.load([timed(sid, i) for i, sid in enumerate(ids)], now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    for platform in ("bluesky", "reddit"):
        post_roots(store, platform, ids)
    return ids


def sweeper(store, settings, adapters, budget=None):
    return ConversationSweep(store, settings, adapters, clock=lambda: NOW, budget=budget)


# ---------------------------------------------------------------------------- what is kept


def test_the_engine_posts_and_the_sweep_keeps_the_count_and_latest_replies_without_the_bots_own(
        planner, engine, fakes, clock, store, make_settings):
    settings = make_settings(conversation_keep=3)
    planner.load([timed("s1")], now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    for when in (POSTED, POSTED + dt.timedelta(hours=6)):
        clock["t"] = when
        engine.run_once(when)
    bsky = fakes["bluesky"]
    root, followup = bsky.posts
    assert followup.post.kind == "followup"
    for i in range(5):
        bsky.add_reply(root.ref, f"@fan{i}.bsky.social", f"reply {i}", POSTED + dt.timedelta(minutes=10 * i))
    bsky.add_reply(root.ref, "@oneyearago", "our own part", POSTED, reply_id=followup.ref.id)
    passes = sweeper(store, settings, fakes).sweep(NOW)
    assert {p.platform for p in passes} == {"reddit", "bluesky", "mastodon"}  # X is off unless enabled
    (kept,) = threads(store, "s1", only_new=True)
    assert kept.platform == "bluesky" and kept.total == 5 and kept.new == 5
    assert [r.text for r in kept.replies] == ["reply 4", "reply 3", "reply 2"]  # newest first, at most keep
    assert kept.root_url == root.ref.url and kept.headline == "Headline of s1"
    assert {t.platform for t in threads(store, "s1")} == {"reddit", "bluesky", "mastodon"}
    assert fakes["x"].reads == 0


def test_x_is_read_only_when_enabled(store, make_settings, planner):
    planner.load([timed("s1")], now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    post_roots(store, "x", ["s1"])
    x = FakeAdapter(FakeConfig("x"))
    x.add_reply(ref("x", "s1"), "@someone", "hello", POSTED)
    assert sweeper(store, make_settings(), {"x": x}).sweep(NOW) == [] and x.reads == 0
    sweeper(store, make_settings(conversation_x="true"), {"x": x}).sweep(NOW)
    assert x.reads == 1 and threads(store, "s1")[0].total == 1


def test_only_posted_roots_within_the_days_are_read(store, make_settings, planner):
    planner.load([timed("old"), timed("new", 1), timed("unposted", 2)], now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    post_roots(store, "bluesky", ["old"], at=NOW - dt.timedelta(days=8))
    post_roots(store, "bluesky", ["new"], at=NOW - dt.timedelta(days=6))
    bsky = FakeAdapter(FakeConfig("bluesky"))
    sweeper(store, make_settings(conversation_days=7), {"bluesky": bsky}).sweep(NOW)
    assert bsky.reads == 1 and [t.story_id for t in threads(store)] == ["new"]


def test_a_thread_is_read_once_per_interval_and_the_stories_deletion_takes_its_conversation(
        store, settings, many):
    bsky = FakeAdapter(FakeConfig("bluesky"))
    sweep = sweeper(store, settings, {"bluesky": bsky}, budget={"bluesky": 100})
    assert sweep.sweep(NOW)[0].threads == 25
    assert sweep.sweep(NOW + dt.timedelta(minutes=29))[0].threads == 0
    assert sweep.sweep(NOW + settings.conversation_every)[0].threads == 25
    with store.session() as session:
        session.delete(session.get(StoryRow, "s00"))
    with store.session() as session:
        assert session.scalar(select(ConversationRow).where(ConversationRow.story_id == "s00")) is None


# ---------------------------------------------------------------------------- the budget, counted


def test_each_pass_stays_within_the_platforms_request_budget_oldest_read_first(store, settings, many):
    bsky, reddit = FakeAdapter(FakeConfig("bluesky")), FakeAdapter(FakeConfig("reddit"))
    sweep = sweeper(store, settings, {"bluesky": bsky, "reddit": reddit}, budget={"bluesky": 10, "reddit": 4})
    read_by_pass = []
    for n in range(3):
        before = (bsky.reads, reddit.reads)
        passes = {p.platform: p for p in sweep.sweep(NOW + n * settings.conversation_every)}
        assert bsky.reads - before[0] == passes["bluesky"].requests == 10
        assert reddit.reads - before[1] == passes["reddit"].requests == 4
        assert "budget" in passes["bluesky"].stopped
        with store.session() as session:
            read_by_pass.append(set(session.scalars(select(ConversationRow.story_id).where(
                ConversationRow.platform == "bluesky", ConversationRow.swept_at == NOW + n * settings.conversation_every))))
    # never-read threads first, then those read longest ago
    first, second, third = read_by_pass
    assert first.isdisjoint(second) and len(first | second) == 20
    never = set(many) - first - second
    assert len(never) == 5 and never <= third and len(third - never) == 5 and third - never <= first


def test_reads_that_cost_several_requests_never_overrun_the_budget(store, settings, many):
    bsky = FakeAdapter(FakeConfig("bluesky"))
    bsky.requests_per_read = 3
    sweep = sweeper(store, settings, {"bluesky": bsky}, budget={"bluesky": 10})
    for n in range(4):
        before = bsky.reads
        (done,) = sweep.sweep(NOW + n * settings.conversation_every)
        assert bsky.reads - before == done.requests == 9  # a fourth read (12) would overrun 10
        assert done.threads == 3


def test_a_rate_limit_stops_the_platforms_reads_until_its_time_even_after_a_restart(store, settings, many):
    bsky, reddit = FakeAdapter(FakeConfig("bluesky")), FakeAdapter(FakeConfig("reddit"))
    adapters = {"bluesky": bsky, "reddit": reddit}
    until = NOW + dt.timedelta(hours=2)
    bsky.add_reply(ref("bluesky", "s00"), "@a", "first", POSTED)
    sweeper(store, settings, adapters, budget={"bluesky": 1, "reddit": 1}).sweep(NOW)  # s00 kept with a reply
    assert bsky.reads == 1
    bsky.fail_next_read(RateLimited("bluesky", "429 RateLimitExceeded", until))
    passes = {p.platform: p for p in sweeper(store, settings, adapters).sweep(NOW + dt.timedelta(minutes=30))}
    assert bsky.reads == 2 and passes["bluesky"].requests == 1 and "rate limited" in passes["bluesky"].stopped
    assert passes["reddit"].requests > 1  # another platform reads on
    # later passes, by a new sweep object as after a restart: not one request before the time given
    for minutes in (60, 90, 119):
        restarted = sweeper(store, settings, adapters)
        (bsky_pass,) = [p for p in restarted.sweep(NOW + dt.timedelta(minutes=minutes)) if p.platform == "bluesky"]
        assert bsky.reads == 2 and bsky_pass.requests == 0 and "rate limited" in bsky_pass.stopped
    (bsky_pass,) = [p for p in sweeper(store, settings, adapters).sweep(until) if p.platform == "bluesky"]
    assert bsky.reads > 2 and bsky_pass.requests == bsky_pass.threads > 0 and "rate" not in bsky_pass.stopped
    kept = {(t.story_id, t.platform): t for t in threads(store)}
    assert kept["s00", "bluesky"].total == 1  # what was kept before the rate limit stays


def test_a_paused_or_rate_limited_platform_is_not_read(store, settings, many):
    bsky = FakeAdapter(FakeConfig("bluesky"))
    with store.session() as session:
        session.add(PlatformRow(name="bluesky", paused_reason="credentials refused", updated_at=NOW))
    (done,) = sweeper(store, settings, {"bluesky": bsky}).sweep(NOW)
    assert bsky.reads == 0 and "paused" in done.stopped
    with store.session() as session:
        row = session.get(PlatformRow, "bluesky")
        row.paused_reason, row.retry_at = None, NOW + dt.timedelta(minutes=5)
    sweeper(store, settings, {"bluesky": bsky}).sweep(NOW)
    assert bsky.reads == 0
    sweeper(store, settings, {"bluesky": bsky}).sweep(NOW + dt.timedelta(minutes=5))
    assert bsky.reads > 0


def test_refused_credentials_stop_the_pass_and_other_errors_only_their_thread(store, settings, many):
    bsky = FakeAdapter(FakeConfig("bluesky"))
    bsky.fail_next_read(AuthFailed("bluesky", "token expired"))
    (done,) = sweeper(store, settings, {"bluesky": bsky}).sweep(NOW)
    assert bsky.reads == 1 and "credentials" in done.stopped
    bsky.fail_next_read(Transient("bluesky", "502 bad gateway"))
    later = NOW + settings.conversation_every  # the next pass (one an interval)
    (done,) = ConversationSweep(store, settings, {"bluesky": bsky}, clock=lambda: later,
                                budget={"bluesky": 5}).sweep(later)
    assert done.requests == 5 and done.errors == 1 and done.threads == 4
    errors = [t for t in threads(store) if t.last_error]
    assert len(errors) == 2 and any("502" in (t.last_error or "") for t in errors)


def test_a_failing_sweep_is_logged_never_raised(store, settings, many, caplog):
    class Broken(FakeAdapter):
        def conversation(self, root, own, *, limit, max_requests=None):
            raise RuntimeError("a bug")

    sweep = sweeper(store, settings, {"bluesky": Broken(FakeConfig("bluesky"))})
    with pytest.raises(RuntimeError):
        sweep.tick(NOW)
    side_job("the conversation sweep", lambda: sweep.tick(NOW))  # as run and run --once call it
    assert "the conversation sweep failed; trying again at its next time" in caplog.text
    assert "RuntimeError: a bug" in caplog.text


def test_the_sweep_is_off_when_its_interval_is(store, make_settings, many):
    bsky = FakeAdapter(FakeConfig("bluesky"))
    assert sweeper(store, make_settings(conversation_every="off"), {"bluesky": bsky}).tick(NOW) == []
    assert bsky.reads == 0


# ---------------------------------------------------------------------------- seen, hidden


def test_marking_seen_keeps_replies_read_after_the_page_was_drawn_new(store, settings, many):
    bsky = FakeAdapter(FakeConfig("bluesky"))
    for i in range(3):
        bsky.add_reply(ref("bluesky", "s01"), "@a", f"r{i}", POSTED + dt.timedelta(minutes=i))
    sweep = sweeper(store, settings, {"bluesky": bsky}, budget={"bluesky": 100})
    sweep.sweep(NOW)
    (shown,) = threads(store, only_new=True)
    assert shown.new == 3 and all(shown.is_new(r) for r in shown.replies)
    bsky.add_reply(ref("bluesky", "s01"), "@b", "later", NOW + dt.timedelta(minutes=1))
    sweep.sweep(NOW + settings.conversation_every)
    assert mark_seen(store, [("s01", "bluesky", shown.total)], NOW + dt.timedelta(hours=1)) == 1
    (left,) = threads(store, only_new=True)
    assert left.new == 1 and left.total == 4
    mark_seen(store, [("s01", "bluesky", 4)], NOW + dt.timedelta(hours=2))
    assert threads(store, only_new=True) == []


def test_hiding_a_reply_hides_it_on_the_platform_and_in_what_is_kept(store, settings, many):
    bsky, reddit = FakeAdapter(FakeConfig("bluesky")), FakeAdapter(FakeConfig("reddit"))
    reply = bsky.add_reply(ref("bluesky", "s02"), "@troll", "spam", POSTED)
    other = reddit.add_reply(ref("reddit", "s02"), "u/troll", "spam", POSTED)
    sweeper(store, settings, {"bluesky": bsky, "reddit": reddit}, budget={"bluesky": 50, "reddit": 50}).sweep(NOW)
    changed = hide(store, bsky, "s02", "bluesky", reply.id)
    assert changed.hidden and bsky.hides == [("bluesky-s02", reply.id, True)]
    assert [t for t in threads(store, "s02") if t.platform == "bluesky"][0].replies[0].hidden
    hide(store, bsky, "s02", "bluesky", reply.id, hidden=False)
    assert not [t for t in threads(store, "s02") if t.platform == "bluesky"][0].replies[0].hidden
    with pytest.raises(BotError, match="does not let the author"):
        hide(store, reddit, "s02", "reddit", other.id)
    with pytest.raises(BotError, match="adapter cannot hide a reply yet"):
        hide(store, object(), "s02", "bluesky", reply.id)
    with pytest.raises(NotFound):
        hide(store, bsky, "s02", "bluesky", "not-a-kept-reply")
    with pytest.raises(NotFound, match="no story"):
        hide(store, bsky, "nope", "bluesky", reply.id)
    with pytest.raises(NotFound, match="no story"):
        threads(store, "nope")


def test_a_refused_hide_changes_nothing_kept(store, settings, many):
    bsky = FakeAdapter(FakeConfig("bluesky"))
    reply = bsky.add_reply(ref("bluesky", "s03"), "@troll", "spam", POSTED)
    sweeper(store, settings, {"bluesky": bsky}, budget={"bluesky": 50}).sweep(NOW)
    bsky.fail_next_read(Transient("bluesky", "503"))
    with pytest.raises(Transient):
        hide(store, bsky, "s03", "bluesky", reply.id)
    assert not threads(store, "s03")[0].replies[0].hidden


def test_the_sandbox_rehearses_replies_and_hides_them_on_x_and_bluesky_only(tmp_path):
    clock = lambda: NOW  # noqa: E731
    bsky = SandboxAdapter(SandboxConfig("bluesky", tmp_path / "t.jsonl"), clock=clock)
    mastodon = SandboxAdapter(SandboxConfig("mastodon", tmp_path / "t.jsonl"), clock=clock)
    root = PostRef("bluesky", "at://did:plc:sandbox/app.bsky.feed.post/abc", "")
    first = bsky.add_reply(root, "@a.bsky.social", "first", POSTED)
    second = bsky.add_reply(root, "@b.bsky.social", "second", POSTED + dt.timedelta(minutes=1))
    mastodon.add_reply(PostRef("mastodon", "1", ""), "@c@host", "elsewhere", POSTED)
    read = bsky.conversation(root, (), limit=1)
    assert read.total == 2 and [r.id for r in read.replies] == [second.id]
    bsky.hide_reply(root, first.id)
    assert [r.hidden for r in bsky.conversation(root, (), limit=5).replies] == [False, True]
    assert bsky.conversation(root, (PostRef("bluesky", second.id, ""),), limit=5).total == 1
    with pytest.raises(BotError, match="does not let"):
        mastodon.hide_reply(PostRef("mastodon", "1", ""), "x")


# ---------------------------------------------------------------------------- in the run loop


def test_every_runs_a_job_again_after_it_failed(store):
    calls = []
    stop = threading.Event()

    def job():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first run fails")
        if len(calls) >= 3:
            stop.set()

    thread = every(stop, dt.timedelta(milliseconds=10), job, "test-job")
    thread.join(timeout=10)
    assert not thread.is_alive() and len(calls) == 3 and thread.name == "test-job"


def test_the_run_loop_sweeps_the_conversations(store, settings, many, fakes, clock):
    clock["t"] = NOW
    engine = Engine(store, fakes, settings, clock=lambda: clock["t"], worker="test-worker")
    fakes["bluesky"].add_reply(ref("bluesky", "s04"), "@a", "hi", POSTED)
    sweep = ConversationSweep(store, settings, fakes, clock=lambda: clock["t"])
    with looping(engine, conversations=sweep):
        wait_for(lambda: any(t.total for t in threads(store)), 10)
    assert [t.story_id for t in threads(store) if t.total] == ["s04"]


def test_metrics_count_the_new_replies_per_platform(store, settings, many):
    from bot.metrics import exposition, registry

    bsky = FakeAdapter(FakeConfig("bluesky"))
    for sid in ("s01", "s02"):
        bsky.add_reply(ref("bluesky", sid), "@a", "hi", POSTED)
    sweeper(store, settings, {"bluesky": bsky}, budget={"bluesky": 50}).sweep(NOW)
    body = exposition(registry(store, settings, lambda: NOW))[0].decode()
    assert 'oneyearago_conversation_new_replies{platform="bluesky"} 2.0' in body
    read = body.split('oneyearago_conversation_read_timestamp_seconds{platform="bluesky"} ', 1)[1].split()[0]
    assert float(read) == NOW.timestamp()
    mark_seen(store, [("s01", "bluesky", 1)], NOW)
    body = exposition(registry(store, settings, lambda: NOW))[0].decode()
    assert 'oneyearago_conversation_new_replies{platform="bluesky"} 1.0' in body


def test_the_sweep_reads_with_adapters_of_its_own_where_a_client_must_not_serve_two_threads(tmp_path):
    """The sweep runs in its own thread beside the posting one: praw is not thread-safe and the X and Mastodon
    clients keep per-client state, so live X, Reddit and Mastodon get a reading adapter of their own;
    Bluesky's adapter (its session under a lock, its refresh token good once) is shared, as the sandbox's are."""
    from bot.config import load_settings
    from bot.wiring import SHARED_BETWEEN_THREADS, build_adapters, reading_adapters
    from posts.story import PLATFORMS

    values = {"mode": "live", "database_url": f"sqlite:///{tmp_path / 'q.db'}",
              "x_consumer_key": "k", "x_consumer_secret": "s", "x_access_token": "t", "x_access_token_secret": "u",
              "reddit_client_id": "i", "reddit_client_secret": "s", "reddit_username": "u", "reddit_password": "p",
              "reddit_subreddit": "test", "bluesky_handle": "bot.test", "bluesky_app_password": "a-b-c-d",
              "bluesky_session_file": str(tmp_path / "session.json"),
              "mastodon_api_base_url": "http://127.0.0.1:9", "mastodon_access_token": "t"}
    live = load_settings(values, environ={}, env_file=None)
    posting = build_adapters(live)
    reading = reading_adapters(live, posting)
    assert set(reading) == set(posting) == set(PLATFORMS)
    for platform, adapter in reading.items():
        assert (adapter is posting[platform]) == (platform in SHARED_BETWEEN_THREADS), platform
        assert type(adapter) is type(posting[platform])
    sandbox = load_settings({"database_url": values["database_url"]}, environ={}, env_file=None)
    posting = build_adapters(sandbox)
    assert all(a is posting[p] for p, a in reading_adapters(sandbox, posting).items())


def test_the_run_loop_waits_for_a_side_job_in_progress_before_it_returns(store, settings, fakes, clock):
    """A side job cut off mid-pass by the interpreter's exit (its threads are daemons) could leave a write half
    done or crash the process at shutdown: ``run_forever`` returns only once the pass under way has ended."""
    clock["t"] = NOW
    engine = Engine(store, fakes, settings, clock=lambda: clock["t"], worker="test-worker")
    started, finished = threading.Event(), threading.Event()

    class SlowSweep:
        enabled = True
        every = dt.timedelta(hours=1)

        def tick(self) -> None:
            started.set()
            time.sleep(1.5)
            finished.set()

    with looping(engine, conversations=SlowSweep()):
        assert started.wait(10)
    assert finished.is_set()


# ---------------------------------------------------------------------------- X, secrets, several workers


class XSearch(FakeAdapter):
    """Reads as X's recent search does: it never says which replies are hidden."""

    def conversation(self, root, own, *, limit, max_requests=None):
        import dataclasses

        read = super().conversation(root, own, limit=limit, max_requests=max_requests)
        return dataclasses.replace(read, replies=tuple(dataclasses.replace(r, hidden=False) for r in read.replies))


def test_a_reply_hidden_on_x_stays_marked_hidden_when_read_again(store, make_settings, planner):
    settings = make_settings(conversation_x="true")
    planner.load([timed("s1")], now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    post_roots(store, "x", ["s1"])
    x = XSearch(FakeConfig("x"))
    troll = x.add_reply(ref("x", "s1"), "@troll", "spam", POSTED)
    x.add_reply(ref("x", "s1"), "@fan", "nice", POSTED + dt.timedelta(minutes=1))
    sweep = sweeper(store, settings, {"x": x})
    sweep.sweep(NOW)
    hide(store, x, "s1", "x", troll.id)
    sweep.sweep(NOW + settings.conversation_every)
    assert x.reads == 2
    (kept,) = threads(store, "s1")
    assert {r.author: r.hidden for r in kept.replies} == {"@troll": True, "@fan": False}
    hide(store, x, "s1", "x", troll.id, hidden=False)  # shown again: stays shown
    sweep.sweep(NOW + 2 * settings.conversation_every)
    assert not any(r.hidden for r in threads(store, "s1")[0].replies)


def test_an_x_thread_is_read_only_while_the_recent_search_still_sees_its_replies(store, make_settings, planner):
    """X's recent search sees 7 days back: a read after that would find the older replies gone and lower
    the count, and X bills it; whatever ONEYEARAGO_CONVERSATION_DAYS says."""
    settings = make_settings(conversation_x="true", conversation_days=30)
    planner.load([timed("week"), timed("older", 1)], now=dt.datetime(2026, 1, 1, tzinfo=UTC))
    post_roots(store, "x", ["week"], at=NOW - dt.timedelta(days=6, hours=23))
    post_roots(store, "x", ["older"], at=NOW - dt.timedelta(days=7, hours=1))
    x = FakeAdapter(FakeConfig("x"))
    for sid in ("week", "older"):
        x.add_reply(ref("x", sid), "@fan", "hello", POSTED)
    sweeper(store, settings, {"x": x}).sweep(NOW)
    assert x.reads == 1 and [t.story_id for t in threads(store)] == ["week"]
    bsky = FakeAdapter(FakeConfig("bluesky"))  # other platforms: the days set
    post_roots(store, "bluesky", ["older"], at=NOW - dt.timedelta(days=20))
    sweeper(store, settings, {"bluesky": bsky}).sweep(NOW)
    assert bsky.reads == 1


def test_an_error_kept_with_a_thread_never_holds_a_secret(store, make_settings, many):
    settings = make_settings(mastodon_access_token="s3cr3t-app-token-XYZ")
    bsky = FakeAdapter(FakeConfig("bluesky"))
    bsky.fail_next_read(Transient("bluesky", "GET /context?access_token=s3cr3t-app-token-XYZ: 502"))
    sweeper(store, settings, {"bluesky": bsky}, budget={"bluesky": 1}).sweep(NOW)
    with store.session() as session:
        errors = [row.last_error for row in session.scalars(select(ConversationRow)) if row.last_error]
    assert len(errors) == 1 and "s3cr3t" not in errors[0] and "access_token=" in errors[0]


def test_with_several_workers_one_reads_so_the_budget_holds_for_the_queue(store, settings, many):
    from bot.models import WorkerRow

    with store.session() as session:
        for worker in ("host-a:1", "host-b:2"):
            session.add(WorkerRow(id=worker, host=worker.split(":")[0], pid=1, platforms="bluesky",
                                  started_at=NOW, heartbeat_at=NOW))
    reads = {}
    for worker in ("host-b:2", "host-a:1"):
        bsky = FakeAdapter(FakeConfig("bluesky"))
        ConversationSweep(store, settings, {"bluesky": bsky}, clock=lambda: NOW, budget={"bluesky": 10},
                          worker=worker).sweep(NOW)
        reads[worker] = bsky.reads
    assert reads == {"host-b:2": 0, "host-a:1": 10}
    later = NOW + settings.conversation_every
    with store.session() as session:  # host-a stopped: its heartbeat ages past the lease
        session.get(WorkerRow, "host-b:2").heartbeat_at = later
    bsky = FakeAdapter(FakeConfig("bluesky"))
    ConversationSweep(store, settings, {"bluesky": bsky}, clock=lambda: later, budget={"bluesky": 10},
                      worker="host-b:2").sweep(later)
    assert bsky.reads == 10


def test_a_pass_runs_once_an_interval_however_often_it_is_started(store, settings, many):
    """`run --once` from a timer starts a pass every minute: a platform read within the interval (less a
    tenth, for the scheduler's jitter) is not read again, so the budget is spent once an interval."""
    bsky = FakeAdapter(FakeConfig("bluesky"))
    reads = []
    for minutes in (0, 1, 2, 26, 27, 28):
        at = NOW + dt.timedelta(minutes=minutes)
        (done,) = ConversationSweep(store, settings, {"bluesky": bsky}, clock=lambda at=at: at,
                                    budget={"bluesky": 10}).sweep(at)
        reads.append(done.requests)
    assert settings.conversation_every == dt.timedelta(minutes=30)
    assert reads == [10, 0, 0, 0, 10, 0]
    assert "one an interval" in done.stopped


def test_workers_serving_different_platforms_each_read_their_own(store, settings, many):
    """The reader of a platform is chosen among the live workers that serve it: a worker of a smaller
    id serving only Reddit does not keep Bluesky's threads from being read by the worker serving it."""
    from bot.models import WorkerRow

    with store.session() as session:
        session.add(WorkerRow(id="host-a:1", host="host-a", pid=1, platforms="reddit",
                              started_at=NOW, heartbeat_at=NOW))
        session.add(WorkerRow(id="host-b:2", host="host-b", pid=2, platforms="bluesky,reddit",
                              started_at=NOW, heartbeat_at=NOW))
    reads = {}
    for worker, platforms in (("host-b:2", ("bluesky", "reddit")), ("host-a:1", ("reddit",))):
        fakes = {platform: FakeAdapter(FakeConfig(platform)) for platform in platforms}
        passes = ConversationSweep(store, settings, fakes, clock=lambda: NOW, budget=dict.fromkeys(platforms, 10),
                                   worker=worker).sweep(NOW)
        reads[worker] = {p.platform: fakes[p.platform].reads for p in passes}
    assert reads == {"host-b:2": {"bluesky": 10}, "host-a:1": {"reddit": 10}}


def test_a_hide_committed_while_a_read_is_being_kept_is_not_lost(store, settings, many):
    """On PostgreSQL a read kept while a hide of the same thread is being written waits for it (row lock)
    and keeps its mark (X cannot say what is hidden); without the lock the read wrote over the hide."""
    from adapters.base import Reply

    if store.is_sqlite:
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    sweep = sweeper(store, settings, {})
    root = PostRef("x", "x-s00", "https://x.example/s00", {})
    reply = Reply("r1", "@someone", "Still true a year on", NOW, "https://x.example/r1", parent_id="x-s00")
    sweep._keep("s00", root, NOW, 1, [reply], 1)
    newer = Reply("r2", "@another", "And a second reply", NOW, "https://x.example/r2", parent_id="x-s00")
    keeper = threading.Thread(target=sweep._keep, args=("s00", root, NOW + dt.timedelta(minutes=30), 2,
                                                        [newer, reply], 1))
    with store.session() as session:  # a hide being written: the row is locked and marked, not committed yet
        row = session.get(ConversationRow, ("s00", "x"), with_for_update=True)
        row.replies = [{**kept, "hidden": True} for kept in row.replies]
        session.flush()
        keeper.start()
        keeper.join(1.0)  # the read reaches the row meanwhile
    keeper.join(30)
    assert not keeper.is_alive()
    with store.session() as session:
        row = session.get(ConversationRow, ("s00", "x"))
        assert [(kept["id"], kept["hidden"]) for kept in row.replies] == [("r2", False), ("r1", True)]
        assert row.swept_at.replace(tzinfo=None) == (NOW + dt.timedelta(minutes=30)).replace(tzinfo=None)


def test_x_reads_stop_at_the_monthly_cap_and_start_again_the_next_month(store, make_settings, many, monkeypatch):
    """X caps the posts an app reads a month: the sweep counts its X requests per calendar month (UTC) in
    the queue and stops before the cap, whatever the interval, then reads again when the month turns."""
    from bot import conversation
    from bot.models import ReadCountRow

    settings = make_settings(conversation_x="true")
    monkeypatch.setitem(conversation.MONTHLY_READ_REQUESTS, "x", 25)
    post_roots(store, "x", many, at=NOW - dt.timedelta(days=1))
    x = FakeAdapter(FakeConfig("x"))
    read = []
    at = NOW
    for _ in range(4):
        (done,) = [p for p in ConversationSweep(store, settings, {"x": x}, clock=lambda at=at: at,
                                                budget={"x": 10}).sweep(at) if p.platform == "x"]
        read.append(done.requests)
        at += settings.conversation_every
    assert read == [10, 10, 5, 0] and "monthly read cap of 25 requests is reached" in done.stopped
    with store.session() as session:
        assert session.get(ReadCountRow, ("x", f"{NOW:%Y-%m}")).requests == 25
    month_on = NOW.replace(day=1) + dt.timedelta(days=32)
    post_roots(store, "x", many, at=month_on - dt.timedelta(days=1))
    (done,) = ConversationSweep(store, settings, {"x": x}, clock=lambda: month_on,
                                budget={"x": 10}).sweep(month_on)
    assert done.requests == 10


def test_the_months_first_count_made_by_two_readers_at_once_keeps_both(store, make_settings, many):
    """Two readers that each believe they lead (a worker's lease just lapsed) may both make the month's
    first count: the one whose insert loses adds its requests to the other's row, rather than failing the
    pass and losing them."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from bot.models import ReadCountRow

    settings = make_settings(conversation_x="true")
    post_roots(store, "x", many, at=NOW - dt.timedelta(days=1))
    month = f"{NOW:%Y-%m}"

    raced: list[bool] = []

    def the_other_reader_first(session, flush_context, instances):
        if not raced and any(isinstance(obj, ReadCountRow) for obj in session.new):
            raced.append(True)
            with store.engine.begin() as conn:
                conn.execute(ReadCountRow.__table__.insert().values(platform="x", month=month, requests=7))

    event.listen(Session, "before_flush", the_other_reader_first)
    try:
        (done,) = [p for p in ConversationSweep(store, settings, {"x": FakeAdapter(FakeConfig("x"))},
                                                clock=lambda: NOW, budget={"x": 10}).sweep(NOW) if p.platform == "x"]
    finally:
        event.remove(Session, "before_flush", the_other_reader_first)
    assert raced and done.requests == 10
    with store.session() as session:
        assert session.get(ReadCountRow, ("x", month)).requests == 17
