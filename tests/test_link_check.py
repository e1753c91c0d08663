"""Link checks before each anniversary, against real local servers on 127.0.0.1: a site answering 200,
404, 429, redirect chains and loops, a slow answer, one dripping its headers, a HEAD refused; and a
stand-in of the Wayback Machine's lookup (``/wayback/available``) offering a copy or none. A link or a
redirect to an address that is not public is never asked (a server on 127.0.0.2 stands for one inside
the bot's network; 127.0.0.1 is allowed, as ``ONEYEARAGO_LINK_CHECK_ALLOW_PRIVATE`` lets an operator).
The run loop checks a due story; ``status``, ``links`` and the story page flag a broken link; the
archived copy replaces it."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
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
from tests.run_loop import looping, wait_for
from tests.standins.reddit import _self_signed

UTC = dt.UTC
ALLOW = "127.0.0.1"
"""The test sites' address, allowed (``link_check_allow_private``) although it is a loopback address."""
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAY = dt.date(2025, 3, 3)
"""The stories' date: their anniversary is two days after :data:`NOW`, within the 3 days checked ahead."""


class Site(LocalSite):
    """A loopback web site whose paths answer as dead and living links do; it records each request as
    ``(method, path)``. ``/wayback/available`` is the archive's lookup: a snapshot for any URL with
    ``gone`` in it, none for the others."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        super().__init__(address)
        self.flaky = 404
        """What ``/flaky`` answers."""
        self.headers: list[dict[str, str]] = []
        """The headers of each request."""

    def route(self, h: http.server.BaseHTTPRequestHandler, *, head: bool) -> None:
        self.headers.append(dict(h.headers))
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
        elif path.startswith("/slowhop/"):  # like /hop/, each answer after 0.4 s
            self.stop.wait(0.4)
            left = int(path.rsplit("/", 1)[1])
            self.send(h, 302, b"", {"Location": f"/slowhop/{left - 1}" if left else "/ok"}, head=head)
        elif path == "/to":  # /to?URL redirects to URL
            self.send(h, 302, b"", {"Location": urllib.parse.unquote(query)}, head=head)
        elif path == "/drip":  # the status line at once, then a header a byte every 0.2 s, for ever
            h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
            while not self.stop.wait(0.2):
                h.wfile.write(b"a")
        elif path.startswith("/admin/"):  # what an internal service would do when asked
            self.send(h, 200, b"done", head=head)
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
def internal() -> Iterator[Site]:
    """A site on 127.0.0.2: a service inside the bot's network that no link may reach."""
    running = Site("127.0.0.2").start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def on(make_settings, site):
    """Settings with link checks on, a 1 s timeout, the test sites allowed and the archive lookup at the
    local stand-in."""
    return make_settings(link_check="on", link_check_timeout="1s", link_check_allow_private=ALLOW,
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
    assert {h["User-Agent"] for h in site.headers} == {links.USER_AGENT}
    assert links.USER_AGENT.startswith("oneyearago/")


def test_no_answer_at_all_is_a_broken_link(store, on):
    port = refused_port()
    queue(store, on, story("refused", DAY, url=f"http://127.0.0.1:{port}/page"),
          story("nohost", DAY, url="http://no-such-host.invalid/page"))
    checker = LinkChecker(store, on)
    assert checker.check("refused", NOW).detail == "connection refused"
    assert checker.check("nohost", NOW).detail == "no such host"


def test_a_certificate_the_bot_does_not_trust_is_a_tls_error(store, on, tmp_path):
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    tls = Site()
    tls.httpd.socket = context.wrap_socket(tls.httpd.socket, server_side=True)
    tls.start()
    try:
        queue(store, on, story("a", DAY, url=f"https://127.0.0.1:{tls.port}/ok"))
        result, _ = finished_within(10, lambda: LinkChecker(store, on).check("a", NOW))
    finally:
        tls.close()
    assert (result.ok, result.detail) == (False, "TLS error (the site's certificate or protocol was refused)")


def test_rate_limited_is_not_broken_and_is_asked_again_an_hour_later(store, on, site):
    queue(store, on, story("a", DAY, url=site.url("/busy")))
    checker = LinkChecker(store, on)
    result = checker.check("a", NOW)
    assert result.ok and result.rate_limited and result.detail.startswith("rate limited (HTTP 429)")
    assert broken_links(store, NOW) == [] and result.archive_url is None
    assert checker.due(NOW + dt.timedelta(minutes=59)) == []
    assert checker.due(NOW + dt.timedelta(hours=1)) == ["a"]


# ---------------------------------------------------------------------------- what may be asked


def to(site: Site, url: str, host: str = "") -> str:
    """A link on ``site`` that redirects to ``url``."""
    return site.url("/to?" + urllib.parse.quote(url, safe=""), host)


def resolver(names: dict[str, str]) -> Callable[[str, int], list]:
    """A resolver naming the test hosts (an address literal is itself)."""
    return lambda host, port: [ipaddress.ip_address(names.get(host, host))]


def test_a_redirect_to_a_private_address_is_refused_never_asked_and_never_named(store, make_settings, site,
                                                                                internal):
    settings = make_settings(link_check="on", link_check_timeout="1s", link_check_allow_private=ALLOW)
    secret = internal.url("/admin/delete?all=1")
    names = {"news.test": "127.0.0.1", "intranet.test": "127.0.0.2"}
    queue(store, settings, story("a", DAY, url=to(site, secret)),
          story("b", DAY, url=to(site, internal.url("/admin/delete?all=1", "intranet.test"), "news.test")),
          story("c", DAY, url=site.url("/hop/1")))
    checker = LinkChecker(store, settings, resolve=resolver(names))
    refused = [checker.check("a", NOW), checker.check("b", NOW)]
    assert [(r.ok, r.detail) for r in refused] == [
        (False, "redirected (1 redirect) to a loopback, private or link-local address: not asked")] * 2
    assert internal.requests == []  # never asked, HEAD or GET
    assert site.hosts[-1] == f"news.test:{site.port}"  # the name checked is the one asked, at its address
    told = " ".join(r.detail for r in refused) + " " + " ".join(r.to_dict()["detail"] for r in broken_links(store, NOW))
    assert not any(word in told for word in ("127.0.0.2", "intranet", "admin", str(internal.port)))
    assert checker.check("c", NOW).detail == f"HTTP 200 after 2 redirects, at {site.url('/ok')}"  # allowed

    allowing = make_settings(link_check="on", link_check_timeout="1s", link_check_allow_private="127.0.0.0/8")
    assert LinkChecker(store, allowing).check("a", NOW).detail == f"HTTP 200 after 1 redirect, at {secret}"
    assert internal.requests == [("HEAD", "/admin/delete?all=1")]  # so the refusal above was the guard's


def test_a_link_to_a_private_address_is_not_asked_unless_allowed(store, make_settings, site):
    settings = make_settings(link_check="on", link_check_timeout="1s")  # nothing allowed: the default
    queue(store, settings, story("a", DAY, url=site.url("/ok")), story("b", DAY, url=site.url("/ok", "localhost")))
    checker = LinkChecker(store, settings)
    for story_id in ("a", "b"):
        result = checker.check(story_id, NOW)
        assert (result.ok, result.detail) == (False, "it points to a loopback, private or link-local address: "
                                                     "not asked")
    assert site.requests == []


def test_a_redirect_to_another_scheme_is_not_followed(store, on, site):
    queue(store, on, story("a", DAY, url=to(site, "file:///etc/passwd")), story("b", DAY, url="ftp://example.com/x"))
    checker = LinkChecker(store, on)
    assert checker.check("a", NOW).detail == "redirected (1 redirect) to an address that is not http(s): not followed"
    assert checker.check("b", NOW).detail == "not a web address (http:// or https://) that can be asked"


def test_nothing_comes_from_the_environment(store, on, site, tmp_path, monkeypatch):
    (tmp_path / "netrc").write_text("machine 127.0.0.1 login operator password hunter2\n")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{refused_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    queue(store, on, story("a", DAY, url=site.url("/gone")))
    result = LinkChecker(store, on).check("a", NOW)
    assert result.detail == "HTTP 404" and result.archive_url  # the site and the archive asked directly
    assert len(site.headers) == 3 and not any("Authorization" in h or "Proxy-Authorization" in h for h in site.headers)


# ---------------------------------------------------------------------------- one deadline a check


def finished_within(seconds: float, work: Callable[[], object]) -> tuple[object, float]:
    """``work()``'s result and how long it took; fails if it runs for longer than ``seconds``."""
    done: dict[str, object] = {}
    start = time.monotonic()
    thread = threading.Thread(target=lambda: done.setdefault("result", work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    return done["result"], time.monotonic() - start


def test_a_site_dripping_its_headers_cannot_hold_a_check_past_its_timeout(store, on, site):
    queue(store, on, story("a", DAY, url=site.url("/drip")), story("b", DAY, url=to(site, site.url("/drip"))),
          story("c", DAY, url=site.url("/slowhop/3")))
    checker = LinkChecker(store, on)
    for story_id in ("a", "b"):  # dripping at once, or after a redirect
        result, took = finished_within(10, lambda story_id=story_id: checker.check(story_id, NOW))
        assert (result.ok, result.detail) == (False, "timed out after 1 s") and took < 2.5, took
    result, took = finished_within(10, lambda: checker.check("c", NOW))  # 4 answers of 0.4 s: 1.6 s in all
    assert (result.ok, result.detail) == (False, "timed out after 1 s") and took < 2.5, took
    assert site.paths.count("/slowhop/1") == 1 and "/ok" not in site.paths


def test_a_dripping_archive_lookup_is_bounded_too(store, make_settings, site):
    settings = make_settings(link_check="on", link_check_timeout="1s", link_check_allow_private=ALLOW,
                             archive_lookup_url=site.url("/drip"))
    queue(store, settings, story("a", DAY, url=site.url("/gone")))
    result, took = finished_within(10, lambda: LinkChecker(store, settings).check("a", NOW))
    assert (result.ok, result.detail, result.archive_url) == (False, "HTTP 404", None) and took < 3.5, took


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
    off = make_settings(link_check="on", link_check_timeout="1s", link_check_allow_private=ALLOW)
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


def test_an_archived_copy_that_load_would_refuse_is_never_offered_or_used(store, on, site, caplog):
    """The copy's address is the link's plus about 40 characters: a long link's copy can pass the 2,000
    characters a story's url may have, and a story holding it would no longer load from its export."""
    long = site.url("/gone/")
    long += "a" * (1990 - len(long))
    queue(store, on, story("a", DAY, url=long, platforms=("reddit", "bluesky")))  # (X links no 127.0.0.1 URL)
    result = LinkChecker(store, on).check("a", NOW)
    assert result.broken and result.archive_url is None
    assert "cannot be a story's link: url is 2,0" in caplog.text
    with store.session() as session:  # a copy offered before the check existed is refused when used
        session.get(LinkCheckRow, "a").archive_url = "https://web.archive.org/web/2025/" + long
    with pytest.raises(BotError, match="the archived copy cannot be the link of 'a': url is 2,0.* characters long"):
        use_archive(store, on, "a", now=NOW)
    with store.session() as session:
        assert session.get(StoryRow, "a").content["url"] == long


# ---------------------------------------------------------------------------- which links, when


def test_due_links_are_those_of_stories_due_soon_drafts_too_bounded(store, make_settings, site):
    settings = make_settings(link_check="on", link_check_timeout="1s", link_check_allow_private=ALLOW)
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
    settings = make_settings(**options, link_check_allow_private=ALLOW)
    queue(store, settings, story("a", DAY, url=site.url("/gone")))
    checked = LinkChecker(store, settings).tick(NOW)
    assert links.enabled(settings) is on_ and bool(checked) is on_
    assert bool(site.requests) is on_


# ---------------------------------------------------------------------------- the run loop


def test_the_run_loop_checks_a_due_story(store, on, site, engine, clock):
    queue(store, on, story("a", DAY, url=site.url("/gone")))
    clock["t"] = NOW
    checker = LinkChecker(store, on, clock=lambda: clock["t"])
    with looping(engine, link_checker=checker):
        wait_for(lambda: result_for(store, "a") is not None, 5)
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
                             link_check_allow_private=ALLOW, archive_lookup_url=site.url("/wayback/available"))
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
    lookup = ("-s", f"archive_lookup_url={site.url('/wayback/available')}", "-s", "link_check_timeout=1s",
              "-s", f"link_check_allow_private={ALLOW}")
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
    code, _, err = run_cli(capsys, "-s", "link_check=on", "-s", "link_check_timeout=1s",
                           "-s", f"link_check_allow_private={ALLOW}", "run", "--once")
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
