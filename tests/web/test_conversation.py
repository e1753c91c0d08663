"""What followers said, in the dashboard: the story page's conversation, the Conversation page, hiding a reply."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from adapters.base import PostRef
from adapters.fake import FakeAdapter, FakeConfig
from adapters.sandbox import HIDE_REPLY, SandboxAdapter, SandboxConfig, read_transcript
from bot.config import Settings
from bot.conversation import ConversationSweep, threads
from bot.store import Store
from tests.web.helpers import NOW, csrf_of, delivery, set_status

POSTED = NOW - dt.timedelta(hours=1)
EVIL = '<script>alert("x")</script> & <b>bold</b>'


def post_root(store: Store, platform: str, story_id: str = "first-story") -> PostRef:
    row = delivery(store, story_id, platform)
    set_status(store, row.id, "posted", remote_url=f"https://{platform}.example/post/{platform}-root",
               posted_at=POSTED)
    return PostRef(platform, f"{platform}-root", "")


@pytest.fixture
def fakes() -> dict[str, FakeAdapter]:
    return {p: FakeAdapter(FakeConfig(p)) for p in ("bluesky", "reddit")}


@pytest.fixture
def swept(loaded: Store, settings: Settings, fakes: dict[str, FakeAdapter]) -> dict[str, FakeAdapter]:
    """first-story's Bluesky and Reddit threads, read once: two replies on Bluesky (one hostile), one on Reddit."""
    bsky_root, reddit_root = post_root(loaded, "bluesky"), post_root(loaded, "reddit")
    fakes["bluesky"].add_reply(bsky_root, "@fan.bsky.social", "Great story", POSTED + dt.timedelta(minutes=5))
    fakes["bluesky"].add_reply(bsky_root, "@troll.bsky.social", EVIL, POSTED + dt.timedelta(minutes=9),
                               reply_id="at://did:plc:troll/app.bsky.feed.post/3kabc")
    fakes["reddit"].add_reply(reddit_root, "u/reader", "Nice", POSTED + dt.timedelta(minutes=7))
    ConversationSweep(loaded, settings, fakes, clock=lambda: NOW).sweep(NOW)
    return fakes


@pytest.fixture
def fake_client(make_client: Callable[..., TestClient], swept: dict[str, FakeAdapter]) -> TestClient:
    return make_client(adapter=lambda platform: swept[platform])


def hide_link(page: str, author: str) -> str:
    """The confirmation link of the hide button next to ``author``'s reply on ``page``."""
    at = page.index(author)
    match = re.search(r'href="(/hide\?[^"]+)"', page[at:])
    assert match, page[at:at + 2000]
    return html.unescape(match.group(1))


def test_the_story_page_shows_each_platforms_conversation_with_links_and_hides_where_possible(fake_client):
    page = fake_client.get("/story/first-story").text
    assert 'id="conversation-bluesky"' in page and 'id="conversation-reddit"' in page
    assert "Conversation · 2 replies" in page and "Conversation · 1 reply" in page
    assert "@fan.bsky.social" in page and "u/reader" in page
    assert "open on Bluesky" in page and "open on Reddit" in page
    bluesky = page[page.index('id="conversation-bluesky"'):]
    reddit = page[page.index('id="conversation-reddit"'):]
    reddit = reddit[:reddit.index("</section>")] if "</section>" in reddit else reddit
    assert "Hide…" in bluesky[:bluesky.index("</section>")]
    assert "Hide…" not in reddit  # Reddit does not let the author hide a reply: only the link


def test_a_reply_is_untrusted_text_shown_as_text(fake_client):
    for path in ("/story/first-story", "/conversation"):
        page = fake_client.get(path).text
        assert '<script>alert("x")</script>' not in page and "<b>bold</b>" not in page
        assert "&lt;script&gt;alert(" in page and "&amp; &lt;b&gt;bold&lt;/b&gt;" in page


def test_the_conversation_page_lists_new_replies_until_marked_seen_with_the_csrf_token(fake_client, loaded):
    page = fake_client.get("/conversation")
    assert page.status_code == 200 and 'href="/conversation" aria-current="page"' in page.text
    assert "2 new" in page.text and "1 new" in page.text and "Mark these as seen" in page.text
    assert "next=%2Fconversation" in hide_link(page.text, "@troll.bsky.social")  # a hide comes back here
    refused = fake_client.post("/conversation/seen", data={"seen": "bluesky:2:first-story"})
    assert refused.status_code == 403 and len(threads(loaded, only_new=True)) == 2
    token = csrf_of(fake_client, "/conversation")
    done = fake_client.post("/conversation/seen", data={
        "csrf_token": token, "seen": ["bluesky:2:first-story", "reddit:1:first-story"]})
    assert done.status_code == 303 and done.headers["location"] == "/conversation"
    assert threads(loaded, only_new=True) == []
    assert "No new replies since you last looked" in fake_client.get("/conversation").text
    everything = fake_client.get("/conversation?all=1").text
    assert "@fan.bsky.social" in everything and "u/reader" in everything


def test_the_nav_links_to_the_conversation_page(fake_client):
    assert '<a href="/conversation"' in fake_client.get("/").text


def test_hiding_asks_for_confirmation_then_hides_on_the_platform_with_the_csrf_token(fake_client, swept, loaded):
    link = hide_link(fake_client.get("/story/first-story").text, "@troll.bsky.social")
    confirm = fake_client.get(link)
    assert confirm.status_code == 200 and "Hide this reply on Bluesky?" in confirm.text
    assert "&lt;script&gt;" in confirm.text and swept["bluesky"].hides == []  # a GET changes nothing
    form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', confirm.text))
    form = {k: html.unescape(v) for k, v in form.items()}
    assert form["reply"] == "at://did:plc:troll/app.bsky.feed.post/3kabc" and form["hidden"] == "1"
    without = {k: v for k, v in form.items() if k != "csrf_token"}
    assert fake_client.post("/hide", data=without).status_code == 403
    assert fake_client.post("/hide", data={**without, "csrf_token": "0" * 64}).status_code == 403
    assert swept["bluesky"].hides == []
    done = fake_client.post("/hide", data=form)
    assert done.status_code == 303 and done.headers["location"] == "/story/first-story"
    assert swept["bluesky"].hides == [("bluesky-root", "at://did:plc:troll/app.bsky.feed.post/3kabc", True)]
    (bsky,) = [t for t in threads(loaded, "first-story") if t.platform == "bluesky"]
    assert [r.hidden for r in bsky.replies] == [True, False]
    page = fake_client.get("/story/first-story").text
    assert "Show again…" in page and ">hidden<" in page
    again = hide_link(page, "@troll.bsky.social")
    assert "hidden=0" in again and "Show this reply again on Bluesky?" in fake_client.get(again).text


def test_a_reply_on_a_platform_that_cannot_hide_is_refused(fake_client, swept, loaded):
    (reddit,) = [t for t in threads(loaded, "first-story") if t.platform == "reddit"]
    reply = reddit.replies[0]
    query = {"story": "first-story", "platform": "reddit", "reply": reply.id, "hidden": "1"}
    assert fake_client.get("/hide", params=query).status_code == 400
    token = csrf_of(fake_client, "/conversation")
    refused = fake_client.post("/hide", data={**query, "csrf_token": token})
    assert refused.status_code == 400 and "does not let the author" in refused.text
    assert swept["reddit"].calls.count("hide_reply") == 0


def test_an_unknown_reply_or_story_is_a_404(fake_client):
    assert fake_client.get("/hide", params={"story": "first-story", "platform": "bluesky",
                                            "reply": "nope"}).status_code == 404
    assert fake_client.get("/hide", params={"story": "nope", "platform": "bluesky", "reply": "x"}).status_code == 404


def test_a_platform_error_while_hiding_is_shown_and_changes_nothing(fake_client, swept, loaded):
    from posts.errors import RateLimited

    swept["bluesky"].fail_next_read(RateLimited("bluesky", "429 too many requests", NOW + dt.timedelta(minutes=5)))
    link = hide_link(fake_client.get("/story/first-story").text, "@troll.bsky.social")
    form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', fake_client.get(link).text))
    failed = fake_client.post("/hide", data={k: html.unescape(v) for k, v in form.items()})
    assert failed.status_code == 400 and "429 too many requests" in failed.text
    assert not any(r.hidden for t in threads(loaded, "first-story") for r in t.replies)


def test_in_sandbox_mode_the_dashboard_hides_through_the_sandbox(make_client, loaded, settings):
    root = post_root(loaded, "bluesky")
    sandbox = SandboxAdapter(SandboxConfig("bluesky", settings.transcript_path), clock=lambda: NOW)
    sandbox.add_reply(root, "@someone.bsky.social", "hello", POSTED)
    ConversationSweep(loaded, settings, {"bluesky": sandbox}, clock=lambda: NOW).sweep(NOW)
    client = make_client()  # no adapter given: the sandbox, as `run` builds it
    link = hide_link(client.get("/story/first-story").text, "@someone.bsky.social")
    form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', client.get(link).text))
    assert client.post("/hide", data={k: html.unescape(v) for k, v in form.items()}).status_code == 303
    assert [r["kind"] for r in read_transcript(settings.transcript_path)][-1] == HIDE_REPLY
    assert sandbox.conversation(root, (), limit=5).replies[0].hidden


def test_in_live_mode_a_hide_without_the_platforms_credentials_says_which_are_missing(
        make_client, web_settings, swept, loaded):
    client = make_client(settings_=web_settings(mode="live"))  # no adapter given: built from the settings
    link = hide_link(client.get("/story/first-story").text, "@troll.bsky.social")
    form = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', client.get(link).text))
    refused = client.post("/hide", data={k: html.unescape(v) for k, v in form.items()})
    assert refused.status_code == 400 and "ONEYEARAGO_BLUESKY_HANDLE" in refused.text
    assert not any(r.hidden for t in threads(loaded, "first-story") for r in t.replies)


def test_a_long_conversation_page_is_bounded_and_marking_it_seen_works(make_client, store, settings):
    """60 threads with new replies: the page shows the 50 most recently active and says how many more; its
    "Mark these as seen" form (a field per thread) is taken, and the next ones show then."""
    from adapters.base import Reply
    from bot.models import ConversationRow
    from bot.planner import Planner
    from bot.web.app import CONVERSATION_PAGE
    from tests.conftest import story

    ids = [f"story-{i:02d}-" + "x" * 80 for i in range(20)]  # long ids: the form's bytes grow with them
    Planner(store, settings).load([story(sid, dt.date(2025, 3, 1)) for sid in ids], now=NOW)
    with store.session() as session:
        for i, sid in enumerate(ids):
            for j, platform in enumerate(("bluesky", "reddit", "mastodon")):
                at = POSTED + dt.timedelta(minutes=3 * i + j)
                reply = Reply(f"{platform}-{i}", "@someone", "hello", at, f"https://{platform}.example/{i}")
                session.add(ConversationRow(story_id=sid, platform=platform, root_id=f"root-{i}", total=1,
                                            replies=[reply.to_dict()], requests=1, seen_total=0, swept_at=NOW,
                                            last_reply_at=at))
    client = make_client()
    page = client.get("/conversation").text
    fields = re.findall(r'name="seen" value="([^"]+)"', page)
    assert len(fields) == CONVERSATION_PAGE == 50 and "10 more have new replies" in page
    assert fields[0] == f"mastodon:1:{ids[-1]}"  # the most recently active first
    done = client.post("/conversation/seen", data={"csrf_token": csrf_of(client, "/conversation"),
                                                   "seen": [html.unescape(f) for f in fields]})
    assert done.status_code == 303, done.text[:500]
    assert len(threads(store, only_new=True)) == 10
    page = client.get("/conversation").text
    assert len(re.findall(r'name="seen" value=', page)) == 10 and "more have new replies" not in page
    assert len(re.findall(r'name="seen" value=', client.get("/conversation?all=1").text)) == 50
