"""Capturing RSS and Atom feeds as draft stories: odd dates, HTML, duplicates, broken entries, a feed
served on 127.0.0.1, approval, and the stories that need a reveal (status, agenda, notifications)."""

from __future__ import annotations

import datetime as dt
import http.server
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.config import load_settings
from bot.models import DeliveryRow, NoticeRow, StoryChangeRow, StoryRow
from bot.notify import Notifier
from bot.planner import Planner
from bot.sources.feeds import (
    FeedError,
    Fetched,
    capture,
    entry_date,
    entry_digest,
    entry_key,
    fetch,
    html_to_text,
    read_entries,
    tag_word,
)
from bot.sources.templates import load_templates
from bot.store import Store
from posts.errors import Problem
from tests.cli_support import isolate, run_cli
from tests.conftest import story
from tests.local_site import LocalSite

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 1, 12, tzinfo=UTC)


def rss(*items: str, title: str = "Daily &amp; News") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>\n'
            f"<title>{title}</title><link>https://news.example.com/</link>\n"
            + "\n".join(items) + "\n</channel></rss>\n")


def item(title: str | None = "A story", link: str | None = "https://news.example.com/a", guid: str | None = None,
         date: str | None = "Mon, 12 Jan 2026 14:30:00 +0000", description: str = "", extra: str = "") -> str:
    parts = ["<item>"]
    if title is not None:
        parts.append(f"<title>{title}</title>")
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    if description:
        parts.append(f"<description>{description}</description>")
    parts.append(extra)
    parts.append("</item>")
    return "".join(parts)


def atom(*entries: str, title: str = "Atom feed") -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
            f"<title>{title}</title><id>tag:example.com,2026:feed</id>\n" + "\n".join(entries) + "\n</feed>\n")


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def drafts_in(store: Store) -> dict[str, dict[str, Any]]:
    with store.session() as session:
        return {row.id: row.content for row in session.scalars(select(StoryRow).where(StoryRow.draft.is_(True)))}


# ---------------------------------------------------------------------------- dates


@pytest.mark.parametrize(("written", "expected"), [
    # RFC 822 with a named zone: the zone the publisher wrote is kept
    ("Sun, 12 Jan 2025 14:30:00 EST", dt.datetime(2025, 1, 12, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))),
    ("Sun, 12 Jan 2025 14:30:00 PDT", dt.datetime(2025, 1, 12, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=-7)))),
    ("Sun, 12 Jan 2025 14:30:00 GMT", dt.datetime(2025, 1, 12, 14, 30, tzinfo=UTC)),
    # names RFC 822 lacks but feeds use (email.utils reads them as no zone at all)
    ("Sun, 12 Jan 2025 14:30:00 CET", dt.datetime(2025, 1, 12, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
    ("Sun, 12 Jan 2025 14:30:00 AEDT", dt.datetime(2025, 1, 12, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=11)))),
    ("Sun, 12 Jan 2025 14:30:00 +0530", dt.datetime(2025, 1, 12, 14, 30,
                                                    tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))),
    ("2025-01-12T14:30:00+01:00", dt.datetime(2025, 1, 12, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
    ("2025-01-12T14:30:00Z", dt.datetime(2025, 1, 12, 14, 30, tzinfo=UTC)),
    # a colon in an RFC 822 offset (feeds write it; email.utils does not read it)
    ("Sun, 12 Jan 2025 14:30:00 +05:30", dt.datetime(2025, 1, 12, 14, 30,
                                                     tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))),
    ("Sun, 12 Jan 2025 14:30:00 -03:30 (NST)",
     dt.datetime(2025, 1, 12, 14, 30, tzinfo=dt.timezone(-dt.timedelta(hours=3, minutes=30)))),
    # a 12-hour clock (neither email.utils nor feedparser reads PM)
    ("Sunday, January 12, 2025 2:30 PM EST", dt.datetime(2025, 1, 12, 14, 30,
                                                         tzinfo=dt.timezone(dt.timedelta(hours=-5)))),
    ("Sun, 12 Jan 2025 12:05 a.m. GMT", dt.datetime(2025, 1, 12, 0, 5, tzinfo=UTC)),
    ("Sun, 12 Jan 2025 12:05 PM GMT", dt.datetime(2025, 1, 12, 12, 5, tzinfo=UTC)),
    # a zone name only feedparser knows: its UTC reading gives the offset
    ("Sun, 12 Jan 2025 14:30:00 ET",
     dt.datetime(2025, 1, 12, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))),
    # a four-digit year is that year, not a two-digit one (0001 is not 2001; validation refuses it later)
    ("Fri, 12 Jan 0001 00:30:00 +0100",
     dt.datetime(1, 1, 12, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
    # compact ISO 8601 keeps its time
    ("20250112T143000Z", dt.datetime(2025, 1, 12, 14, 30, tzinfo=UTC)),
    ("20250112T143000+0530",
     dt.datetime(2025, 1, 12, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))),
    # no zone: read as UTC, as feedparser does (RFC 822 and RFC 3339 both require one)
    ("2025-01-12T14:30:00", dt.datetime(2025, 1, 12, 14, 30, tzinfo=UTC)),
    # a date alone is a date-only story (spread over the posting window of its anniversary)
    ("2025-01-12", dt.date(2025, 1, 12)),
    ("12 Jan 2025", dt.date(2025, 1, 12)),
    ("Sun, 12 Jan 2025", dt.date(2025, 1, 12)),
])
def test_an_entry_keeps_the_time_and_zone_its_publisher_wrote(written, expected):
    import feedparser

    parsed = feedparser.parse(rss(item(date=written))).entries[0]
    when, warning = entry_date(parsed.published, parsed.published_parsed)
    assert when == expected and type(when) is type(expected)
    if isinstance(expected, dt.datetime):
        assert when.utcoffset() == expected.utcoffset()
    assert warning == ""


@pytest.mark.parametrize("written", [
    "Mon, 08 Dec 2025 10:00:00 +9999",  # feedparser moved it four days earlier
    "2025-12-08T25:00:00Z",  # feedparser rolled it into the next day
    "2025-12-08T10:61:00Z",
    "2025-12-08T10:00:00+25:00",
    "Mon, 08 Dec 2025 10:00:00 +0575",
    "1733650000",  # a bare number (feedparser read it as a day in 2017)
])
def test_a_date_no_calendar_has_is_an_unreadable_date_not_a_guess(written, tmp_path):
    import feedparser

    parsed = feedparser.parse(rss(item(date=written))).entries[0]
    assert entry_date(parsed.published, parsed.published_parsed) == (None, "")
    problems: list = []
    _title, _count, entries = read_entries(rss(item(date=written)).encode(), "feed.xml", problems, [])
    assert entries == [] and f"{written!r} cannot be read" in str(problems[0])


def test_an_unknown_zone_name_is_read_as_utc_with_a_note():
    when, warning = entry_date("Sun, 12 Jan 2025 14:30:00 XYZT", None)
    assert when == dt.datetime(2025, 1, 12, 14, 30, tzinfo=UTC)
    assert "'XYZT'" in warning and "UTC" in warning
    # feedparser drops a PM (reading it as the zone): its reading gives no offset here
    import feedparser

    parsed = feedparser.parse(rss(item(date="Sun, 12 Jan 2025 2:30 PM XYZT"))).entries[0]
    when, warning = entry_date(parsed.published, parsed.published_parsed)
    assert when == dt.datetime(2025, 1, 12, 14, 30, tzinfo=UTC) and when.utcoffset() == dt.timedelta(0)
    assert "'XYZT'" in warning


def test_an_entry_without_any_date_is_a_problem_naming_feed_and_entry(tmp_path):
    text = rss(item(title="Dated", link="https://news.example.com/1"),
               item(title="Undated", link="https://news.example.com/2", date=None),
               item(title="Garbled", link="https://news.example.com/3", date="yesterday-ish"))
    problems: list[Problem] = []
    _title, count, entries = read_entries(text.encode(), "feed.xml", problems, [])
    assert count == 3 and [e.label for e in entries] == ["entry 1 ('Dated')"]
    assert [(p.file, p.line) for p in problems] == [("feed.xml", 5), ("feed.xml", 6)]
    assert "entry 2 ('Undated'): has no date" in str(problems[0])
    assert "entry 3 ('Garbled'): has no date" in str(problems[1]) and "'yesterday-ish' cannot be read" in str(problems[1])


def test_an_unreadable_published_falls_back_to_updated():
    text = atom("<entry><id>urn:x:1</id><title>T</title><link href='https://e.example.com/1'/>"
                "<published>sometime last week</published><updated>2025-01-12T10:00:00Z</updated></entry>",
                "<entry><id>urn:x:2</id><title>U</title><link href='https://e.example.com/2'/>"
                "<published>sometime last week</published><updated>whenever</updated></entry>")
    problems: list[Problem] = []
    _title, _count, entries = read_entries(text.encode(), "atom.xml", problems, [])
    assert [e.raw["date"] for e in entries] == ["2025-01-12T10:00:00+00:00"]
    (problem,) = problems
    assert "entry 2 ('U'): has no date" in str(problem)
    assert "'sometime last week' cannot be read" in str(problem)


def test_an_atom_entry_falls_back_to_updated():
    text = atom("<entry><id>tag:e,1</id><title>Only updated</title><link href='https://e.example.com/1'/>"
                "<updated>2025-06-01T08:00:00-04:00</updated></entry>")
    _title, _count, (entry,) = read_entries(text.encode(), "atom.xml", [], [])
    assert entry.raw["date"] == "2025-06-01T08:00:00-04:00"


# ---------------------------------------------------------------------------- text


def test_html_is_reduced_to_the_text_a_reader_sees():
    markup = ('<div><p>Council &amp; mayor <b>agree</b>&nbsp;on&#160;the &lt;budget&gt; &#8212; at last.</p>'
              '<script>alert("x")</script><style>p { color: red }</style>'
              '<p>Second<br>line <img src="a.png" alt="a chart"> <a href="https://x.example.com">link</a></p>'
              '<ul><li>one</li><li>two</li></ul>\x1b\u202e</div>')
    assert html_to_text(markup) == ("Council & mayor agree on the <budget> — at last.\n\n"
                                    "Second\nline a chart link\n\none\ntwo")
    assert html_to_text("AT&T") == "AT&T" and html_to_text("  plain   text ") == "plain text"


def test_a_title_or_summary_too_long_for_a_story_is_cut_with_a_note():
    text = rss(item(title="word " * 300, description="text " * 5000))
    warnings: list[str] = []
    _title, _count, (entry,) = read_entries(text.encode(), "feed.xml", [], warnings)
    assert len(entry.raw["headline"]) <= 1000 and entry.raw["headline"].endswith("word…")
    assert len(entry.raw["summary"]) <= 20_000 and entry.raw["summary"].endswith("…")
    assert sorted(w.split(": ", 2)[2] for w in warnings) == ["the summary was cut to 20,000 characters",
                                                             "the title was cut to 1,000 characters"]


def test_a_category_becomes_one_tag_word():
    assert [tag_word(c) for c in ("World News", "ai", "#climate", "Tech/Science", "  ", "New-York")] == \
        ["WorldNews", "ai", "climate", "TechScience", "", "New-York"]


def test_a_feed_entry_becomes_a_draft_with_text_fields_from_html(tmp_path, planner, store):
    description = ("&lt;p&gt;Hello &amp;amp; &lt;b&gt;welcome&lt;/b&gt;&lt;script&gt;steal()&lt;/script&gt;"
                   "&lt;/p&gt;&lt;p&gt;More.&lt;/p&gt;")
    feed = write(tmp_path, "feed.xml", rss(item(
        title="Council votes &amp;amp; budget passes", guid="urn:1", description=description,
        extra="<category>World News</category><category>budget</category>")))
    report = capture([feed], planner, now=NOW)
    (sid,) = report.captured
    content = drafts_in(store)[sid]
    assert sid.startswith("2026-01-12-council-votes-budget-passes-") and sid.endswith(entry_digest("urn:1"))
    assert content["headline"] == "Council votes & budget passes"  # feedparser decodes an RSS title's entities
    assert content["summary"] == "Hello & welcome\n\nMore."
    assert content["source"] == "Daily & News" and content["url"] == "https://news.example.com/a"
    assert content["tags"] == ["WorldNews", "budget"] and content["date"] == "2026-01-12T14:30:00+00:00"
    with store.session() as session:
        (change,) = session.scalars(select(StoryChangeRow).where(StoryChangeRow.story_id == sid))
        assert change.source == "capture" and change.origin == f"{feed}:4"
        assert session.scalars(select(DeliveryRow)).first() is None  # a draft: never posted


def test_an_offset_with_seconds_is_captured_at_the_same_instant_in_utc(tmp_path, planner, store):
    """A story's offset is whole minutes ("+05:30"); a feed may write seconds too (a historic local mean
    time): the entry is kept at the same instant, in UTC, instead of skipped as an invalid date."""
    feed = write(tmp_path, "feed.xml", rss(item(guid="urn:s", date="2026-01-12T14:30:00+05:30:15")))
    report = capture([feed], planner, now=NOW)
    assert not report.problems and len(report.captured) == 1
    assert drafts_in(store)[report.captured[0]]["date"] == "2026-01-12T08:59:45+00:00"


def test_an_html_title_is_reduced_to_text(tmp_path, planner, store):
    feed = write(tmp_path, "atom.xml", atom(
        "<entry><id>tag:e,1</id><title type='html'>&lt;em&gt;Big&lt;/em&gt; news &amp;amp; more</title>"
        "<link href='https://e.example.com/1'/><published>2025-06-01T08:00:00+02:00</published>"
        "<content type='html'>&lt;p&gt;From the content&lt;/p&gt;</content></entry>",
        title="Atom &amp; Co"))
    (sid,) = capture([feed], planner, now=NOW).captured
    content = drafts_in(store)[sid]
    assert content["headline"] == "Big news & more" and content["summary"] == "From the content"
    assert content["source"] == "Atom & Co" and content["date"] == "2025-06-01T08:00:00+02:00"


# ---------------------------------------------------------------------------- duplicates


def test_duplicates_in_one_feed_are_captured_once(tmp_path, planner, store):
    feed = write(tmp_path, "feed.xml", rss(
        item(title="First", link="https://news.example.com/1", guid="g1"),
        item(title="Same link", link="https://news.example.com/1", guid="g2"),
        item(title="Same id", link="https://news.example.com/3", guid="g1"),
        item(title="Other", link="https://news.example.com/4", guid="g4")))
    report = capture([feed], planner, now=NOW)
    assert len(report.captured) == 2 and len(drafts_in(store)) == 2
    assert [(s.entry, s.reason) for s in report.skipped] == [
        ("entry 2 ('Same link')", f"twice in this run (as entry 1 ('First') of {feed})"),
        ("entry 3 ('Same id')", f"twice in this run (as entry 1 ('First') of {feed})")]


def test_a_second_run_skips_what_was_captured_even_when_the_publisher_edited_it(tmp_path, planner, store):
    first = write(tmp_path, "feed.xml", rss(item(title="Original", link="https://news.example.com/1", guid="g1"),
                                             item(title="Two", link="https://news.example.com/2", guid="g2")))
    assert len(capture([first], planner, now=NOW).captured) == 2
    again = capture([first], planner, now=NOW)
    assert again.captured == [] and len(again.skipped) == 2 and again.skipped[0].reason.startswith("same id as story")
    # the same feed later: the headline edited (a new slug in the id) and the link moved: the entry id
    # (a guid that is not a URI, so namespaced by this feed) still finds it
    edited = write(tmp_path, "feed.xml", rss(
        item(title="Edited headline", link="https://news.example.com/moved", guid="g1"),
        item(title="Two, and a new guid", link="https://news.example.com/2", guid="g2-new")))
    report = capture([edited], planner, now=NOW)
    assert report.captured == [] and len(drafts_in(store)) == 2
    assert report.skipped[0].reason.startswith("same id as story 2026-01-12-original-")
    assert report.skipped[1].reason.startswith("same link as story 2026-01-12-two-")


def test_an_entry_whose_link_a_loaded_story_has_is_skipped(tmp_path, planner, store):
    planner.load([story("mine", url="https://news.example.com/1")], now=NOW)
    feed = write(tmp_path, "feed.xml", rss(item(link="https://news.example.com/1", guid="g1")))
    report = capture([feed], planner, now=NOW)
    assert report.captured == [] and report.skipped[0].reason == "same link as story mine"


def test_the_same_entry_in_two_feeds_is_captured_once(tmp_path, planner, store):
    one = write(tmp_path, "one.xml", rss(item(guid="shared")))
    two = write(tmp_path, "two.xml", rss(item(guid="shared")))
    report = capture([one, two], planner, now=NOW)
    assert len(report.captured) == 1 and report.skipped[0].feed == two


def test_the_same_plain_guid_in_two_feeds_is_two_entries(tmp_path, planner, store):
    # RSS guids that are not permalinks are often "1", "2": unique in their feed only
    one = write(tmp_path, "one.xml", rss(item(title="Town hall", link="https://a.example.com/1", guid="1")))
    two = write(tmp_path, "two.xml", rss(item(title="Floods", link="https://b.example.org/1", guid="1")))
    report = capture([one, two], planner, now=NOW)
    assert report.skipped == [] and len(report.captured) == 2
    again = capture([one, two], planner, now=NOW)
    assert again.captured == [] and [s.reason[:12] for s in again.skipped] == ["same id as s"] * 2
    # a guid that is a URI names one entry wherever it appears
    three = write(tmp_path, "3.xml", rss(item(title="Same", link="https://a.example.com/3", guid="tag:a,1:3")))
    four = write(tmp_path, "4.xml", rss(item(title="Same", link="https://b.example.org/3", guid="tag:a,1:3")))
    report = capture([three, four], planner, now=NOW)
    assert len(report.captured) == 1 and report.skipped[0].reason.startswith("twice in this run")


def test_a_plain_guid_is_namespaced_by_the_feed_without_its_credentials():
    plain = {entry_key("1", "", "", f"https://{who}a.example.com/feed?token={token}")
             for who in ("", "user:pw@") for token in ("abc", "rotated")}
    assert plain == {"https://a.example.com/feed 1"}
    assert entry_key("1", "", "", "https://b.example.org/feed") == "https://b.example.org/feed 1"
    assert entry_key("urn:uuid:1", "", "", "https://a.example.com/feed") == "urn:uuid:1"
    assert entry_key("", "https://a.example.com/1", "", "feed.xml") == "https://a.example.com/1"
    assert entry_key("", "", "Title", "feed.xml") == f"{Path('feed.xml').absolute()} Title"


def test_a_story_captured_before_guids_were_namespaced_is_still_found_by_its_link(tmp_path, planner, store):
    old_id = f"2026-01-12-a-story-{entry_digest('1')}"  # the id the bare guid '1' was given
    planner.load([story(old_id, url="https://news.example.com/a")], now=NOW, draft=True)
    feed = write(tmp_path, "feed.xml", rss(item(guid="1")))
    report = capture([feed], planner, now=NOW)
    assert report.captured == [] and report.skipped[0].reason == f"same link as story {old_id}"


def test_a_feed_url_with_credentials_is_never_stored_or_shown_with_them(planner, store):
    secret_url = "https://reader:s3cret@a.example.com/feed.xml?token=abc123"
    feeds_by_url = {secret_url: rss(item(title="Good", link="https://a.example.com/1", guid="1"),
                                    item(title=None, link="https://a.example.com/2"),
                                    item(title="Zone", link="https://a.example.com/3",
                                         date="Mon, 12 Jan 2026 14:30:00 XYZT")).encode(),
                    "https://u:pw2@b.example.org/feed?key=zzz999":
                        rss(item(link="https://a.example.com/1")).encode()}

    def fetch_known(url: str) -> Fetched:
        if url not in feeds_by_url:
            raise FeedError(url, "answered HTTP 404")
        return Fetched(feeds_by_url[url], "application/rss+xml")

    gone = "https://u:pw3@c.example.net/gone?token=qqq777"
    report = capture([secret_url, "https://u:pw2@b.example.org/feed?key=zzz999", gone], planner, now=NOW,
                     fetch=fetch_known)
    assert len(report.captured) == 2 and len(report.skipped) == 1 and len(report.problems) == 1
    assert report.feeds[0] == "https://a.example.com/feed.xml?********"
    with store.session() as session:
        origins = [row.origin for row in session.scalars(select(StoryRow))]
        origins += [row.origin for row in session.scalars(select(StoryChangeRow))]
    assert origins and all(o.startswith("https://a.example.com/feed.xml?********:") for o in origins)
    shown = json.dumps(report.to_dict()) + " ".join(origins)
    assert "a.example.com/feed.xml" in shown and "c.example.net/gone" in shown
    for secret in ("reader", "s3cret", "abc123", "pw2", "zzz999", "pw3", "qqq777"):
        assert secret not in shown


def test_a_feed_url_with_credentials_is_fetched_with_them_and_named_without(feeds, planner):
    feeds.pages["/feed.xml?token=abc123"] = (200, {}, rss(item()).encode())
    report = capture([f"http://reader:s3cret@127.0.0.1:{feeds.port}/feed.xml?token=abc123",
                      f"http://reader:s3cret@127.0.0.1:{feeds.port}/gone.xml?token=abc123"], planner, now=NOW)
    assert len(report.captured) == 1 and feeds.paths == ["/feed.xml?token=abc123", "/gone.xml?token=abc123"]
    (failure,) = report.unreadable
    assert str(failure) == f"{feeds.base}/gone.xml?********: answered HTTP 404 (check the address)"
    with pytest.raises(FeedError) as raised:
        fetch(f"http://reader:s3cret@127.0.0.1:{feeds.port}/gone.xml?token=abc123")
    assert "s3cret" not in str(raised.value) and "abc123" not in str(raised.value)


# ---------------------------------------------------------------------------- broken entries


def test_broken_entries_are_skipped_with_a_problem_naming_feed_and_entry_and_the_good_ones_captured(
        tmp_path, planner, store):
    feed = write(tmp_path, "feed.xml", rss(
        item(title="Good", link="https://news.example.com/good"),
        item(title=None, link="https://news.example.com/untitled", guid="tag:untitled"),
        item(title="Bad link", link="ftp://news.example.com/x"),
        item(title="Also good", link="https://news.example.com/good2")))
    report = capture([feed], planner, now=NOW)
    assert {drafts_in(store)[c]["headline"] for c in report.captured} == {"Good", "Also good"}
    assert [(p.file, p.line) for p in report.problems] == [(feed, 5), (feed, 6)]
    assert "entry 2 (id 'tag:untitled'): headline is required" in str(report.problems[0])
    assert "entry 3 ('Bad link'): url 'ftp://news.example.com/x' must start with http://" in str(report.problems[1])


def test_an_entry_the_planner_cannot_render_is_skipped_and_the_others_captured(tmp_path, store, settings):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x_root.j2").write_text(
        "{% if 'huge' in url %}{{ url }} " + "padding " * 60 + "{% else %}{{ headline }} {{ url }}{% endif %}")
    planner = Planner(store, settings, templates=load_templates(tmp_path / "t"))
    feed = write(tmp_path, "feed.xml", rss(item(title="Fine", link="https://news.example.com/1"),
                                           item(title="Huge", link="https://news.example.com/huge")))
    report = capture([feed], planner, now=NOW)
    assert [drafts_in(store)[c]["headline"] for c in report.captured] == ["Fine"]
    (problem,) = report.problems
    assert (problem.file, problem.line) == (feed, 5) and "entry 2 ('Huge'): cannot be rendered" in problem.message


def test_a_file_that_is_not_a_feed_or_is_missing_cannot_be_read(tmp_path, planner):
    page = write(tmp_path, "page.html", "<html><body>Hello</body></html>")
    good = write(tmp_path, "feed.xml", rss(item()))
    report = capture([page, str(tmp_path / "missing.xml"), good], planner, now=NOW)
    assert len(report.captured) == 1
    assert [e.feed for e in report.unreadable] == [page, str(tmp_path / "missing.xml")]
    assert "is not an RSS or Atom feed" in str(report.unreadable[0]) and "no such file" in str(report.unreadable[1])


def test_a_feed_whose_bytes_name_a_file_is_not_read_as_that_file(tmp_path, planner):
    real = write(tmp_path, "real.xml", rss(item()))
    trick = write(tmp_path, "trick.xml", real)  # its whole text is the path of a real feed
    report = capture([trick], planner, now=NOW)
    assert report.captured == [] and "is not an RSS or Atom feed" in str(report.unreadable[0])


def test_since_reads_a_date_only_entry_in_the_bot_time_zone(tmp_path, make_settings):
    settings = make_settings(timezone="Pacific/Auckland")
    store = Store(settings.database_url)
    try:
        feed = write(tmp_path, "feed.xml", rss(
            item(title="Day before", link="https://news.example.com/11", date="11 Jan 2025"),
            item(title="That day", link="https://news.example.com/12", date="12 Jan 2025")))
        # midnight of 12 January in Auckland is 11:00 UTC on the 11th: the 11th is older in the bot's zone
        since = dt.datetime(2025, 1, 12, tzinfo=ZoneInfo("Pacific/Auckland")).astimezone(UTC)
        report = capture([feed], Planner(store, settings), now=NOW, since=since, dry_run=True)
        assert report.older == 1 and [c.split("-", 3)[3][:8] for c in report.captured] == ["that-day"]
    finally:
        store.dispose()


def test_since_leaves_out_older_entries(tmp_path, planner, store):
    feed = write(tmp_path, "feed.xml", rss(
        item(title="Old", link="https://news.example.com/old", date="Wed, 31 Dec 2025 23:00:00 -0500"),
        item(title="New", link="https://news.example.com/new", date="Thu, 01 Jan 2026 05:30:00 +0100"),
        item(title="Day", link="https://news.example.com/day", date="2026-01-01")))
    report = capture([feed], planner, now=NOW, since=dt.datetime(2026, 1, 1, 4, 30, tzinfo=UTC))
    assert report.older == 1 and {drafts_in(store)[c]["headline"] for c in report.captured} == {"New", "Day"}


# ---------------------------------------------------------------------------- a feed served on 127.0.0.1


class FeedServer(LocalSite):
    """An HTTP server on 127.0.0.1 serving feeds by path (a redirect, an error and a large body too)."""

    def __init__(self) -> None:
        super().__init__()
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def route(self, h: http.server.BaseHTTPRequestHandler, *, head: bool) -> None:
        status, headers, body = self.pages.get(h.path, (404, {}, b"not here"))
        self.send(h, status, body, headers, head=head)

    @property
    def base(self) -> str:
        return self.url("")


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.close()


def test_a_feed_served_over_http_is_captured(feeds, planner, store):
    feeds.pages["/feed.xml"] = (200, {"Content-Type": "application/rss+xml"}, rss(
        item(title="From the web", link="https://news.example.com/web", guid="w1"),
        item(title="Relative", link="/stories/2", guid="w2")).encode())
    feeds.pages["/old"] = (301, {"Location": "/feed.xml"}, b"")
    report = capture([f"{feeds.base}/old"], planner, now=NOW)
    (sid,) = report.captured
    assert feeds.paths == ["/old", "/feed.xml"]
    assert drafts_in(store)[sid]["headline"] == "From the web"
    # a relative link is resolved against the feed's address; X would not link an IP address, so the
    # entry is refused (a real site's feed resolves to its domain)
    (problem,) = report.problems
    assert f"entry 2 ('Relative'): url '{feeds.base}/stories/2' has an IP address as its host" in str(problem)
    assert capture([f"{feeds.base}/old"], planner, now=NOW).skipped[0].reason == f"same id as story {sid}"
    # named by another address, the feed's guids ('w1' is not a URI) are another feed's: its link finds it
    again = capture([f"{feeds.base}/feed.xml"], planner, now=NOW)
    assert again.skipped[0].reason == f"same link as story {sid}"


def test_a_feed_served_over_http_reads_in_the_charset_its_server_names(feeds, planner, store):
    """The charset of the Content-Type header decides how a served feed reads (RFC 3023), and a feed
    whose XML declaration names none reads as UTF-8, as XML says, also when the header names none."""
    undeclared = rss(item(title="Łódź votes", link="https://news.example.com/lodz", guid="l1")).replace(
        ' encoding="utf-8"', "")
    feeds.pages["/latin2.xml"] = (200, {"Content-Type": "application/rss+xml; charset=iso-8859-2"},
                                  undeclared.encode("iso-8859-2"))
    feeds.pages["/plain.xml"] = (200, {}, undeclared.replace("Łódź votes", "Zürich → Genève").replace(
        "lodz", "zurich").replace("l1", "z1").encode("utf-8"))
    report = capture([f"{feeds.base}/latin2.xml", f"{feeds.base}/plain.xml"], planner, now=NOW)
    headlines = sorted(drafts_in(store)[sid]["headline"] for sid in report.captured)
    assert headlines == ["Zürich → Genève", "Łódź votes"], report.problems


def test_a_feed_url_that_fails_is_unreadable_and_others_are_still_captured(feeds, planner):
    feeds.pages["/feed.xml"] = (200, {}, rss(item()).encode())
    report = capture([f"{feeds.base}/gone.xml", f"{feeds.base}/feed.xml"], planner, now=NOW)
    assert len(report.captured) == 1
    (failure,) = report.unreadable
    assert failure.feed == f"{feeds.base}/gone.xml" and "answered HTTP 404" in str(failure)


def test_a_feed_fetch_is_capped_in_size_and_time(feeds):
    feeds.pages["/big.xml"] = (200, {}, b"x" * 5000)
    with pytest.raises(FeedError, match="sends more than 1,000 bytes"):
        fetch(f"{feeds.base}/big.xml", max_bytes=1000)
    feeds.pages["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(FeedError, match="redirects more than"):
        fetch(f"{feeds.base}/loop")
    with pytest.raises(FeedError, match="no such file"):
        fetch("/nonexistent/feed.xml")


def test_an_invalid_feed_url_is_unreadable_and_the_other_feeds_are_captured(tmp_path, feeds, planner):
    for bad in ("http://[::1", "http://\x00x/"):
        with pytest.raises(FeedError, match="the feed's address is not a valid URL"):
            fetch(bad)
    feeds.pages["/moved"] = (301, {"Location": "http://[::1"}, b"")
    good = write(tmp_path, "feed.xml", rss(item()))
    report = capture(["http://[::1", f"{feeds.base}/moved", good], planner, now=NOW)
    assert len(report.captured) == 1
    assert [e.feed for e in report.unreadable] == ["http://[::1", f"{feeds.base}/moved"]
    assert "cannot be fetched: RemoteProtocolError" in str(report.unreadable[1])  # httpx checks a Location


class DripServer(LocalSite):
    """Answers a byte of its headers at a time (``/drip``), after a slow redirect (``/slow``)."""

    def route(self, h: http.server.BaseHTTPRequestHandler, *, head: bool) -> None:
        if h.path == "/slow":
            self.stop.wait(0.6)
            self.send(h, 302, b"", {"Location": "/drip"})
            return
        h.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for byte in b"X-Pad: " + b"a" * 80 + b"\r\nContent-Length: 2\r\n\r\nok":  # 8 s in all
            if self.stop.wait(0.1):
                return
            h.wfile.write(bytes([byte]))
            h.wfile.flush()


def test_a_feed_that_drips_its_headers_is_cut_off_at_the_deadline_redirects_included():
    import time

    server = DripServer().start()
    try:
        for path in ("/drip", "/slow"):
            began = time.monotonic()
            with pytest.raises(FeedError, match="took longer than 1.5 s to fetch"):
                fetch(server.url(path), timeout=1.5)
            assert time.monotonic() - began < 3.0, path
        assert server.paths == ["/drip", "/slow", "/drip"]
    finally:
        server.close()


# ---------------------------------------------------------------------------- the command line


def test_capture_on_the_command_line_then_approve(tmp_path, monkeypatch, capsys, feeds):
    isolate(tmp_path, monkeypatch)
    feeds.pages["/feed.xml"] = (200, {}, rss(
        item(title="Good", link="https://news.example.com/good", guid="g1"),
        item(title=None, link="https://news.example.com/untitled")).encode())
    feed_url = f"{feeds.base}/feed.xml"
    code, out, err = run_cli(capsys, "capture", feed_url)
    assert code == 0, err
    assert "Captured 1 new drafts from 1 feed (2 entries): 0 already captured, 1 broken (skipped)." in " ".join(
        out.split())
    assert f"{feed_url}:5: -: entry 2: headline is required" in " ".join(err.split())
    code, out, err = run_cli(capsys, "capture", feed_url, "--json")
    report = json.loads(out)
    assert code == 0 and report["captured"] == [] and report["skipped"][0]["reason"].startswith("same id")
    code, out, _ = run_cli(capsys, "status", "--json")
    view = json.loads(out)
    (draft,) = view["draft_stories"]
    assert view["drafts"] == 1 and view["counts"] == {}
    code, out, err = run_cli(capsys, "approve", draft["id"])
    assert code == 0 and f"Approved 1: {draft['id']}" in out
    code, out, _ = run_cli(capsys, "status", "--json")
    assert json.loads(out)["drafts"] == 0 and json.loads(out)["counts"]["pending"] > 0


def test_capture_exits_1_when_a_feed_cannot_be_read(tmp_path, monkeypatch, capsys):
    isolate(tmp_path, monkeypatch)
    write(tmp_path, "feed.xml", rss(item()))
    code, out, err = run_cli(capsys, "capture", "feed.xml", "missing.xml", "--since", "2026-01-01")
    assert code == 1 and "missing.xml: no such file" in err
    assert "Captured 1 new drafts" in out
    code, out, err = run_cli(capsys, "capture", "feed.xml", "--since", "2026-02-01", "--json")
    assert code == 0 and json.loads(out)["older"] == 1


def test_capture_dry_run_writes_nothing(tmp_path, monkeypatch, capsys):
    isolate(tmp_path, monkeypatch)
    write(tmp_path, "feed.xml", rss(item()))
    code, out, _ = run_cli(capsys, "capture", "feed.xml", "--dry-run", "--json")
    assert code == 0 and len(json.loads(out)["captured"]) == 1
    code, out, _ = run_cli(capsys, "status", "--json")
    assert json.loads(out)["drafts"] == 0


# ---------------------------------------------------------------------------- needs a reveal


def reveal_world(make_settings: Any, **options: Any) -> tuple[Store, Any]:
    settings = make_settings(**options)
    store = Store(settings.database_url)
    planner = Planner(store, settings)
    planner.load([story("soon", dt.datetime(2025, 1, 5, 12, tzinfo=UTC), one_year_later=""),
                  story("revealed", dt.datetime(2025, 1, 6, 12, tzinfo=UTC)),
                  story("later", dt.datetime(2025, 1, 12, 12, tzinfo=UTC), one_year_later=" "),
                  story("far", dt.datetime(2025, 3, 1, 12, tzinfo=UTC), one_year_later=""),
                  story("past", dt.datetime(2024, 12, 20, 12, tzinfo=UTC), one_year_later="")], now=NOW)
    planner.load([story("draft", dt.datetime(2025, 1, 3, 12, tzinfo=UTC), one_year_later="")], now=NOW, draft=True)
    return store, settings


def test_status_lists_drafts_and_the_stories_that_need_a_reveal(make_settings):
    from bot import ops

    store, settings = reveal_world(make_settings)
    try:
        view = ops.status(store, NOW, reveal_lead=settings.reveal_lead)
        assert [(d.id, d.draft) for d in view.needs_reveal] == [("draft", True), ("soon", False), ("later", False)]
        assert view.drafts == 1 and [d.id for d in view.draft_stories] == ["draft"]
        assert view.draft_stories[0].needs_reveal and view.unrendered == 0  # a draft is not "unrendered"
        data = view.to_dict()
        assert [d["id"] for d in data["needs_reveal"]] == ["draft", "soon", "later"]
        assert data["draft_stories"][0]["due"] == "2026-01-03T12:00:00+00:00"
        short = ops.status(store, NOW, reveal_lead=dt.timedelta(days=3))
        assert [d.id for d in short.needs_reveal] == ["draft"]
        assert ops.status(store, NOW).needs_reveal == []  # the dashboard's call, unchanged
        from bot.web.editor import editor_view

        assert editor_view(store, settings, "soon", now=NOW).needs_reveal
        assert editor_view(store, settings, "later", now=NOW).needs_reveal  # a reveal of blanks is none
        ops.skip(store, "soon", NOW)  # it goes out no more: it needs no reveal
        assert [d.id for d in ops.needs_reveal(store, NOW, settings.reveal_lead, followup_delay=settings.followup_delay)] == ["draft", "later"]
        assert not editor_view(store, settings, "soon", now=NOW).needs_reveal  # the story page agrees
    finally:
        store.dispose()


def test_status_and_agenda_on_the_command_line_show_drafts_apart_and_mark_missing_reveals(
        tmp_path, monkeypatch, capsys):
    import time_machine

    from bot import cli

    isolate(tmp_path, monkeypatch)
    monkeypatch.setattr(cli.out, "_width", 200)  # a wide terminal: the agenda's table shows every column
    db = f"sqlite:///{tmp_path / 'queue.db'}"
    with time_machine.travel(NOW, tick=False):
        store, _settings = reveal_world(lambda **o: load_settings({"database_url": db, **o}, environ={},
                                                                  env_file=None))
        store.dispose()
        code, out, _ = run_cli(capsys, "status", db=db)
        flat = " ".join(out.split())
        assert code == 0 and "6 stories, 1 draft (not posted until approved)" in flat
        assert "Drafts (1; posted only once approved" in flat and "2026-01-03 12:00 UTC draft · needs a reveal" in flat
        assert "Needs a reveal (due within 14.0d" in flat
        assert "2026-01-05 12:00 UTC soon" in flat and "2026-01-12 12:00 UTC later" in flat and " far" not in flat
        code, out, _ = run_cli(capsys, "agenda", "--to", "2026-01-31", db=db)
        flat = " ".join(out.split())
        assert "soon ⚠ needs a reveal" in flat and "revealed ⚠" not in flat
        assert "2 of these stories need a reveal" in flat and ": later, soon" in flat
        assert "1 draft, not posted until approved" in flat and "draft ⚠ needs a reveal" in flat
        code, out, _ = run_cli(capsys, "agenda", "--to", "2026-01-31", "--json", db=db)
        rows = json.loads(out)
        assert {r["story_id"] for r in rows if r["needs_reveal"]} == {"soon", "later"}
        assert "draft" not in {r["story_id"] for r in rows} and all("status" in r for r in rows)
        code, out, _ = run_cli(capsys, "agenda", "--drafts", "--json", db=db)
        assert [d["id"] for d in json.loads(out)] == ["draft"]
        code, out, _ = run_cli(capsys, "agenda", "--from", "2026-02-01", "--drafts", db=db)
        assert "No drafts are due in that period." in out


def test_notifications_tell_missing_reveals_within_the_reveal_lead_drafts_too(make_settings):
    sent: list[tuple[str, str]] = []

    def send(urls: list[str], title: str, body: str) -> list[bool]:
        sent.append((title, body))
        return [True]

    store, settings = reveal_world(make_settings, notify="json://127.0.0.1:9/hook")
    try:
        told = Notifier(settings, store, send=send).check(NOW)
        assert [n.key for n in told] == ["reveal:draft", "reveal:soon", "reveal:later"]
        assert "draft (a draft) goes out" in sent[0][1]
        assert "later goes out 2026-01-12" in sent[0][1]  # 11 days ahead: told with the 14-day default
        short = make_settings(notify="json://127.0.0.1:9/hook", reveal_lead="1d")
        store.dispose()
        store = Store(short.database_url)
        with store.session() as session:  # forget what was told, to ask again with a lead of one day
            session.execute(NoticeRow.__table__.delete())
        assert [n.key for n in Notifier(short, store, send=send).notices(NOW)] == []
        assert [n.key for n in Notifier(short, store, send=send).notices(NOW + dt.timedelta(days=3.5))] == \
            ["reveal:soon"]
    finally:
        store.dispose()


def test_the_loop_capture_approve_write_a_reveal_and_watch_it_go_out(tmp_path, planner, store, engine, fakes, clock):
    from bot.sources.stories import load_stories

    feed = write(tmp_path, "feed.xml", rss(item(title="Council votes", link="https://news.example.com/vote",
                                                guid="v1", date="Fri, 02 Jan 2025 12:00:00 +0000")))
    (sid,) = capture([feed], planner, now=clock["t"]).captured
    clock["t"] = dt.datetime(2026, 1, 2, 12, 1, tzinfo=UTC)
    engine.run_once()
    assert all(not fake.posts for fake in fakes.values())  # a draft: nothing goes out on its anniversary
    clock["t"] = dt.datetime(2026, 1, 1, tzinfo=UTC)
    reveal_file = tmp_path / "reveal.yaml"
    reveal_file.write_text(f"id: {sid}\ndate: 2025-01-02T12:00:00+00:00\nheadline: Council votes\n"
                          "url: https://news.example.com/vote\none_year_later: The budget held all year.\n")
    assert planner.approve([sid], now=clock["t"]).approved == [sid]
    assert planner.load(load_stories([reveal_file]), now=clock["t"]).updated == [sid]
    for hours in (12, 48):
        clock["t"] = dt.datetime(2026, 1, 2, tzinfo=UTC) + dt.timedelta(hours=hours, minutes=1)
        engine.run_once()
    posted = [post for fake in fakes.values() for post in fake.posts]
    assert any("Council votes" in str(post) for post in posted)
    assert any("The budget held all year." in str(post) for post in posted)
