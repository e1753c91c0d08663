"""Link checks before each anniversary, against real local servers on 127.0.0.1: a site answering 200,
404, 429, redirect chains and loops, a slow answer, a HEAD refused; and a stand-in of the Wayback
Machine's lookup (``/wayback/available``) offering a copy or none. The run loop checks a due story;
``status``, ``links`` and the story page flag a broken link; the archived copy replaces it."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bot import links
from bot.config import load_settings
from bot.links import LinkChecker, broken_links, result_for, use_archive
from bot.models import LinkCheckRow, StoryChangeRow, StoryRow
from bot.notify import Notifier
from bot.planner import Planner
from bot.runner import run_forever
from bot.store import Store
from bot.web import create_app
from posts.errors import BotError
from tests.cli_support import isolate, run_cli
from tests.conftest import story
from tests.local_site import LocalSite

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = dt.date(2025, 3, 3)
"""The stories' date: their anniversary is two days after :data:`NOW`, within the 3 days checked ahead."""


class Site(LocalSite):
    """A loopback web site whose paths answer as dead and living links do; it records each request as
    ``(method, path)``. ``/wayback/available`` is the archive's lookup: a snapshot for any URL with
    ``gone`` in it, none for the others."""

    def __init__(self) -> None:
        super().__init__()
        self.flaky = 404
        """What ``/flaky`` answers."""

    def route(self, h: http.server.BaseHTTPRequestHandler, *, head: bool) -> None:
        path, _, query = h.path.partition("?")
        if path == "/ok":
            self.send(h, 200, b"<html>fine</html>" * 1000, head=head)
        elif path.startswith("/gone"):
            self.send(h, 404, b"not here", head=head)
        elif path == "/flaky":
            self.send(h, self.flaky, b"?", head=head)
        elif path == "/busy":
            self.send(h, 429, b"slow down", head=head)
        elif path == "/error":
            self.send(h, 503, b"down", head=head)
        elif path.startswith("/hop/"):  # /hop/3 -> /hop/2 -> /hop/1 -> /hop/0 -> /ok
            left = int(path.rsplit("/", 1)[1])
            self.send(h, 302, b"", {"Location": f"/hop/{left - 1}" if left else "/ok"}, head=head)
        elif path == "/loop":
            self.send(h, 302, b"", {"Location": "/loop"}, head=head)
        elif path == "/slow":
            self.stop.wait(5)
            self.send(h, 200, b"late", head=head)
        elif path == "/get-only":
            self.send(h, 405 if head else 200, b"" if head else b"hello", head=head)
        elif path == "/wayback/available":
            asked = urllib.parse.parse_qs(query)
            url, stamp = asked["url"][0], asked["timestamp"][0]
            closest = {"available": True, "status": "200", "timestamp": stamp + "120000",
                       "url": f"http://web.archive.org/web/{stamp}120000/{url}"}
            body = {"url": url, "archived_snapshots": {"closest": closest} if "gone" in url else {}}
            self.send(h, 200, json.dumps(body).encode(), {"Content-Type": "application/json"}, head=head)
        else:
            self.send(h, 500, b"?", head=head)


@pytest.fixture
def site() -> Iterator[Site]:
    running = Site().start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def on(make_settings, site):
    """Settings with link checks on, a 1 s timeout and the archive lookup at the local stand-in."""
    return make_settings(link_check="on", link_check_timeout="1s",
                         archive_lookup_url=site.url("/wayback/available"))


def queue(store, settings, *stories, draft=None):
    Planner(store, settings).load(list(stories), now=NOW - dt.timedelta(days=30), draft=draft)


def refused_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------- what a link answers


@pytest.mark.parametrize(("path", "ok", "detail"), [
    ("/ok", True, "HTTP 200"),
    ("/gone", False, "HTTP 404"),
    ("/error", False, "HTTP 503"),
    ("/hop/3", True, "HTTP 200 after 4 redirects, at http://127.0.0.1:PORT/ok"),
    ("/loop", False, "too many redirects (more than 10)"),
    ("/slow", False, "timed out after 1 s"),
    ("/get-only", True, "HTTP 200"),
])
def test_a_link_is_checked_and_the_answer_kept(store, on, site, path, ok, detail):
    queue(store, on, story("a", DAY, url=site.url(path)))
    result = LinkChecker(store, on).check("a", NOW)
    assert (result.ok, result.detail) == (ok, detail.replace("PORT", str(site.port)))
    assert result_for(store, "a") == result
    with store.session() as session:
        row = session.get(LinkCheckRow, "a")
        assert (row.url, row.ok, row.detail, row.checked_at) == (site.url(path), ok, result.detail, NOW)


def test_head_refused_is_asked_again_with_get_and_a_404_is_confirmed_by_get(store, on, site):
    queue(store, on, story("a", DAY, url=site.url("/get-only")), story("b", DAY, url=site.url("/gone")))
    checker = LinkChecker(store, on)
    checker.check("a", NOW)
    checker.check("b", NOW)
    assert site.requests[:2] == [("HEAD", "/get-only"), ("GET", "/get-only")]
    assert [r for r in site.requests if r[1] == "/gone"] == [("HEAD", "/gone"), ("GET", "/gone")]
    assert checker.http.headers["User-Agent"].startswith("oneyearago/")


def test_no_answer_at_all_is_a_broken_link(store, on):
    port = refused_port()
    queue(store, on, story("refused", DAY, url=f"http://127.0.0.1:{port}/page"),
          story("nohost", DAY, url="http://no-such-host.invalid/page"))
    checker = LinkChecker(store, on)
    assert checker.check("refused", NOW).detail == "connection refused"
    assert checker.check("nohost", NOW).detail == "no such host"


def test_rate_limited_is_not_broken_and_is_asked_again_an_hour_later(store, on, site):
    queue(store, on, story("a", DAY, url=site.url("/busy")))
    checker = LinkChecker(store, on)
    result = checker.check("a", NOW)
    assert result.ok and result.rate_limited and result.detail.startswith("rate limited (HTTP 429)")
    assert broken_links(store, NOW) == [] and result.archive_url is None
    assert checker.due(NOW + dt.timedelta(minutes=59)) == []
    assert checker.due(NOW + dt.timedelta(hours=1)) == ["a"]


# ---------------------------------------------------------------------------- the archived copy


def test_a_broken_link_gets_the_archived_copy_from_the_story_date(store, on, site):
    queue(store, on, story("a", DAY, url=site.url("/gone/page")))
    result = LinkChecker(store, on).check("a", NOW)
    assert result.broken
    assert result.archive_url == f"https://web.archive.org/web/20250303120000/{site.url('/gone/page')}"
    lookup = [path for method, path in site.requests if path.startswith("/wayback/")]
    assert len(lookup) == 1 and "timestamp=20250303" in lookup[0]


def test_no_archived_copy_when_the_archive_has_none_or_the_lookup_is_off(store, make_settings, on, site):
    queue(store, on, story("a", DAY, url=site.url("/error")))
    assert LinkChecker(store, on).check("a", NOW).archive_url is None  # the archive has no snapshot
    assert any(path.startswith("/wayback/") for _, path in site.requests)
    site.requests.clear()
    off = make_settings(link_check="on", link_check_timeout="1s")
    queue(store, off, story("b", DAY, url=site.url("/gone")))
    result = LinkChecker(store, off).check("b", NOW)
    assert result.broken and result.archive_url is None
    assert not any(path.startswith("/wayback/") for _, path in site.requests)  # never asked
    assert LinkChecker(store, on).check("a", NOW).archive_url is None  # a working site is never looked up
    site.requests.clear()
    queue(store, on, story("c", DAY, url=site.url("/ok")))
    LinkChecker(store, on).check("c", NOW)
    assert not any(path.startswith("/wayback/") for _, path in site.requests)


def test_use_archive_makes_the_copy_the_link_and_records_the_change(store, on, site):
    queue(store, on, story("a", DAY, url=site.url("/gone")))
    with pytest.raises(BotError, match="no archived copy is offered"):
        use_archive(store, on, "a", now=NOW)  # not checked yet
    copy = LinkChecker(store, on).check("a", NOW).archive_url
    use_archive(store, on, "a", now=NOW, origin="dashboard")
    with store.session() as session:
        row = session.get(StoryRow, "a")
        assert row.content["url"] == copy and row.edited_at == NOW
        change = session.scalars(select(StoryChangeRow).where(StoryChangeRow.story_id == "a")
                                 .order_by(StoryChangeRow.id.desc())).first()
    assert (change.source, change.changes["url"]) == ("dashboard", [site.url("/gone"), copy])
    assert result_for(store, "a") is None and broken_links(store, NOW) == []  # the old link's check is done with
    assert LinkChecker(store, on).due(NOW) == ["a"]  # the new link is checked in its turn


# ---------------------------------------------------------------------------- which links, when


def test_due_links_are_those_of_stories_due_soon_drafts_too_bounded(store, make_settings, site):
    settings = make_settings(link_check="on", link_check_timeout="1s")
    queue(store, settings, story("soon", DAY, url=site.url("/ok")), story("later", dt.date(2025, 3, 20),
          url=site.url("/ok")), story("past", dt.date(2025, 2, 20), url=site.url("/ok")), story("nourl", DAY, url=""))
    queue(store, settings, story("draft", DAY, url=site.url("/gone")), draft=True)
    checker = LinkChecker(store, settings)
    assert sorted(checker.due(NOW)) == ["draft", "soon"]
    assert len(LinkChecker(store, settings, limit=1).due(NOW)) == 1
    assert {r.story_id for r in checker.check_due(NOW)} == {"draft", "soon"}
    assert checker.due(NOW + dt.timedelta(hours=1)) == []  # checked: not again
    assert checker.due(NOW + dt.timedelta(days=1)) == ["draft"]  # broken: once a day, to see it come back
    Planner(store, settings).load([story("soon", DAY, url=site.url("/hop/1"))], now=NOW)
    assert checker.due(NOW + dt.timedelta(hours=1)) == ["soon"]  # a changed link is checked again


def test_a_link_that_comes_back_is_no_longer_flagged(store, on, site):
    queue(store, on, story("a", DAY, url=site.url("/flaky")))
    checker = LinkChecker(store, on)
    checker.check_due(NOW)
    assert [r.story_id for r in broken_links(store, NOW)] == ["a"] and result_for(store, "a").archive_url is None
    site.flaky = 200  # the site is back
    assert checker.check_due(NOW + dt.timedelta(hours=23)) == []
    assert checker.check_due(NOW + dt.timedelta(days=1))[0].ok
    assert broken_links(store, NOW) == [] and result_for(store, "a").detail == "HTTP 200"


@pytest.mark.parametrize(("options", "on_"), [
    ({"link_check": "off", "mode": "live"}, False),
    ({"link_check": "auto"}, False),  # sandbox mode
    ({"link_check": "auto", "mode": "live"}, True),
    ({"link_check": "on"}, True),
])
def test_nothing_is_checked_when_link_checks_are_off(store, make_settings, site, options, on_):
    settings = make_settings(**options)
    queue(store, settings, story("a", DAY, url=site.url("/gone")))
    checked = LinkChecker(store, settings).tick(NOW)
    assert links.enabled(settings) is on_ and bool(checked) is on_
    assert bool(site.requests) is on_


# ---------------------------------------------------------------------------- the run loop


def test_the_run_loop_checks_a_due_story(store, on, site, engine, clock):
    queue(store, on, story("a", DAY, url=site.url("/gone")))
    clock["t"] = NOW
    stop = threading.Event()
    checker = LinkChecker(store, on, clock=lambda: clock["t"])
    thread = threading.Thread(target=run_forever, args=(engine,), kwargs={
        "recheck": dt.timedelta(seconds=1), "stop": stop, "install_signals": False, "link_checker": checker})
    thread.start()
    try:
        for _ in range(100):
            if result_for(store, "a") is not None:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert result_for(store, "a").detail == "HTTP 404"


class FailingChecker(LinkChecker):
    """A checker whose every check fails (its database gone, say)."""

    def check_due(self, now=None):
        raise RuntimeError("the link check broke")


def test_a_failing_link_check_never_stops_the_posts(store, on, engine, clock, fakes, caplog):
    queue(store, on, story("a", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)))
    clock["t"] = NOW
    stop = threading.Event()
    posted = []

    def on_report(report):
        posted.append(report.count("posted"))
        if sum(posted) >= 1:
            stop.set()

    run_forever(engine, recheck=dt.timedelta(seconds=1), stop=stop, on_report=on_report, install_signals=False,
                link_checker=FailingChecker(store, on, clock=lambda: clock["t"]))
    assert sum(posted) >= 1
    assert "the link check failed" in caplog.text


# ---------------------------------------------------------------------------- notify


def test_a_broken_link_of_a_story_due_soon_is_told_once(store, make_settings, site):
    settings = make_settings(link_check="on", link_check_timeout="1s", notify="json://127.0.0.1:9/hook",
                             archive_lookup_url=site.url("/wayback/available"))
    queue(store, settings, story("a", DAY, url=site.url("/gone")), story("b", DAY, url=site.url("/ok")))
    LinkChecker(store, settings).check_due(NOW)
    sent: list[str] = []
    notifier = Notifier(settings, store, send=lambda urls, title, body: (sent.append(body), [True])[1])
    told = notifier.check(NOW)
    keys = [n.key for n in told if n.key.startswith("link:")]
    assert keys == [f"link:a:{site.url('/gone')}"]
    assert "its link is broken (HTTP 404)" in sent[0] and "archived copy: https://web.archive.org/" in sent[0]
    assert not [n for n in notifier.check(NOW + dt.timedelta(minutes=1)) if n.key.startswith("link:")]


# ---------------------------------------------------------------------------- CLI and dashboard


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    return tmp_path


def queue_for_cli(site: Site, path: str) -> None:
    """Queue (in the CLI's ``queue.db``) a story going out in two days by the real clock, as the CLI runs.

    It is queued through the planner: a story file may not name an IP address (X would not link it)."""
    soon = (dt.datetime.now(UTC) + dt.timedelta(days=2)).date()
    day = dt.date(soon.year - 1, soon.month, min(soon.day, 28 if soon.month == 2 else 31))
    settings = load_settings({"database_url": "sqlite:///queue.db"}, environ={}, env_file=None)
    store = Store(settings.database_url)
    try:
        Planner(store, settings).load([story("dead", day, url=site.url(path))], now=dt.datetime.now(UTC))
    finally:
        store.dispose()


def test_links_status_and_use_archive_on_the_command_line(cli_env, capsys, site):
    queue_for_cli(site, "/gone/page")
    lookup = ("-s", f"archive_lookup_url={site.url('/wayback/available')}", "-s", "link_check_timeout=1s")
    code, out, err = run_cli(capsys, *lookup, "links")
    assert code == 0 and "No link checked yet" in out
    code, out, err = run_cli(capsys, *lookup, "links", "--check")
    assert code == 0, err
    assert "Checked 1 link: 1 broken." in out and f"BROKEN dead · {site.url('/gone/page')} · HTTP 404" in out
    copy = json.loads(run_cli(capsys, "links", "--json")[1])[0]["archive_url"]
    assert copy.startswith("https://web.archive.org/web/") and copy.endswith(site.url("/gone/page"))

    code, out, _ = run_cli(capsys, "status")
    flat = " ".join(out.split())
    assert "Broken links" in flat and "dead HTTP 404" in flat and site.url("/gone/page") in flat
    assert f"archived copy: {copy}" in flat
    data = json.loads(run_cli(capsys, "status", "--json")[1])
    assert [(b["story_id"], b["detail"], b["archive_url"]) for b in data["broken_links"]] == [("dead", "HTTP 404", copy)]

    code, out, err = run_cli(capsys, "links", "--use-archive", "dead")
    assert code == 0 and "its link is now the archived copy" in out, err
    data = json.loads(run_cli(capsys, "status", "--json")[1])
    assert data["broken_links"] == []
    code, out, err = run_cli(capsys, "links", "--use-archive", "dead")
    assert code == 1 and "no archived copy is offered" in err


def test_run_once_checks_the_links_when_on(cli_env, capsys, site):
    queue_for_cli(site, "/gone")
    assert run_cli(capsys, "run", "--once")[0] == 0  # sandbox: auto is off
    assert site.requests == []
    code, _, err = run_cli(capsys, "-s", "link_check=on", "-s", "link_check_timeout=1s", "run", "--once")
    assert code == 0, err
    assert ("HEAD", "/gone") in site.requests
    assert json.loads(run_cli(capsys, "status", "--json")[1])["broken_links"][0]["detail"] == "HTTP 404"


@pytest.fixture
def client(store, on) -> TestClient:
    app = create_app(on, store, clock=lambda: NOW)
    return TestClient(app, base_url="http://127.0.0.1:8080", follow_redirects=False)


def test_the_story_page_flags_a_broken_link_and_replaces_it_with_the_archived_copy(store, on, site, client):
    queue(store, on, story("a", DAY, url=site.url("/gone")), story("b", DAY, url=site.url("/ok")))
    page = client.get("/story/a")
    assert "linkcheck" not in page.text  # never checked: nothing said
    LinkChecker(store, on).check_due(NOW)
    copy = result_for(store, "a").archive_url
    page = client.get("/story/a")
    assert "link is broken" in page.text and "HTTP 404" in page.text
    assert f'href="{copy}"' in page.text and 'action="/use-archive/a"' in page.text
    assert "Link checked" in client.get("/story/b").text and "/use-archive/b" not in client.get("/story/b").text

    refused = client.post("/use-archive/a", data={"csrf_token": "forged"})
    assert refused.status_code == 403  # nothing changed without the page's token
    assert result_for(store, "a").url == site.url("/gone")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
    nothing = client.post("/use-archive/b", data={"csrf_token": token})  # its link works: nothing offered
    assert nothing.status_code == 400 and "no archived copy is offered" in nothing.text
    done = client.post("/use-archive/a", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == "/story/a"
    with store.session() as session:
        assert session.get(StoryRow, "a").content["url"] == copy
        sources = [c.source for c in session.scalars(select(StoryChangeRow).where(StoryChangeRow.story_id == "a"))]
    assert sources == ["file", "dashboard"]
    after = client.get("/story/a")
    assert "link is broken" not in after.text and domain_of(copy) in after.text


def domain_of(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""
