"""The engine on a simulated clock: threads, exactly once, failures, restarts, dry runs."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from adapters.base import Outgoing, ThreadState
from adapters.fake import FakeAdapter, FakeConfig
from bot.engine import Engine
from bot.models import AttemptRow, DeliveryRow, PlatformRow
from bot.planner import Planner
from bot.store import Store
from posts.errors import AuthFailed, Duplicate, OutcomeUnknown, RateLimited, Rejected, Transient
from tests.conftest import story

UTC = dt.UTC
ROOT_AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FOLLOW_AT = ROOT_AT + dt.timedelta(hours=6)


def rows(store: Store, **where: object) -> list[DeliveryRow]:
    with store.session() as session:
        stmt = select(DeliveryRow).order_by(DeliveryRow.platform, DeliveryRow.kind.desc(), DeliveryRow.part)
        for key, value in where.items():
            stmt = stmt.where(getattr(DeliveryRow, key) == value)
        return list(session.scalars(stmt))


def load(planner: Planner, *stories, now=dt.datetime(2026, 1, 1, tzinfo=UTC)):
    return planner.load(list(stories), now=now)


def at(engine: Engine, clock: dict, when: dt.datetime, **kw):
    clock["t"] = when
    return engine.run_once(when, **kw)


def timed(sid="s1", **fields):
    return story(sid, dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC), **fields)


def test_root_goes_out_at_its_anniversary_and_the_followup_replies_in_its_thread(planner, engine, fakes, clock, store):
    load(planner, timed())
    assert at(engine, clock, ROOT_AT - dt.timedelta(seconds=1)).events == []
    report = at(engine, clock, ROOT_AT)
    assert report.count("posted") == 4
    assert {p: len(f.posts) for p, f in fakes.items()} == {"x": 1, "reddit": 1, "bluesky": 1, "mastodon": 1}
    assert at(engine, clock, FOLLOW_AT - dt.timedelta(seconds=1)).events == []
    report = at(engine, clock, FOLLOW_AT)
    assert report.count("posted") == 4
    for fake in fakes.values():
        root, reply = fake.posts
        assert root.parent is None and root.post.kind == "root"
        assert reply.parent == root.ref and reply.root == root.ref and reply.post.kind == "followup"
    assert all(r.status == "posted" and r.remote_id for r in rows(store))


def test_followup_waits_for_its_root_even_when_due(planner, engine, fakes, clock, store):
    load(planner, timed())
    fakes["x"].fail_next(Rejected("x", "text not allowed"))
    at(engine, clock, ROOT_AT)
    report = at(engine, clock, FOLLOW_AT)
    assert sorted(e.platform for e in report.events if e.action == "posted") == ["bluesky", "mastodon", "reddit"]
    x_follow = rows(store, platform="x", kind="followup")[0]
    assert x_follow.status == "pending"
    assert len(fakes["x"].posts) == 0
    assert engine.next_wake(FOLLOW_AT) is None  # nothing eligible: no busy loop on the blocked reply


def test_long_followup_becomes_a_chain_of_parts_each_replying_to_the_previous(planner, engine, fakes, clock, store):
    reveal = " ".join(f"Sentence number {i} tells part of how things turned out." for i in range(12))
    load(planner, timed(one_year_later=reveal, platforms=("x",)))
    at(engine, clock, ROOT_AT)
    at(engine, clock, FOLLOW_AT)
    parts = rows(store, platform="x", kind="followup")
    assert len(parts) >= 3 and all(p.parts == len(parts) for p in parts)
    posts = fakes["x"].posts
    assert [p.post.part for p in posts[1:]] == list(range(1, len(parts) + 1))
    for previous, current in zip(posts, posts[1:], strict=False):
        assert current.parent == previous.ref
        assert current.root == posts[0].ref
    assert posts[1].post.payload["text"].endswith(f"1/{len(parts)}")


def test_running_again_at_the_same_time_posts_nothing_twice(planner, engine, fakes, clock):
    load(planner, timed())
    at(engine, clock, ROOT_AT)
    at(engine, clock, ROOT_AT)
    at(engine, clock, FOLLOW_AT)
    at(engine, clock, FOLLOW_AT + dt.timedelta(minutes=1))
    assert all(len(f.posts) == 2 for f in fakes.values())


def test_intent_is_committed_before_the_platform_is_called(planner, store, settings, clock):
    load(planner, timed(platforms=("bluesky",)))
    seen = {}

    class Spy(FakeAdapter):
        def publish(self, post):
            with store.session() as session:
                row = session.scalar(select(DeliveryRow).where(DeliveryRow.kind == "root"))
                attempt = session.scalar(select(AttemptRow))
                seen.update(status=row.status, attempts=row.attempts, payload=row.payload, key=row.key,
                            attempt=(attempt.number, attempt.outcome, attempt.payload))
            return super().publish(post)

    spy = Spy(FakeConfig("bluesky"))
    engine = Engine(store, {"bluesky": spy}, settings, clock=lambda: clock["t"], worker="w")
    at(engine, clock, ROOT_AT)
    assert seen["status"] == "sending" and seen["attempts"] == 1
    assert seen["payload"]["createdAt"] == "2026-03-01T12:00:00.000Z"
    assert seen["attempt"] == (1, "sending", seen["payload"])
    assert spy.posts[0].post.key == seen["key"] and spy.posts[0].post.payload == seen["payload"]


def test_a_restart_after_a_crash_mid_send_finds_the_post_instead_of_resending(planner, store, settings, clock):
    load(planner, timed(platforms=("x",)))
    fake = FakeAdapter(FakeConfig("x"))
    crashed = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="w1")
    clock["t"] = ROOT_AT
    claim = crashed.claim("x", ROOT_AT)  # intent committed...
    fake.publish(claim.post)  # ...the platform took it, then the process died
    assert rows(store, kind="root")[0].status == "sending"
    restarted = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="w2")
    report = restarted.reconcile(ROOT_AT, all_sending=True)
    assert report.count("posted") == 1
    restarted.run_once(ROOT_AT)
    assert len(fake.posts) == 1
    assert rows(store, kind="root")[0].remote_id == fake.posts[0].ref.id


def test_not_found_right_after_a_crash_is_not_trusted_until_the_attempt_has_settled(planner, store, settings,
                                                                                      clock):
    """A platform may finish a request after the client died: look again once it would have landed."""
    load(planner, timed(platforms=("x",)))
    fake = FakeAdapter(FakeConfig("x"))
    clock["t"] = ROOT_AT
    Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="w1").claim("x", ROOT_AT)
    restarted = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="w2")
    clock["t"] = ROOT_AT + dt.timedelta(seconds=5)
    restarted.run_once(clock["t"])
    assert fake.posts == [] and rows(store, kind="root")[0].status == "sending"
    fake.publish(Outgoing("x", "s1", "root", 1, rows(store, kind="root")[0].payload, rows(store, kind="root")[0].key))
    clock["t"] = ROOT_AT + settings.settle + dt.timedelta(seconds=1)  # the slow request landed meanwhile
    restarted.run_once(clock["t"])
    assert len(fake.posts) == 1 and rows(store, kind="root")[0].status == "posted"


def test_a_restart_after_a_crash_before_sending_sends_it_once(planner, store, settings, clock):
    load(planner, timed(platforms=("x",)))
    fake = FakeAdapter(FakeConfig("x"))
    crashed = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="w1")
    crashed.claim("x", ROOT_AT)  # died before the network call
    restarted = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="w2")
    clock["t"] = ROOT_AT + settings.settle
    restarted.reconcile(clock["t"], all_sending=True)
    restarted.run_once(clock["t"])
    assert len(fake.posts) == 1
    assert rows(store, kind="root")[0].status == "posted"


def test_a_lapsed_claim_is_reconciled_but_a_live_one_is_left_alone(planner, store, settings, clock):
    load(planner, timed(platforms=("x",)))
    fake = FakeAdapter(FakeConfig("x"))
    other = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="other")
    clock["t"] = ROOT_AT
    other.claim("x", ROOT_AT)
    me = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="me")
    assert me.reconcile(ROOT_AT + dt.timedelta(minutes=1)).events == []
    assert rows(store, kind="root")[0].status == "sending"
    clock["t"] = ROOT_AT + dt.timedelta(minutes=6)
    assert me.reconcile(clock["t"]).count("reconciled") == 1


def test_rate_limit_makes_the_platform_wait_and_the_others_go_on(planner, engine, fakes, clock, store):
    load(planner, timed("a"), timed("b"))
    until = ROOT_AT + dt.timedelta(minutes=15)
    fakes["x"].fail_next(RateLimited("x", "429 Too Many Requests", until))
    report = at(engine, clock, ROOT_AT)
    assert report.count("rate-limited") == 1
    assert len(fakes["x"].posts) == 0 and len(fakes["reddit"].posts) == 2 and len(fakes["bluesky"].posts) == 2
    calls = len(fakes["x"].calls)
    at(engine, clock, until - dt.timedelta(seconds=1))
    assert len(fakes["x"].calls) == calls  # nothing sent to X before the time it gave
    assert engine.next_wake(ROOT_AT) == until
    at(engine, clock, until)
    assert len(fakes["x"].posts) == 1  # the two late posts drain at the backlog pace...
    at(engine, clock, until + engine.settings.backlog_pace)
    assert len(fakes["x"].posts) == 2  # ...not as a burst
    assert all(r.attempts == 1 for r in rows(store, platform="x", kind="root"))


def test_authentication_failure_pauses_that_platform_only(planner, engine, fakes, clock, store):
    load(planner, timed())
    fakes["reddit"].fail_next(AuthFailed("reddit", "401 invalid_grant"))
    report = at(engine, clock, ROOT_AT)
    assert report.count("paused") == 1 and report.count("posted") == 3
    with store.session() as session:
        assert "invalid_grant" in session.get(PlatformRow, "reddit").paused_reason
    at(engine, clock, ROOT_AT + dt.timedelta(hours=1))
    assert len(fakes["reddit"].posts) == 0
    assert rows(store, platform="reddit", kind="root")[0].status == "pending"


def test_transient_errors_back_off_then_fail_after_the_last_attempt(planner, store, make_settings, clock):
    settings = make_settings(max_attempts=3, backoff="1m")
    Planner(store, settings).load([timed(platforms=("x",))], now=ROOT_AT)
    fake = FakeAdapter(FakeConfig("x"))
    engine = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="w")
    for _ in range(3):
        fake.fail_next(Transient("x", "503 Service Unavailable"))
    at(engine, clock, ROOT_AT)
    first = rows(store, kind="root")[0]
    assert first.status == "pending" and first.attempts == 1
    assert ROOT_AT + dt.timedelta(seconds=30) <= first.not_before <= ROOT_AT + dt.timedelta(minutes=1)
    at(engine, clock, first.not_before)
    second = rows(store, kind="root")[0]
    assert second.attempts == 2
    assert first.not_before + dt.timedelta(minutes=1) <= second.not_before <= first.not_before + dt.timedelta(minutes=2)
    at(engine, clock, second.not_before)
    last = rows(store, kind="root")[0]
    assert last.status == "failed" and "gave up after 3 attempts: 503" in last.last_error
    assert fake.posts == []


def test_rejected_post_fails_at_once_with_the_platform_reason(planner, engine, fakes, clock, store):
    load(planner, timed())
    fakes["bluesky"].fail_next(Rejected("bluesky", "Invalid record: text too long"))
    at(engine, clock, ROOT_AT)
    row = rows(store, platform="bluesky", kind="root")[0]
    assert row.status == "failed" and "text too long" in row.last_error and row.attempts == 1


def test_a_lost_response_is_looked_up_and_not_posted_twice(planner, engine, fakes, clock, store):
    load(planner, timed())
    fakes["x"].land_then_fail(OutcomeUnknown("x", "read timeout after sending"))
    at(engine, clock, ROOT_AT)
    assert len(fakes["x"].posts) == 1
    row = rows(store, platform="x", kind="root")[0]
    assert row.status == "posted" and row.remote_id == fakes["x"].posts[0].ref.id


def test_an_unknown_outcome_that_cannot_be_looked_up_is_unconfirmed_and_never_resent(planner, engine, fakes,
                                                                                    clock, store):
    load(planner, timed())
    from bot.engine import LOOKUPS

    fakes["x"].fail_next(OutcomeUnknown("x", "connection dropped"))
    fakes["x"].find_error = Transient("x", "503 on lookup")
    at(engine, clock, ROOT_AT)
    row = rows(store, platform="x", kind="root")[0]
    assert row.status == "sending" and "looking again" in row.last_error  # not resent, looked up again later
    for hour in range(1, LOOKUPS + 2):
        at(engine, clock, ROOT_AT + dt.timedelta(hours=hour))
    row = rows(store, platform="x", kind="root")[0]
    assert row.status == "unconfirmed" and "looking it up failed: 503 on lookup" in row.last_error
    assert fakes["x"].calls.count("publish") == 1 and fakes["x"].calls.count("find") == LOOKUPS


def test_a_lookup_that_works_later_settles_the_post_without_resending(planner, engine, fakes, clock, store):
    load(planner, timed())
    fakes["x"].land_then_fail(OutcomeUnknown("x", "read timeout"))
    fakes["x"].find_error = Transient("x", "503 on lookup")
    at(engine, clock, ROOT_AT)
    fakes["x"].find_error = None
    at(engine, clock, ROOT_AT + dt.timedelta(minutes=30))
    row = rows(store, platform="x", kind="root")[0]
    assert row.status == "posted" and len(fakes["x"].posts) == 1


def test_duplicate_rejection_that_is_not_among_our_posts_becomes_unconfirmed(planner, engine, fakes, clock, store):
    load(planner, timed())
    fakes["x"].fail_next(Duplicate("x", "You are not allowed to create a Tweet with duplicate content."))
    at(engine, clock, ROOT_AT)
    assert rows(store, platform="x", kind="root")[0].status == "unconfirmed"


def test_root_too_late_is_missed_and_retry_posts_it_with_its_followup_shifted(planner, engine, fakes, clock,
                                                                               store, settings):
    from bot import ops

    load(planner, timed(platforms=("x",)))
    late = ROOT_AT + dt.timedelta(hours=2, minutes=1)
    report = at(engine, clock, late)
    assert report.count("missed") == 1 and fakes["x"].posts == []
    root = rows(store, kind="root")[0]
    assert root.status == "missed" and "grace" in root.last_error
    ops.retry(store, "s1", late, settings)
    at(engine, clock, late)
    assert len(fakes["x"].posts) == 1
    follow = rows(store, kind="followup")[0]
    assert follow.due_at == late + dt.timedelta(hours=6)


def test_root_within_grace_still_goes_out(planner, engine, fakes, clock):
    load(planner, timed(platforms=("x",)))
    at(engine, clock, ROOT_AT + dt.timedelta(hours=1, minutes=59))
    assert len(fakes["x"].posts) == 1


def test_followup_is_skipped_when_its_root_was_deleted(planner, engine, fakes, clock, store):
    reveal = " ".join(f"Sentence number {i} tells part of how things turned out." for i in range(12))
    load(planner, timed(platforms=("x",), one_year_later=reveal))
    at(engine, clock, ROOT_AT)
    fakes["x"].states[fakes["x"].posts[0].ref.id] = ThreadState.GONE
    report = at(engine, clock, FOLLOW_AT)
    assert report.count("skipped") == 1
    assert all(r.status == "skipped" and "deleted" in r.last_error for r in rows(store, kind="followup"))
    assert len(fakes["x"].posts) == 1


def test_dry_run_changes_nothing_and_lists_what_would_go_out(store, make_settings, fakes, clock):
    # no backlog pace: the sweep an hour late sends the roots and then the replies that follow them
    settings = make_settings(backlog_pace="0s")
    planner, engine = Planner(store, settings), Engine(store, fakes, settings, clock=lambda: clock["t"], worker="w")
    load(planner, timed(followup_after=dt.timedelta(minutes=30)))
    before = [(r.id, r.status, r.attempts, r.updated_at) for r in rows(store)]
    report = at(engine, clock, ROOT_AT + dt.timedelta(hours=1), dry_run=True)
    assert report.count("would-post") == 8  # roots, then the replies that would follow them
    assert [(r.id, r.status, r.attempts, r.updated_at) for r in rows(store)] == before
    assert all(f.calls == [] for f in fakes.values())


def _listed(report, action: str) -> list[tuple[int, str, str, int]]:
    return sorted((e.delivery_id, e.platform, e.kind, e.part) for e in report.events if e.action == action)


@pytest.mark.parametrize("pace", ["0s", "10s"])
def test_dry_run_lists_exactly_what_the_sweep_then_sends(store, make_settings, clock, pace):
    """Held by a quota, by the backlog pace, a reply whose root is not due again yet (backoff), a reply
    whose root would go out in the same sweep, a root past its grace period: the dry run says what the
    sweep then does."""
    settings = make_settings(quota_x_24h=100, quota_x_15m=2, platforms="x,reddit", backlog_pace=pace,
                             grace="2h", backoff="10m")
    planner = Planner(store, settings)
    load(planner, *[timed(f"s{i}", followup_after=dt.timedelta(minutes=1)) for i in range(3)],
         timed("retried", followup_after=dt.timedelta(minutes=1)),
         story("gone", dt.datetime(2025, 3, 1, 9, 0, tzinfo=UTC)))
    fakes = {p: FakeAdapter(FakeConfig(p)) for p in ("x", "reddit")}
    engine = Engine(store, fakes, settings, clock=lambda: clock["t"], worker="w")
    with store.session() as session:  # the first attempt at one root failed: it is due again in 10 minutes
        root = session.scalar(select(DeliveryRow).where(DeliveryRow.story_id == "retried",
                                                        DeliveryRow.platform == "reddit", DeliveryRow.kind == "root"))
        root.not_before = ROOT_AT + dt.timedelta(minutes=10)
    now = ROOT_AT + dt.timedelta(minutes=5)
    dry = at(engine, clock, now, dry_run=True)
    assert all(f.calls == [] for f in fakes.values())
    real = at(engine, clock, now)
    assert _listed(dry, "would-post") == _listed(real, "posted") != []
    assert _listed(dry, "would-defer") == _listed(real, "deferred") != []
    assert _listed(dry, "missed") == _listed(real, "missed") != []
    sent = {(p.post.story_id, p.post.platform, p.post.kind) for f in fakes.values() for p in f.posts}
    assert not {("retried", "reddit", "root"), ("retried", "reddit", "followup")} & sent
    if pace == "0s":
        assert len([s for s in sent if s[1] == "x"]) == 2  # the 15-minute quota holds the rest of X back
        assert ("s0", "reddit", "followup") in sent  # the reply follows its root in the same sweep


def test_next_wake_is_the_next_due_time(planner, engine, clock):
    assert engine.next_wake(ROOT_AT) is None
    load(planner, timed())
    assert engine.next_wake(dt.datetime(2026, 1, 1, tzinfo=UTC)) == ROOT_AT
    at(engine, clock, ROOT_AT)
    assert engine.next_wake(ROOT_AT) == FOLLOW_AT


def test_backoff_grows_exponentially_with_jitter(engine):
    delays = [engine.backoff(n).total_seconds() for n in range(1, 6)]
    base = engine.settings.backoff.total_seconds()
    for n, delay in enumerate(delays, start=1):
        assert base * 2 ** (n - 1) / 2 <= delay < base * 2 ** (n - 1)


@pytest.mark.parametrize("platform", ["x", "reddit", "bluesky"])
def test_each_platform_gets_the_payload_rendering_produced(planner, engine, fakes, clock, store, platform):
    load(planner, timed())
    at(engine, clock, ROOT_AT)
    row = rows(store, platform=platform, kind="root")[0]
    sent = fakes[platform].posts[0].post
    assert sent.payload == row.payload and sent.key == row.key


def test_a_quota_spreads_posts_instead_of_exceeding_it(store, make_settings, clock):
    settings = make_settings(quota_x_24h=100, quota_x_15m=2, platforms="x", backlog_pace="0s")
    Planner(store, settings).load([timed(f"s{i}", one_year_later="") for i in range(5)], now=ROOT_AT)
    fake = FakeAdapter(FakeConfig("x"))
    engine = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="w")
    report = at(engine, clock, ROOT_AT)
    assert len(fake.posts) == 2 and report.count("deferred") == 1
    held = [r for r in rows(store) if r.status == "pending"]
    assert len(held) == 3 and all(r.due_at == ROOT_AT + dt.timedelta(minutes=15) for r in held)
    assert "quota of 2 posts per 15m" in held[0].last_error
    at(engine, clock, ROOT_AT + dt.timedelta(minutes=15))
    assert len(fake.posts) == 4
    at(engine, clock, ROOT_AT + dt.timedelta(minutes=30))
    assert len(fake.posts) == 5 and all(r.status == "posted" for r in rows(store))


def test_the_daily_quota_counts_posts_of_the_last_24_hours(store, make_settings, clock):
    settings = make_settings(quota_x_24h=1, quota_x_15m=0, platforms="x")
    planner = Planner(store, settings)
    planner.load([timed("a", one_year_later=""),
                  story("b", dt.datetime(2025, 3, 1, 20, 0, tzinfo=UTC), one_year_later="")], now=ROOT_AT)
    fake = FakeAdapter(FakeConfig("x"))
    engine = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="w")
    at(engine, clock, ROOT_AT)
    at(engine, clock, ROOT_AT + dt.timedelta(hours=8))
    assert len(fake.posts) == 1
    assert rows(store, story_id="b")[0].due_at == ROOT_AT + dt.timedelta(hours=24)


def test_a_backlog_after_downtime_drains_at_a_steady_pace(store, make_settings, clock):
    settings = make_settings(backlog_pace="30s", platforms="x", quota_x_15m=0)
    Planner(store, settings).load([timed(f"s{i}", one_year_later="") for i in range(4)], now=ROOT_AT)
    fake = FakeAdapter(FakeConfig("x"))
    engine = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="w")
    back = ROOT_AT + dt.timedelta(minutes=30)  # the bot was down for half an hour
    for step in range(4):
        at(engine, clock, back + step * dt.timedelta(seconds=30))
        assert len(fake.posts) == step + 1


def test_before_giving_up_the_engine_looks_for_a_post_that_landed_late(store, make_settings, clock):
    settings = make_settings(max_attempts=1)
    Planner(store, settings).load([timed(platforms=("x",), one_year_later="")], now=ROOT_AT)
    fake = FakeAdapter(FakeConfig("x"))
    engine = Engine(store, {"x": fake}, settings, clock=lambda: clock["t"], worker="w")
    fake.land_then_fail(Transient("x", "503, and the slow create finished after all"))
    at(engine, clock, ROOT_AT)
    row = rows(store)[0]
    assert row.status == "posted" and row.remote_id == fake.posts[0].ref.id


def test_a_delivery_waiting_to_be_looked_up_again_holds_no_lease_but_a_time_to_look_again(planner, engine, fakes,
                                                                                          clock, store):
    """``claimed_until`` is only ever a lease; the time to look an unknown outcome up again has its own column."""
    load(planner, timed(platforms=("x",)))
    fakes["x"].fail_next(OutcomeUnknown("x", "timed out"))
    at(engine, clock, ROOT_AT)
    [row] = rows(store, kind="root", platform="x")
    assert (row.status, row.claimed_by, row.claimed_until) == ("sending", None, None)
    assert row.look_again_at == ROOT_AT + engine.settings.settle
    engine.heartbeat()  # renews leases, and there is none here
    [row] = rows(store, kind="root", platform="x")
    assert row.claimed_until is None and row.look_again_at == ROOT_AT + engine.settings.settle
    assert engine.reconcile(ROOT_AT + engine.settings.settle - dt.timedelta(seconds=1)).events == []
    clock["t"] = ROOT_AT + engine.settings.settle + dt.timedelta(seconds=1)
    report = engine.reconcile(clock["t"])
    assert report.count("retry-later") == 1  # certainly absent: the attempt failed, retried after a backoff
    [row] = rows(store, kind="root", platform="x")
    assert (row.status, row.claimed_until, row.look_again_at) == ("pending", None, None)
    assert row.not_before is not None and row.not_before.replace(tzinfo=dt.UTC) > clock["t"]


def test_a_send_whose_outcome_is_never_known_and_never_lands_gives_up_after_max_attempts(planner, engine, fakes,
                                                                                        clock, store):
    """Each attempt times out and the post is certainly absent once it could have settled: that is a
    failed attempt, retried with a backoff, and given up after ONEYEARAGO_MAX_ATTEMPTS, never resent
    at once for ever."""
    load(planner, timed(platforms=("x",)))
    t = ROOT_AT
    for _ in range(engine.settings.max_attempts * 4):
        fakes["x"].fail_next(OutcomeUnknown("x", "timed out"))
        at(engine, clock, t)
        [row] = rows(store, kind="root", platform="x")
        if row.status not in ("pending", "sending"):
            break
        t = t + engine.settings.settle + dt.timedelta(minutes=5)  # past settling and the backoff so far
    fakes["x"]._failures.clear()
    assert row.status == "failed" and row.attempts == engine.settings.max_attempts
    assert fakes["x"].posts == []


def test_an_attempt_the_platform_turned_away_gives_its_number_to_the_next(planner, engine, fakes, clock, store):
    load(planner, timed(platforms=("x",)))
    until = ROOT_AT + dt.timedelta(minutes=15)
    fakes["x"].fail_next(RateLimited("x", "429 Too Many Requests", until))
    at(engine, clock, ROOT_AT)
    [row] = rows(store, kind="root", platform="x")
    assert (row.status, row.attempts) == ("pending", 1)  # never decremented: the claim set it once
    fakes["x"].fail_next(Transient("x", "503"))
    at(engine, clock, until)
    at(engine, clock, until + dt.timedelta(hours=1))
    with store.session() as session:
        log = [(a.number, a.outcome) for a in session.scalars(select(AttemptRow).order_by(AttemptRow.id))]
    assert log == [(1, "rate-limited"), (1, "transient"), (2, "posted")]
    assert rows(store, kind="root", platform="x")[0].attempts == 2


def test_a_root_claimed_after_the_missed_check_read_it_is_left_to_its_send(planner, engine, fakes, clock, store):
    """Housekeeping reads the roots past their grace, then marks them. A sweep that began earlier (its time
    still within the root's grace), or another worker, may claim one in between: it goes out, and must
    neither be reported missed nor have its status overwritten."""
    from sqlalchemy import event, update

    load(planner, timed(platforms=("x",)), timed("s2", platforms=("x",)))
    late = ROOT_AT + dt.timedelta(hours=2, minutes=1)
    claimed = rows(store, story_id="s1", kind="root")[0].id
    fired: list[bool] = []

    @event.listens_for(store.engine, "after_cursor_execute")
    def claim_in_between(conn, cursor, statement, *args):
        if not fired and statement.lstrip().upper().startswith("SELECT") and "deliveries.status" in statement \
                and "deliveries.kind" in statement and "ORDER BY deliveries.due_at" in statement:
            fired.append(True)
            with store.engine.connect() as other, other.begin():  # another connection: a claim that commits
                other.execute(update(DeliveryRow).where(DeliveryRow.id == claimed)
                              .values(status="sending", claimed_by="earlier-sweep"))

    try:
        marked = engine.transitions.mark_missed(late, ["x"])
    finally:
        event.remove(store.engine, "after_cursor_execute", claim_in_between)
    assert fired
    assert [r.story_id for r in marked] == ["s2"]
    assert {r.story_id: r.status for r in rows(store, kind="root")} == {"s1": "sending", "s2": "missed"}
