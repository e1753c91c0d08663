"""The dashboard's pages, read through Starlette's TestClient: calendar, story, status, upload."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from bot.models import DeliveryStatus as S
from bot.planner import Planner
from bot.sources.stories import load_stories
from bot.store import Store
from tests.web.helpers import NOW, delivery, set_status


def days(html: str) -> dict[str, str]:
    """Each calendar day's HTML by its date."""
    parts = re.split(r'(?=<li class="day[^"]*" id="d\d{4}-\d\d-\d\d">)', html)
    return {m.group(1): part for part in parts if (m := re.search(r'id="d(\d{4}-\d\d-\d\d)"', part))}


def test_calendar_shows_each_days_posts_per_platform_with_times_and_quotas(client: TestClient):
    page = client.get("/")
    assert page.status_code == 200
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert "2 Mar – 15 Mar 2026" in page.text
    cal = days(page.text)
    assert len(cal) == 14
    monday = cal["2026-03-02"]
    assert "today" in monday.split(">", 1)[0]
    for name in ("X", "Reddit", "Bluesky", "Mastodon"):
        assert f'<span class="pfname">{name}</span>' in monday
    assert monday.count("<time>15:00</time>") == 4  # the root: date-only, middle of the 09:00-21:00 window
    assert monday.count("<time>21:00</time>") == 4  # its follow-up, 6 hours later
    assert "Example Lab shows a &lt;b&gt;model&lt;/b&gt; that plans &amp; reasons" in monday  # escaped
    assert 'href="/story/first-story"' in monday
    assert "2/100" in monday  # X: root + follow-up against the 24-hour quota
    assert "2/50" in monday and "2/5000" in monday
    assert "$" in monday  # X's cost estimate
    assert "Nothing scheduled." in cal["2026-03-03"]
    assert "<time>17:30</time>" in cal["2026-03-04"]  # 18:30 in Berlin is 17:30 UTC
    assert "A story of next week" in cal["2026-03-10"]


def test_calendar_times_are_in_the_bots_time_zone(make_client, web_settings, loaded: Store):
    client = make_client(settings_=web_settings(timezone="Asia/Tokyo"))
    page = client.get("/")
    assert "Asia/Tokyo" in page.text
    assert "<time>02:30</time>" in days(page.text)["2026-03-05"]  # 17:30 UTC on 4 March = 02:30 on the 5th in Tokyo


def test_calendar_navigates_by_week(client: TestClient):
    page = client.get("/?weeks=1")
    assert list(days(page.text)) == [f"2026-03-0{d}" for d in range(2, 9)]
    assert 'rel="next" href="/?start=2026-03-09&amp;weeks=1"' in page.text
    assert 'rel="prev" href="/?start=2026-02-23&amp;weeks=1"' in page.text
    nxt = client.get("/?start=2026-03-09&weeks=1")
    assert "A story of next week" in nxt.text and "first-story" not in nxt.text
    assert list(days(client.get("/?start=2026-03-12&weeks=1").text))[0] == "2026-03-09"  # snaps to Monday
    assert client.get("/?start=tomorrow").status_code == 400


def test_calendar_highlights_overbooked_days(make_client, web_settings, store: Store, story_file):
    settings = web_settings(quota_x_24h=1)
    Planner(store, settings).load(load_stories([story_file]), now=NOW)
    page = make_client(settings_=settings).get("/")
    monday = days(page.text)["2026-03-02"]
    assert "overbooked" in monday.split(">", 1)[0]
    assert "X: 2 posts &gt; 1 a day" in monday
    assert "overbooked" not in days(page.text)["2026-03-10"].split(">", 1)[0]  # a root alone: 1 post on X


def test_calendar_highlights_failed_and_missed_posts(client: TestClient, loaded: Store):
    failed = delivery(loaded, "first-story", "x")
    set_status(loaded, failed.id, S.FAILED.value, error="x: rejected: duplicate content")
    set_status(loaded, delivery(loaded, "second-story", "reddit").id, S.MISSED.value,
               error="more than 2h late (grace 2h): not posted")
    cal = days(client.get("/").text)
    assert "trouble" in cal["2026-03-02"].split(">", 1)[0]
    assert 'class="entry st-bad"' in cal["2026-03-02"]
    assert "x: rejected: duplicate content" in cal["2026-03-02"]
    assert f'href="/retry/%23{failed.id}?next=/"' in cal["2026-03-02"]
    assert 'class="entry st-warn"' in cal["2026-03-04"]
    assert "1 needs attention" in cal["2026-03-04"]


def test_calendar_marks_pending_posts_past_their_time_late(make_client, loaded: Store):
    import datetime as dt

    client = make_client(clock=lambda: NOW + dt.timedelta(hours=8))  # 16:00, root was due 15:00
    monday = days(client.get("/").text)["2026-03-02"]
    assert "4 late" in monday


def test_story_page_shows_each_platform_as_followers_will_see_it(client: TestClient):
    page = client.get("/story/first-story")
    assert page.status_code == 200
    html = page.text
    # X: the post card with the link shown as X shows it, and the reply thread
    assert 'class="post xpost' in html and "@oneyearago" in html
    assert ">example.com/first</a>" in html and 'href="https://example.com/first"' in html
    assert "Replying to" in html
    assert "weighted characters" in html and "/280" in html
    # Bluesky: post with its link card, graphemes and bytes against their limits
    assert 'class="post bskypost' in html and 'class="linkcard"' in html
    assert '<span class="lc-domain">example.com</span>' in html
    assert "/300 graphemes" in html and "/3,000 UTF-8 bytes" in html
    # Reddit: the self post (title, self text) and the spoiler comment, the spoiler behind <details>
    assert '<h3 class="rtitle">Example Lab shows a &lt;b&gt;model&lt;/b&gt; that plans &amp; reasons' in html
    assert "/40,000 characters" in html and "/300 characters" in html and "/10,000 characters" in html
    spoiler = re.search(r'<details class="spoiler">.*?</details>', html, re.S)
    assert spoiler and "It was cited everywhere; nobody shipped it" in spoiler.group(0)
    assert "<details class=\"spoiler\" open" not in html
    # Mastodon: the status with its link shown short, and the reply's reveal folded behind its content
    # warning (a closed <details>, the warning as its summary), each counted against the instance's 500
    assert 'class="post mastopost' in html and "@oneyearago@mastodon.example" in html
    assert "/500 characters" in html
    cw = re.search(r'<details class="cw">\s*<summary><span class="cw-text">(.*?)</span>.*?</summary>(.*?)</details>',
                   html, re.S)
    assert cw and cw.group(1) == "One year later — spoiler"
    assert "It was cited everywhere; nobody shipped it" in cw.group(2)
    assert '<details class="cw" open' not in html
    assert "<script>" not in html.split("</head>", 1)[1]  # nothing on the page needs JavaScript
    # the delivery behind each post
    assert html.count('class="badge st-pending">pending</span>') == 8
    assert "due 2026-03-02 15:00" in html and "due 2026-03-02 21:00" in html


def test_story_page_links_to_the_real_posts_once_posted(client: TestClient, loaded: Store):
    root = delivery(loaded, "first-story", "x")
    set_status(loaded, root.id, S.POSTED.value, remote_url="https://x.com/oneyearago/status/190000000001",
               posted_at=NOW)
    bsky = delivery(loaded, "first-story", "bluesky")
    set_status(loaded, bsky.id, S.POSTED.value, posted_at=NOW,
               remote_url="https://bsky.app/profile/oneyearago.bsky.social/post/3kabc")
    html = client.get("/story/first-story").text
    assert 'href="https://x.com/oneyearago/status/190000000001"' in html
    assert "View on X ↗" in html and "View on Bluesky ↗" in html
    assert "posted 2026-03-02 08:00" in html
    assert "On the platforms:" in html


def test_story_page_offers_skip_and_retry_when_they_apply(client: TestClient, loaded: Store):
    html = client.get("/story/first-story").text
    assert 'href="/skip/first-story?next=/story/first-story"' in html
    assert "/retry/first-story" not in html
    set_status(loaded, delivery(loaded, "first-story", "reddit").id, S.UNCONFIRMED.value, error="timeout")
    assert 'href="/retry/first-story?next=/story/first-story"' in client.get("/story/first-story").text


def test_story_without_follow_up_and_unknown_story(client: TestClient):
    html = client.get("/story/next-week").text
    assert "No follow-up" in html
    missing = client.get("/story/no-such-story")
    assert missing.status_code == 404
    assert "no story &#39;no-such-story&#39;" in missing.text


def test_status_page_lists_failures_unconfirmed_and_missed_with_reasons_and_actions(client: TestClient,
                                                                                     loaded: Store):
    failed = delivery(loaded, "first-story", "x")
    unconfirmed = delivery(loaded, "first-story", "bluesky")
    missed = delivery(loaded, "second-story", "reddit")
    set_status(loaded, failed.id, S.FAILED.value, error="x: rejected: text too long")
    set_status(loaded, unconfirmed.id, S.UNCONFIRMED.value, error="bluesky: outcome unknown: read timeout")
    set_status(loaded, missed.id, S.MISSED.value, error="more than 2h late: not posted")
    page = client.get("/status")
    assert page.status_code == 200
    html = page.text
    for row, reason in ((failed, "x: rejected: text too long"),
                        (unconfirmed, "bluesky: outcome unknown: read timeout"),
                        (missed, "more than 2h late: not posted")):
        item = re.search(rf'<li class="problem[^"]*" id="delivery-{row.id}">.*?</li>', html, re.S)
        assert item, row.id
        assert reason in item.group(0)
        assert f'href="/retry/%23{row.id}?next=/status"' in item.group(0)
    assert 'href="/skip/first-story?next=/status"' in html
    assert "3 stories" in html
    assert "Next" in html


def test_status_page_with_an_empty_queue(make_client):
    html = make_client().get("/status").text
    assert "Nothing needs attention" in html
    assert "The queue is empty" in html


def test_confirmation_pages_change_nothing(client: TestClient, loaded: Store):
    row = delivery(loaded, "first-story", "x")
    set_status(loaded, row.id, S.FAILED.value, error="x: rejected")
    page = client.get(f"/retry/%23{row.id}?next=/status")
    assert page.status_code == 200
    assert "Yes, retry" in page.text and 'name="csrf_token"' in page.text
    assert delivery(loaded, "first-story", "x").status == S.FAILED.value
    skip = client.get("/skip/first-story")
    assert "Yes, skip it" in skip.text
    assert delivery(loaded, "first-story", "reddit").status == S.PENDING.value
    assert client.get("/retry/9999").status_code == 404
    assert client.get("/skip/nope").status_code == 404


def test_security_headers_are_sent(client: TestClient):
    page = client.get("/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "httponly" in page.headers["set-cookie"].lower() and "samesite=strict" in page.headers["set-cookie"].lower()


def test_static_files_are_served(client: TestClient):
    css = client.get("/static/style.css")
    assert css.status_code == 200 and "@media (max-width: 640px)" in css.text
    assert client.get("/static/app.js").status_code == 200


def test_calendar_shows_posted_deliveries_with_their_posting_time(client: TestClient, loaded: Store):
    """Posted deliveries are read with the time they went out (the calendar once failed on any)."""
    import datetime as dt

    root = delivery(loaded, "first-story", "x")
    set_status(loaded, root.id, S.POSTED.value, remote_url="https://x.com/i/status/42",
               posted_at=root.due_at + dt.timedelta(minutes=3))
    page = client.get("/")
    assert page.status_code == 200
    monday = days(page.text)["2026-03-02"]
    assert "posted" in monday
