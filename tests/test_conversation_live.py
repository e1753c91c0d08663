"""The conversation sweep driving the real adapters against the stand-ins, counting what they received.

X: the real tweepy against the stateful stand-in (tests/standins/x.py, served on 127.0.0.1) and the recorded
hide-reply exchange (tests/data/x/test_client_hide_and_unhide_reply.yaml); Reddit: the real praw against
tests/standins/reddit.py; Mastodon: the real Mastodon.py against ``mastodon-mock``, behind a counting loopback
proxy (the mock keeps no log of its requests). The sweep runs on a simulated clock that starts at the real
time (Mastodon dates its statuses by the real clock); the X stand-in shares that clock, so it can itself tell
a request that came before the reset a 429 named (``violations``).
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
import yaml
from sqlalchemy import select
from starlette.testclient import TestClient

from adapters.base import Outgoing, PostRef
from adapters.mastodon import MastodonAdapter
from adapters.reddit import RedditAdapter
from adapters.x import TWEEPY_HOST, XAdapter
from bot.config import Settings, load_settings
from bot.conversation import REQUEST_BUDGET, ConversationSweep, PlatformPass, threads
from bot.models import ConversationRow, DeliveryRow
from bot.planner import Planner
from bot.store import Store
from bot.wiring import mastodon_config, reddit_config, x_config
from tests.adapters.mastodon_fixtures import mastodon_mock, mastodon_server, mastodon_settings  # noqa: F401
from tests.adapters.reddit_fixtures import reddit_settings
from tests.adapters.x_fixtures import CREDENTIALS, x_settings
from tests.conftest import story
from tests.standins.bluesky_proxy import FaultProxy
from tests.standins.mastodon import OTHER, OTHER_TOKEN, MastodonMock
from tests.standins.reddit import RedditStandin
from tests.standins.x import XStandin

UTC = dt.UTC
DATA = Path(__file__).parent / "data" / "x"
SEARCH = "GET /2/tweets/search/recent"
ALICE = {"id": "2244994945", "username": "alice", "name": "Alice"}
BOB = {"id": "783214", "username": "bob", "name": "Bob"}
RECORDED_REPLY = "1344794616005066752"
"""The reply hidden and shown again in the recorded exchange."""


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: what is counted here is the platforms' requests, not the database's."""
    return f"sqlite:///{tmp_path / 'queue.db'}"


@pytest.fixture
def sim() -> dict[str, dt.datetime]:
    """The simulated clock, started at the real time to the second."""
    return {"t": dt.datetime.now(UTC).replace(microsecond=0)}


# ---------------------------------------------------------------------------- the platforms


class Live(abc.ABC):
    """One platform's real adapter against its stand-in: post threads, add others' replies, count requests."""

    platform = ""

    def __init__(self, sim: dict[str, dt.datetime]):
        self.sim = sim
        self.poster: Any = None

    def clock(self) -> dt.datetime:
        return self.sim["t"]

    @abc.abstractmethod
    def adapter(self) -> Any:
        """A new adapter, as a restart would make it (no login or account kept)."""

    @abc.abstractmethod
    def start_counting(self) -> None:
        """Count the stand-in's requests from now on (the posting before is not reading)."""

    @abc.abstractmethod
    def received(self) -> int:
        """How many requests the stand-in received from the adapters since counting started."""

    @abc.abstractmethod
    def root(self, sid: str) -> Outgoing: ...

    @abc.abstractmethod
    def followup(self, sid: str, parent: PostRef) -> Outgoing: ...

    @abc.abstractmethod
    def add_reply(self, root: PostRef, parent_id: str, author: str, text: str, at: dt.datetime) -> dict[str, str]:
        """Someone else replies under ``parent_id`` in ``root``'s thread: ``{"id", "author", "url"}`` as kept."""

    @abc.abstractmethod
    def limit_reads(self, seconds: int) -> None:
        """The next read is answered 429, with headers naming a reset ``seconds`` from now."""

    @abc.abstractmethod
    def stop(self) -> None: ...

    def post_thread(self, sid: str) -> tuple[PostRef, PostRef]:
        """The bot's root and follow-up, posted by the real adapter (requests not counted as reads)."""
        top = self.poster.publish(self.root(sid))
        return top, self.poster.reply(self.followup(sid, top))


class LiveX(Live):
    platform = "x"

    def __init__(self, sim: dict[str, dt.datetime], tmp_path: Path):
        super().__init__(sim)
        self.standin = XStandin(clock=lambda: self.sim["t"].timestamp(), credentials=CREDENTIALS)
        self.url = self.standin.serve()
        self.settings = x_settings(tmp_path, x_api_url=self.url)
        self.poster = self.adapter()
        self._counted_from = 0

    def adapter(self) -> XAdapter:
        return XAdapter(x_config(self.settings), clock=self.clock)

    def start_counting(self) -> None:
        self._counted_from = len(self.standin.requests)

    def received(self) -> int:
        return len(self.standin.requests) - self._counted_from

    def root(self, sid: str) -> Outgoing:
        return Outgoing("x", sid, "root", 1, {"text": f"A year ago today: {sid}"}, None)

    def followup(self, sid: str, parent: PostRef) -> Outgoing:
        return Outgoing("x", sid, "followup", 1, {"text": f"One year later: {sid}"}, None, parent, parent)

    def add_reply(self, root: PostRef, parent_id: str, author: str, text: str, at: dt.datetime) -> dict[str, str]:
        user = {"alice": ALICE, "bob": BOB}[author]
        tweet = self.standin.add_tweet(text, reply_to=parent_id, author=user, at=at.timestamp())
        return {"id": tweet.id, "author": f"@{author}", "url": f"https://x.com/{author}/status/{tweet.id}"}

    def limit_reads(self, seconds: int) -> None:
        self.standin.rate_limit_next(SEARCH, reset=self.sim["t"].timestamp() + seconds)

    def stop(self) -> None:
        self.standin.stop()


class LiveReddit(Live):
    platform = "reddit"

    def __init__(self, sim: dict[str, dt.datetime]):
        super().__init__(sim)
        self.standin = RedditStandin()  # its tokens expire by the real clock, as praw's do
        self.url = self.standin.serve()
        self.poster = self.adapter()
        self._counted_from = 0

    def adapter(self) -> RedditAdapter:
        return RedditAdapter(reddit_config(reddit_settings(self.standin, self.url)), clock=self.clock)

    def start_counting(self) -> None:
        self._counted_from = len(self.standin.requests)

    def received(self) -> int:
        return len(self.standin.requests) - self._counted_from

    def root(self, sid: str) -> Outgoing:
        return Outgoing("reddit", sid, "root", 1, {"title": f"A year ago today: {sid}", "selftext": "The story"}, None)

    def followup(self, sid: str, parent: PostRef) -> Outgoing:
        return Outgoing("reddit", sid, "followup", 1, {"text": f"One year later: {sid}"}, None, parent, parent)

    def add_reply(self, root: PostRef, parent_id: str, author: str, text: str, at: dt.datetime) -> dict[str, str]:
        parent = parent_id if parent_id.startswith(("t1_", "t3_")) else (
            f"t1_{parent_id}" if parent_id in self.standin.comments else f"t3_{parent_id}")
        comment = self.standin.add_comment(parent, text, author=author, created=at.timestamp())
        return {"id": comment["name"], "author": f"u/{author}", "url": f"{self.url}{comment['permalink']}"}

    def limit_reads(self, seconds: int) -> None:
        self.standin.too_many_requests_next("submission", retry_after=None, reset=seconds)

    def stop(self) -> None:
        self.standin.stop()


class LiveMastodon(Live):
    platform = "mastodon"

    def __init__(self, sim: dict[str, dt.datetime], tmp_path: Path, server: MastodonMock):
        super().__init__(sim)
        self.server = server
        self.proxy = FaultProxy(server.url).serve()  # counts what the adapters send; forwards all of it
        self.settings = mastodon_settings(tmp_path, self.proxy.url)
        self.poster = self.adapter()
        self._counted_from = 0

    def adapter(self) -> MastodonAdapter:
        return MastodonAdapter(mastodon_config(self.settings), clock=self.clock)

    def start_counting(self) -> None:
        self._counted_from = len(self.proxy.log)

    def received(self) -> int:
        return len(self.proxy.log) - self._counted_from

    def root(self, sid: str) -> Outgoing:
        return Outgoing("mastodon", sid, "root", 1, {"status": f"A year ago today: {sid}", "language": "en"},
                        f"root-{sid}")

    def followup(self, sid: str, parent: PostRef) -> Outgoing:
        return Outgoing("mastodon", sid, "followup", 1, {"status": f"One year later: {sid}", "language": "en"},
                        f"followup-{sid}", parent, parent)

    def add_reply(self, root: PostRef, parent_id: str, author: str, text: str, at: dt.datetime) -> dict[str, str]:
        status = self.server.post_as(OTHER_TOKEN, text, in_reply_to_id=parent_id)  # dated by the real clock
        return {"id": str(status["id"]), "author": f"@{OTHER}@{self.proxy.url.split('://', 1)[1]}",
                "url": str(status["url"])}

    def limit_reads(self, seconds: int) -> None:
        real = dt.datetime.now(UTC)  # the reset as Mastodon gives it: ISO 8601, on the server's clock (its Date)
        reset = (real + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
        self.server.fault("/api/v1/statuses/*/context", {"type": "ratelimit", "headers": {
            "X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}},
            methods=("GET",))

    def stop(self) -> None:
        self.proxy.stop()


PLATFORM_PARAMS = ["x", "reddit", pytest.param("mastodon", marks=pytest.mark.mastodon)]


@pytest.fixture
def live(request: pytest.FixtureRequest, sim: dict[str, dt.datetime], tmp_path: Path) -> Iterator[Live]:
    platform = request.param
    made: Live
    if platform == "x":
        made = LiveX(sim, tmp_path)
    elif platform == "reddit":
        made = LiveReddit(sim)
    else:
        made = LiveMastodon(sim, tmp_path, request.getfixturevalue("mastodon_mock"))
    try:
        yield made
    finally:
        made.stop()


# ---------------------------------------------------------------------------- the store


def queue(store: Store, settings: Settings, ids: list[str], at: dt.datetime) -> None:
    """The stories, queued with a year-old date (as ``oneyearago load`` leaves them)."""
    Planner(store, settings).load([story(sid, at - dt.timedelta(days=365)) for sid in ids],
                                  now=at - dt.timedelta(days=30))


def mark_posted(store: Store, sid: str, top: PostRef, reveal: PostRef, at: dt.datetime) -> None:
    """Record the root and follow-up as the engine does once they are posted."""
    with store.session() as session:
        for row in session.scalars(select(DeliveryRow).where(
                DeliveryRow.story_id == sid, DeliveryRow.platform == top.platform, DeliveryRow.part == 1)):
            ref = top if row.kind == "root" else reveal
            row.status, row.remote_id, row.remote_url = "posted", ref.id, ref.url
            row.remote_extra, row.posted_at = dict(ref.extra), at


@dataclasses.dataclass
class Threads:
    """Posted threads on one platform: story id -> (root, follow-up)."""

    live: Live
    store: Store
    posted: dict[str, tuple[PostRef, PostRef]]


def post_threads(live: Live, store: Store, settings: Settings, count: int) -> Threads:
    ids = [f"s{i:02d}" for i in range(count)]
    at = live.sim["t"] - dt.timedelta(hours=2)
    queue(store, settings, ids, live.sim["t"])
    posted = {}
    for sid in ids:
        top, reveal = live.post_thread(sid)
        mark_posted(store, sid, top, reveal, at)
        posted[sid] = (top, reveal)
    live.start_counting()
    return Threads(live, store, posted)


def sweep_counted(live: Live, sweep: ConversationSweep) -> tuple[PlatformPass, int]:
    """One pass at the simulated time: the platform's pass and the requests its stand-in received meanwhile."""
    before = live.received()
    (done,) = [p for p in sweep.sweep(live.sim["t"]) if p.platform == live.platform]
    return done, live.received() - before


def conversation_settings(make_settings: Callable[..., Settings], **options: Any) -> Settings:
    return make_settings(conversation_x="true", **options)


# ---------------------------------------------------------------------------- budget, counted


@pytest.mark.parametrize("live", PLATFORM_PARAMS, indirect=True)
def test_each_pass_stays_within_the_platforms_budget_as_counted_by_the_standin(
        live: Live, store: Store, make_settings: Callable[..., Settings], sim: dict[str, dt.datetime]):
    settings = conversation_settings(make_settings)
    budget = REQUEST_BUDGET[live.platform]
    posted = post_threads(live, store, settings, budget + 5)
    adapter = live.adapter()  # one reading adapter for the life of `run`, as bot.wiring.reading_adapters makes
    read_at: dict[str, list[dt.datetime]] = {sid: [] for sid in posted.posted}
    start = sim["t"]
    for n in range(4):
        sim["t"] += settings.conversation_every if n else dt.timedelta(0)
        done, received = sweep_counted(live, ConversationSweep(store, settings, {live.platform: adapter},
                                                               clock=live.clock))
        assert received <= budget, (n, received, done)
        assert received == done.requests, (n, received, done)  # the sweep's count is what the platform saw
        assert done.threads and done.errors == 0
        with store.session() as session:
            for sid in session.scalars(select(ConversationRow.story_id).where(
                    ConversationRow.platform == live.platform, ConversationRow.swept_at == sim["t"])):
                read_at[sid].append(sim["t"])
        if n == 0:
            assert "budget" in done.stopped  # more threads than one pass may read
    # the never-read first, then those read longest ago: no thread waits for more than two passes
    assert all(len(reads) >= 2 and reads[0] <= start + settings.conversation_every for reads in read_at.values())


@pytest.mark.parametrize("live", PLATFORM_PARAMS, indirect=True)
def test_replies_by_others_show_up_in_the_store_and_the_bots_own_follow_up_never(
        live: Live, store: Store, make_settings: Callable[..., Settings], sim: dict[str, dt.datetime]):
    settings = conversation_settings(make_settings, conversation_keep=2)
    posted = post_threads(live, store, settings, 3)
    top, reveal = posted.posted["s01"]
    start = sim["t"] - dt.timedelta(minutes=90)
    first = live.add_reply(top, top.id, "alice", "First & best", start)
    second = live.add_reply(top, reveal.id, "bob", "Wow, a year already", start + dt.timedelta(minutes=1))
    live.poster.reply(Outgoing(live.platform, "s01", "followup", 2, _payload(live, "Thanks, everyone"),
                               None if live.platform != "mastodon" else "thanks-s01", PostRef(
                                   live.platform, first["id"], "", _extra(live, top)), top))
    adapter = live.adapter()
    sweep = ConversationSweep(store, settings, {live.platform: adapter}, clock=live.clock)
    sweep_counted(live, sweep)
    kept = {t.story_id: t for t in threads(store) if t.platform == live.platform}
    assert set(kept) == {"s00", "s01", "s02"} and kept["s00"].total == kept["s02"].total == 0
    talk = kept["s01"]
    assert talk.total == 2, talk  # not the follow-up, nor the account's own answer by hand
    assert [(r.id, r.author, r.url) for r in talk.replies] == [
        (second["id"], second["author"], second["url"]), (first["id"], first["author"], first["url"])]
    assert talk.replies[0].parent_id == (reveal.extra["name"] if live.platform == "reddit" else reveal.id)
    assert talk.replies[1].text == "First & best" and talk.root_url == top.url
    own = {reveal.id, reveal.extra.get("name", "")}
    assert not own & {r.id for r in talk.replies}

    # a later reply shows up at the thread's next read, the newest first, at most `keep` kept
    sim["t"] += settings.conversation_every
    third = live.add_reply(top, first["id"], "alice", "Replying to myself", sim["t"] - dt.timedelta(minutes=1))
    sweep_counted(live, sweep)
    (talk,) = [t for t in threads(store, "s01") if t.platform == live.platform]
    assert talk.total == 3 and talk.new == 3
    assert [r.id for r in talk.replies] == [third["id"], second["id"]]
    assert {r.author for r in talk.replies} == {third["author"], second["author"]}
    assert talk.replies[0].parent_id == first["id"]


def _payload(live: Live, text: str) -> dict[str, Any]:
    return {"status": text, "language": "en"} if live.platform == "mastodon" else {"text": text}


def _extra(live: Live, top: PostRef) -> dict[str, Any]:
    return {"submission": top.extra.get("submission") or top.id} if live.platform == "reddit" else {}


# ---------------------------------------------------------------------------- rate limits


@pytest.mark.parametrize("live", PLATFORM_PARAMS, indirect=True)
def test_a_429_stops_the_platforms_reads_until_its_reset_even_after_a_restart(
        live: Live, store: Store, make_settings: Callable[..., Settings], sim: dict[str, dt.datetime]):
    settings = conversation_settings(make_settings)
    post_threads(live, store, settings, 6)
    adapter = live.adapter()
    done, received = sweep_counted(live, ConversationSweep(store, settings, {live.platform: adapter},
                                                           clock=live.clock))
    assert done.threads == 6 and received == done.requests

    sim["t"] += settings.conversation_every
    live.limit_reads(2 * 3600)
    done, received = sweep_counted(live, ConversationSweep(store, settings, {live.platform: adapter},
                                                           clock=live.clock))
    assert received == 1 and done.requests == 1 and "rate limited" in done.stopped, done
    with store.session() as session:
        until = max(r for r in session.scalars(select(ConversationRow.retry_at).where(
            ConversationRow.platform == live.platform)) if r is not None)
    limited_at = sim["t"]
    assert dt.timedelta(hours=2) - dt.timedelta(seconds=2) <= until - limited_at <= dt.timedelta(hours=2, seconds=2)

    # a restart: a new sweep and new adapters; not one request before the reset
    for when in (limited_at + settings.conversation_every, limited_at + dt.timedelta(minutes=90),
                 until - dt.timedelta(seconds=1)):
        sim["t"] = when
        done, received = sweep_counted(live, ConversationSweep(store, settings, {live.platform: live.adapter()},
                                                               clock=live.clock))
        assert received == 0 and done.requests == 0 and "rate limited" in done.stopped, (when, done)
    if isinstance(live, LiveX):
        assert live.standin.violations == []  # the stand-in's own check, on the shared clock

    sim["t"] = until
    done, received = sweep_counted(live, ConversationSweep(store, settings, {live.platform: live.adapter()},
                                                           clock=live.clock))
    assert done.threads == 6 and received == done.requests and "rate" not in done.stopped
    assert all(t.last_error is None for t in threads(store) if t.platform == live.platform)


# ---------------------------------------------------------------------------- X only when enabled


def test_x_is_not_read_at_all_unless_enabled(store: Store, make_settings: Callable[..., Settings],
                                             sim: dict[str, dt.datetime], tmp_path: Path):
    live = LiveX(sim, tmp_path)
    try:
        posted = post_threads(live, store, make_settings(), 3)
        top, _ = posted.posted["s00"]
        live.add_reply(top, top.id, "alice", "hello", sim["t"] - dt.timedelta(minutes=5))
        adapters = {"x": live.adapter()}
        database = {"database_url": make_settings().database_url}
        for environ in ({}, {"ONEYEARAGO_CONVERSATION_X": "false"}):
            settings = load_settings(database, environ=environ, env_file=None)
            for _ in range(3):
                assert ConversationSweep(store, settings, adapters, clock=live.clock).sweep(sim["t"]) == []
                sim["t"] += settings.conversation_every
        assert live.received() == 0 and threads(store) == []
        enabled = load_settings(database, environ={"ONEYEARAGO_CONVERSATION_X": "true"}, env_file=None)
        passes = ConversationSweep(store, enabled, adapters, clock=live.clock).sweep(sim["t"])
        assert [p.platform for p in passes] == ["x"] and live.received() == passes[0].requests > 0
        assert [t.total for t in threads(store, "s00")] == [1]
    finally:
        live.stop()


# ---------------------------------------------------------------------------- hiding an X reply from the dashboard


def dashboard(settings: Settings, store: Store, now: dt.datetime,
              adapter: Callable[[str], Any] | None = None) -> TestClient:
    from bot.web import create_app

    app = create_app(settings, store, clock=lambda: now, adapter=adapter)
    return TestClient(app, base_url="http://127.0.0.1:8080", follow_redirects=False)


def hide_form(client: TestClient, story_id: str, author: str) -> dict[str, str]:
    """The confirmed form of the hide button next to ``author``'s reply on the story page."""
    import html

    page = client.get(f"/story/{story_id}").text
    match = re.search(r'href="(/hide\?[^"]+)"', page[page.index(author):])
    assert match, page
    confirm = client.get(html.unescape(match.group(1))).text
    form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', confirm))
    return {k: html.unescape(v) for k, v in form.items()}


def test_the_dashboard_hides_an_x_reply_through_the_real_adapter_on_the_standin(
        store: Store, make_settings: Callable[..., Settings], sim: dict[str, dt.datetime], tmp_path: Path):
    live = LiveX(sim, tmp_path)
    try:
        posted = post_threads(live, store, make_settings(), 1)
        top, _ = posted.posted["s00"]
        troll = live.add_reply(top, top.id, "bob", "spam spam", sim["t"] - dt.timedelta(minutes=3))
        live.add_reply(top, top.id, "alice", "a kind word", sim["t"] - dt.timedelta(minutes=2))
        ConversationSweep(store, make_settings(conversation_x="true"), {"x": live.adapter()},
                          clock=live.clock).sweep(sim["t"])
        # the dashboard builds its X adapter from the settings (bot.wiring.adapter_for), the stand-in's URL among them
        assert live.settings.database_url == make_settings().database_url
        client = dashboard(live.settings, store, sim["t"])
        before = len(live.standin.requests)
        done = client.post("/hide", data=hide_form(client, "s00", "@bob"))
        assert done.status_code == 303, done.text
        puts = [seen for seen in live.standin.requests[before:] if seen.route == "PUT /2/tweets/:id/hidden"]
        assert [(seen.path, seen.json) for seen in puts] == [(f"/2/tweets/{troll['id']}/hidden", {"hidden": True})]
        assert live.standin.tweets[troll["id"]].hidden is True
        (talk,) = threads(store, "s00")
        assert {r.author: r.hidden for r in talk.replies} == {"@bob": True, "@alice": False}

        done = client.post("/hide", data=hide_form(client, "s00", "@bob"))  # "Show again…"
        assert done.status_code == 303 and live.standin.tweets[troll["id"]].hidden is False
        assert not any(r.hidden for r in threads(store, "s00")[0].replies)
    finally:
        live.stop()


def test_the_dashboard_hides_an_x_reply_as_the_recorded_exchange_did(
        store: Store, make_settings: Callable[..., Settings], sim: dict[str, dt.datetime], tmp_path: Path):
    """The reply the recording hid, read by the sweep from the stand-in; the hide then replays the recording."""
    standin = XStandin(clock=lambda: sim["t"].timestamp(), credentials=CREDENTIALS)
    settings = x_settings(tmp_path, database_url=make_settings().database_url, conversation_x="true")
    queue(store, settings, ["s00"], sim["t"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        standin.install(mock)
        poster = XAdapter(x_config(settings), clock=lambda: sim["t"])
        top = poster.publish(Outgoing("x", "s00", "root", 1, {"text": "A year ago today"}, None))
        reveal = poster.reply(Outgoing("x", "s00", "followup", 1, {"text": "One year later"}, None, top, top))
        mark_posted(store, "s00", top, reveal, sim["t"] - dt.timedelta(hours=1))
        standin.add_tweet("a reply the recording hid", reply_to=top.id, author=ALICE,
                          at=sim["t"].timestamp() - 60, tweet_id=RECORDED_REPLY)
        ConversationSweep(store, settings, {"x": XAdapter(x_config(settings), clock=lambda: sim["t"])},
                          clock=lambda: sim["t"]).sweep(sim["t"])
    assert [r.id for r in threads(store, "s00")[0].replies] == [RECORDED_REPLY]

    interactions = yaml.safe_load((DATA / "test_client_hide_and_unhide_reply.yaml").read_text())["interactions"]
    with responses.RequestsMock() as recorded:  # every recorded answer must be used, and nothing else asked
        for interaction in interactions:
            answer = interaction["response"]
            headers = {name: ", ".join(values) for name, values in answer["headers"].items()}
            recorded.add(interaction["request"]["method"], interaction["request"]["uri"],
                         status=answer["status"]["code"], body=answer["body"]["string"],
                         content_type=headers.pop("content-type"), headers=headers)
        client = dashboard(settings, store, sim["t"])
        assert client.post("/hide", data=hide_form(client, "s00", "@alice")).status_code == 303
        assert threads(store, "s00")[0].replies[0].hidden is True
        assert client.post("/hide", data=hide_form(client, "s00", "@alice")).status_code == 303
        sent = [call.request for call in recorded.calls]
    assert [(r.method, r.url) for r in sent] == [("PUT", f"{TWEEPY_HOST}/2/tweets/{RECORDED_REPLY}/hidden")] * 2
    assert [json.loads(r.body) for r in sent] == [json.loads(i["request"]["body"]) for i in interactions]
    assert threads(store, "s00")[0].replies[0].hidden is False


# ---------------------------------------------------------------------------- Reddit failing


def test_a_failing_reddit_read_is_sent_once_so_the_pass_stays_within_its_budget(
        store: Store, make_settings: Callable[..., Settings], sim: dict[str, dt.datetime]):
    """prawcore retries a failed GET (5xx, timeouts) up to three times; the sweep counts one request per failed
    read and tries the thread again at the next pass, so a read is sent once."""
    settings = conversation_settings(make_settings)
    live = LiveReddit(sim)
    try:
        post_threads(live, store, settings, 8)
        adapter = live.adapter()
        sweep = ConversationSweep(store, settings, {"reddit": adapter}, clock=live.clock, budget={"reddit": 5})
        done, received = sweep_counted(live, sweep)
        # the token and the first read, then two: a fourth read, expected to cost as much as the dearest, would not fit
        assert done.threads == 3 and received == done.requests == 4
        sim["t"] += settings.conversation_every
        live.standin.fail_next("submission", status=503, count=100)
        done, received = sweep_counted(live, sweep)
        assert done.errors == done.requests == received == 5 and done.threads == 0
        assert len([t for t in threads(store) if t.last_error and "503" in t.last_error]) == 5
    finally:
        live.stop()


# ---------------------------------------------------------------------------- X's paged search


def test_a_thread_of_more_than_a_hundred_x_replies_read_last_in_a_pass_stays_within_the_budget(
        store: Store, make_settings: Callable[..., Settings], sim: dict[str, dt.datetime], tmp_path: Path):
    settings = conversation_settings(make_settings)
    live = LiveX(sim, tmp_path)
    try:
        posted = post_threads(live, store, settings, 12)
        top, _ = posted.posted["s09"]  # the tenth read of the first pass
        for n in range(150):
            live.standin.add_tweet(f"reply {n}", reply_to=top.id, author=ALICE, at=sim["t"].timestamp() - 600 + n)
        adapter = live.adapter()
        adapter.whoami()  # the account known, as after the first pass of `run`
        live.start_counting()
        done, received = sweep_counted(live, ConversationSweep(store, settings, {"x": adapter}, clock=live.clock))
        assert received == done.requests
        assert received <= REQUEST_BUDGET["x"], done  # the tenth read had one page left of the budget
        with store.session() as session:
            kept = session.scalar(select(ConversationRow.total).where(ConversationRow.story_id == "s09"))
        assert kept == 100  # what that one page held: the rest waits for the thread's next read
        for _ in range(3):  # the next passes read the others first, then this one again, in full
            sim["t"] += settings.conversation_every
            done, received = sweep_counted(live, ConversationSweep(store, settings, {"x": adapter}, clock=live.clock))
            assert received == done.requests <= REQUEST_BUDGET["x"], done
            with store.session() as session:
                kept = session.scalar(select(ConversationRow.total).where(ConversationRow.story_id == "s09"))
            if kept == 150:
                break
        assert kept == 150
    finally:
        live.stop()


def test_x_reads_whose_later_page_fails_count_every_page_they_sent(
        store: Store, make_settings: Callable[..., Settings], sim: dict[str, dt.datetime], tmp_path: Path):
    """A read whose second page fails (503) sent two requests: the sweep counts both (it counted one, and
    a pass of such reads sent nearly twice its budget, each page billed by X)."""
    settings = conversation_settings(make_settings)
    live = LiveX(sim, tmp_path)
    try:
        posted = post_threads(live, store, settings, 12)
        for sid, (top, _) in posted.posted.items():
            for n in range(150):
                live.standin.add_tweet(f"{sid} reply {n}", reply_to=top.id, author=ALICE,
                                       at=sim["t"].timestamp() - 600 + n)
        adapter = live.adapter()
        adapter.whoami()
        live.start_counting()
        answer = live.standin.respond

        def later_pages_fail(method: str, url: str, headers: Any, body: Any) -> Any:
            if "next_token" in url:
                live.standin.fail_next(SEARCH, status=503)
            return answer(method, url, headers, body)

        live.standin.respond = later_pages_fail  # type: ignore[method-assign]
        done, received = sweep_counted(live, ConversationSweep(store, settings, {"x": adapter}, clock=live.clock))
        assert received == done.requests <= REQUEST_BUDGET["x"], (done, received)
        assert done.errors >= 1
        with store.session() as session:  # a failed read's cost is what the thread is expected to cost next
            costs = {row.story_id: row.requests for row in session.scalars(select(ConversationRow))
                     if row.last_error}
        assert costs and set(costs.values()) == {2}
    finally:
        live.stop()
