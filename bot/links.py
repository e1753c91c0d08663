"""Check each story's link a few days before its anniversary, and offer an archived copy of a dead one.

A story whose root is due within ``ONEYEARAGO_LINK_CHECK_AHEAD`` (3 days) has its ``url`` asked for once:
a ``HEAD`` (a ``GET`` when the site refuses ``HEAD`` or answers it with an error), redirects followed
(at most :data:`MAX_REDIRECTS`), the whole check done within ``ONEYEARAGO_LINK_CHECK_TIMEOUT`` (however
slowly a site drips its answer), a few KB of a body read at most. The answer is kept in ``link_checks``
(one row a story, for the URL last checked).

Story links come from third parties (feeds): a link, or a redirect, to a loopback, private or
link-local address is never asked (:mod:`bot.netguard`; ``ONEYEARAGO_LINK_CHECK_ALLOW_PRIVATE`` allows
networks), and what a check says (shown on the dashboard, in ``status`` and notifications) never names
such an address. Nothing is taken from the environment (proxies, ``.netrc`` credentials).

Broken means the site answered 4xx or 5xx (429 excepted: the site asks to come back later, which says
nothing of the page, so the link is asked again after :data:`RECHECK_RATE_LIMITED`), or no answer at
all (no such host, connection refused, timed out, too many redirects), or a private address (not
asked). A broken link is asked again
after :data:`RECHECK_BROKEN`, so that a site that comes back is noticed. When it is broken and
``ONEYEARAGO_ARCHIVE_LOOKUP_URL`` is set (the Wayback Machine's ``https://archive.org/wayback/available``),
the archive is asked for its copy closest to the story's date (within the timeout again); the operator may make that copy the
story's link (:func:`use_archive`: ``oneyearago links --use-archive ID`` or the story page's button).

``ONEYEARAGO_LINK_CHECK`` turns it on, off, or (``auto``) on in live mode only. ``run`` checks every
:data:`CHECK_EVERY` in a thread of its own, :data:`BATCH` links at most a time, so a sweep stays short
and a slow site never delays a post; ``run --once`` checks once; ``oneyearago links --check`` checks now.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import logging
import ssl
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode, urljoin

import httpcore
import requests
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot import __version__, netguard
from bot.config import Settings
from bot.models import LinkCheckRow, StoryRow
from bot.planner import LoadReport, Planner
from bot.sources.stories import link_problems
from bot.store import Store
from posts.clock import utcnow
from posts.errors import BotError, NotFound
from posts.story import Story

log = logging.getLogger(__name__)

CHECK_EVERY = dt.timedelta(minutes=5)
"""How often ``run`` looks for links due to be checked."""
BATCH = 20
"""At most this many links are checked in one go (the rest wait for the next one)."""
RECHECK_BROKEN = dt.timedelta(days=1)
"""A broken link is checked again after this long (to notice that it came back)."""
RECHECK_RATE_LIMITED = dt.timedelta(hours=1)
"""A site that answered 429 (too many requests) is asked again after this long."""
MAX_REDIRECTS = 10
"""More redirects than this is a broken link (a redirect loop, say)."""
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
"""The answers whose ``Location`` is followed (the method kept: ``HEAD`` stays ``HEAD``, ``GET`` ``GET``)."""
READ_BYTES = 4096
"""At most this much of a body is read (only a ``GET`` has one)."""
USER_AGENT = f"oneyearago/{__version__} (checks a story's link before posting it)"
RATE_LIMITED = "rate limited"
"""How the detail of a check answered 429 starts: not broken, asked again later."""


def enabled(settings: Settings) -> bool:
    """Whether links are checked: ``ONEYEARAGO_LINK_CHECK`` on, or auto in live mode."""
    return settings.link_check == "on" or (settings.link_check == "auto" and settings.mode == "live")


# ---------------------------------------------------------------------------- one link


@dataclasses.dataclass(frozen=True)
class Probe:
    """What one link answered: ``ok`` (``None``: rate limited, not known) and a short detail."""

    ok: bool | None
    detail: str


class _TooManyRedirects(Exception):
    pass


class _Refused(Exception):
    """A URL not asked for (:class:`bot.netguard.Unfit`), after ``hops`` redirects."""

    def __init__(self, unfit: netguard.Unfit, hops: int) -> None:
        super().__init__(unfit.reason)
        self.unfit = unfit
        self.hops = hops


@dataclasses.dataclass(frozen=True)
class _Answer:
    status: int
    url: str
    """The URL that answered (the last redirect's)."""
    hops: int
    body: bytes


class _Client:
    """Asks URLs within one deadline, following redirects itself so that each one's host is checked
    (:func:`bot.netguard.pin`) before anything is sent to it. Nothing comes from the environment (no
    proxy, no ``.netrc`` credentials)."""

    def __init__(self, timeout: dt.timedelta, *, resolve: netguard.Resolver = netguard.resolve,
                 allow_private: tuple[netguard.Network, ...] = ()) -> None:
        self.resolve = resolve
        self.allow_private = allow_private
        self.pool = httpcore.ConnectionPool(network_backend=netguard.DeadlineBackend(time.monotonic() + timeout.total_seconds()))

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.close()

    def ask(self, method: str, url: str, *, read: int = 0) -> _Answer:
        """``method`` on ``url``, redirects followed (at most :data:`MAX_REDIRECTS`); at most ``read``
        bytes of the final body read."""
        current = url
        for hops in range(MAX_REDIRECTS + 1):
            try:
                pinned = netguard.pin(_prepared(current), self.resolve, self.allow_private)
            except netguard.Unfit as exc:
                raise _Refused(exc, hops) from None
            headers = [("Host", pinned.host_header), ("User-Agent", USER_AGENT), ("Accept", "*/*"),
                       ("Accept-Encoding", "identity")]
            with self.pool.stream(method, pinned.target, headers=headers,
                                  extensions={"sni_hostname": pinned.sni} if pinned.sni else {}) as response:
                location = next((value for name, value in response.headers if name.lower() == b"location"), b"")
                if response.status in REDIRECT_STATUSES and location:
                    current = urljoin(current, _text(location))
                    continue
                return _Answer(response.status, current, hops, _read_some(response, read) if read else b"")
        raise _TooManyRedirects


def _prepared(url: str) -> str:
    """``url`` as it is sent: an international host in IDNA, characters a URL may not hold percent-encoded
    (as browsers and ``requests`` do)."""
    request = requests.PreparedRequest()
    try:
        request.prepare_url(url, None)
    except (requests.RequestException, ValueError):
        raise netguard.Unfit(netguard.UNPARSABLE) from None
    return str(request.url)


def _text(header: bytes) -> str:
    """A header's value: UTF-8 as sites send non-ASCII redirects today, else Latin-1 as HTTP once said."""
    try:
        return header.decode()
    except UnicodeDecodeError:
        return header.decode("latin-1")


def _seconds(timeout: dt.timedelta) -> str:
    return f"{timeout.total_seconds():g} s"


def probe(url: str, timeout: dt.timedelta, *, resolve: netguard.Resolver = netguard.resolve,
          allow_private: tuple[netguard.Network, ...] = ()) -> Probe:
    """Ask ``url`` whether it still answers: ``HEAD``, then ``GET`` when ``HEAD`` is refused or fails
    with an error status (some sites answer only ``GET``), redirects followed, all within ``timeout``.
    A link or redirect to an address that is not public (unless in ``allow_private``) is not asked, and
    the detail never names it (it is shown on the dashboard and sent in notifications). Never raises for
    what the site does."""
    with _Client(timeout, resolve=resolve, allow_private=allow_private) as client:
        try:
            answer = client.ask("HEAD", url)
            if answer.status >= 400 and answer.status != 429:
                answer = client.ask("GET", url, read=READ_BYTES)
        except _Refused as exc:
            return Probe(False, _refused_detail(exc))
        except _TooManyRedirects:
            return Probe(False, f"too many redirects (more than {MAX_REDIRECTS})")
        except httpcore.TimeoutException:
            return Probe(False, f"timed out after {_seconds(timeout)}")
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            return Probe(False, _connection_detail(exc, timeout))
    hops = answer.hops
    where = f" after {hops} redirect{'s' if hops != 1 else ''}, at {answer.url}" if hops else ""
    if answer.status == 429:
        return Probe(None, f"{RATE_LIMITED} (HTTP 429){where}: asked again later")
    return Probe(answer.status < 400, f"HTTP {answer.status}{where}")


def _refused_detail(exc: _Refused) -> str:
    """Why a link or its redirect was not asked, naming no address or host that is not public."""
    reason, hops = exc.unfit.reason, exc.hops
    if reason in (netguard.UNRESOLVED, netguard.NO_ADDRESS):
        return "no such host"
    after = f"redirected ({hops} redirect{'s' if hops != 1 else ''}) to " if hops else "it points to "
    if reason == netguard.PRIVATE:
        return f"{after}a loopback, private or link-local address: not asked"
    if hops:
        return f"{after}an address that is not http(s): not followed"
    return "not a web address (http:// or https://) that can be asked"


def _read_some(response: httpcore.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body (a link check reads as a browser would start to, then hangs up)."""
    data = b""
    try:
        for chunk in response.iter_stream():
            data += chunk
            if len(data) >= limit:
                break
    except (httpcore.NetworkError, httpcore.ProtocolError):
        pass  # the status line and headers came: what the body does after that says nothing more
    return data[:limit]


def _connection_detail(exc: Exception, timeout: dt.timedelta) -> str:
    """What a failed connection was, in a few words: refused, TLS refused, closed, timed out."""
    chain = list(_chain(exc))
    if any(isinstance(part, ssl.SSLError | ssl.CertificateError) for part in chain):
        return "TLS error (the site's certificate or protocol was refused)"
    text = " ".join(str(part) for part in chain).lower()
    if "refused" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text:
        return f"timed out after {_seconds(timeout)}"
    if "reset" in text or "aborted" in text or "closed" in text or "disconnected" in text:
        return "the connection was closed without an answer"
    return "could not connect"


def _chain(exc: BaseException) -> Iterable[Any]:
    """The exception, what it wraps, and their causes."""
    seen: list[Any] = []
    todo: list[Any] = [exc]
    while todo and len(seen) < 12:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        if isinstance(item, BaseException):
            todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None),
                         *[a for a in item.args if isinstance(a, BaseException)]])
    return seen


ANYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
"""The archive lookup is the operator's own setting: it may be anywhere."""
ARCHIVE_BYTES = 65_536
"""At most this much of the archive's answer is read (it is a few hundred bytes of JSON)."""


def lookup_archive(service: str, url: str, day: dt.date, timeout: dt.timedelta) -> str | None:
    """The archive's copy of ``url`` closest to ``day`` (Wayback Machine availability API), or ``None``
    when it has none or cannot be asked within ``timeout`` (logged)."""
    query = urlencode({"url": url, "timestamp": day.strftime("%Y%m%d")})
    try:
        with _Client(timeout, allow_private=ANYWHERE) as client:
            answer = client.ask("GET", f"{service}{'&' if '?' in service else '?'}{query}", read=ARCHIVE_BYTES)
        if answer.status != 200:
            log.warning("the archive lookup answered HTTP %s for %s", answer.status, url)
            return None
        data = json.loads(answer.body)
    except (_Refused, _TooManyRedirects, httpcore.TimeoutException, httpcore.NetworkError,
            httpcore.ProtocolError, ValueError) as exc:
        log.warning("the archive lookup for %s failed: %s", url, type(exc).__name__.lstrip("_"))
        return None
    snapshots = data.get("archived_snapshots") if isinstance(data, dict) else None
    closest = snapshots.get("closest") if isinstance(snapshots, dict) else None
    if not isinstance(closest, dict) or closest.get("available") is False:
        return None
    copy, status = closest.get("url"), str(closest.get("status") or "200")
    if not isinstance(copy, str) or not copy.startswith(("http://", "https://")) or not status.startswith("2"):
        return None
    if copy.startswith("http://web.archive.org/"):
        copy = "https://" + copy[len("http://"):]
    unfit = link_problems(copy, length=True)
    if unfit:  # not offered: using it would store a link that load refuses (a 1,990-character link, say)
        log.warning("the archive's copy of %s cannot be a story's link: %s", url, unfit[0][0])
        return None
    return copy


# ---------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class LinkResult:
    """A story's latest link check, as ``status``, ``links``, the story page and notifications show it."""

    story_id: str
    url: str
    checked_at: dt.datetime
    ok: bool
    detail: str
    archive_url: str | None
    headline: str = ""
    root_due: dt.datetime | None = None

    @property
    def broken(self) -> bool:
        return not self.ok

    @property
    def rate_limited(self) -> bool:
        return self.detail.startswith(RATE_LIMITED)

    def to_dict(self) -> dict[str, Any]:
        return {"story_id": self.story_id, "url": self.url, "ok": self.ok, "detail": self.detail,
                "checked_at": self.checked_at.isoformat(), "archive_url": self.archive_url,
                "headline": self.headline, "root_due": self.root_due.isoformat() if self.root_due else None}


def results(store: Store, story_ids: Iterable[str] | None = None, *, broken_only: bool = False,
            due_after: dt.datetime | None = None) -> list[LinkResult]:
    """The latest check of each story's current link (a check of a link the story no longer has is left
    out), broken ones first, then by due time; only ``story_ids`` when given, only stories due after
    ``due_after`` when given."""
    query = select(LinkCheckRow, StoryRow.content, StoryRow.root_due).join(StoryRow, StoryRow.id == LinkCheckRow.story_id)
    if story_ids is not None:
        query = query.where(LinkCheckRow.story_id.in_(list(story_ids)))
    if broken_only:
        query = query.where(LinkCheckRow.ok.is_(False))
    if due_after is not None:
        query = query.where(StoryRow.root_due >= due_after)
    found = []
    with store.session() as session:
        for row, content, due in session.execute(query):
            if str((content or {}).get("url") or "") != row.url:
                continue
            found.append(LinkResult(row.story_id, row.url, row.checked_at, row.ok, row.detail, row.archive_url,
                                    str((content or {}).get("headline") or ""), due))
    found.sort(key=lambda r: (r.ok, r.root_due or dt.datetime.max.replace(tzinfo=dt.UTC), r.story_id))
    return found


def broken_links(store: Store, now: dt.datetime) -> list[LinkResult]:
    """The broken links of the stories not posted yet (due from ``now`` on), soonest first: what ``status``
    flags."""
    return results(store, broken_only=True, due_after=now)


def result_for(store: Store, story_id: str) -> LinkResult | None:
    """The latest check of the story's current link, or ``None`` (never checked, or the link changed since)."""
    found = results(store, [story_id])
    return found[0] if found else None


# ---------------------------------------------------------------------------- the checker


class LinkChecker:
    """Checks the links of the stories due soon, and any story's link on demand.

    ``resolve`` finds a host's addresses (tests give one that names local test hosts); ``clock`` the
    time of a sweep that is not given one.
    """

    def __init__(self, store: Store, settings: Settings, *, resolve: netguard.Resolver = netguard.resolve,
                 clock: Callable[[], dt.datetime] = utcnow, limit: int = BATCH):
        self.store = store
        self.settings = settings
        self.resolve = resolve
        self.clock = clock
        self.limit = limit

    @property
    def enabled(self) -> bool:
        return enabled(self.settings)

    def due(self, now: dt.datetime) -> list[str]:
        """The stories whose link is to be checked now, at most :attr:`limit`: due within
        ``link_check_ahead`` (drafts too), with a link never checked (or changed since), broken and
        checked over :data:`RECHECK_BROKEN` ago, or rate limited over :data:`RECHECK_RATE_LIMITED` ago.
        Links never checked come first, then the soonest due."""
        ahead = now + self.settings.link_check_ahead
        query = (select(StoryRow.id, StoryRow.content, StoryRow.root_due, LinkCheckRow)
                 .outerjoin(LinkCheckRow, LinkCheckRow.story_id == StoryRow.id)
                 .where(StoryRow.root_due >= now, StoryRow.root_due <= ahead)
                 .order_by(StoryRow.root_due, StoryRow.id))
        fresh, again = [], []
        with self.store.session() as session:
            for story_id, content, _due, check in session.execute(query):
                url = str((content or {}).get("url") or "")
                if not url:
                    continue
                if check is None or check.url != url:
                    fresh.append(story_id)
                elif not check.ok and check.checked_at <= now - RECHECK_BROKEN:
                    again.append(story_id)
                elif check.ok and check.detail.startswith(RATE_LIMITED) and \
                        check.checked_at <= now - RECHECK_RATE_LIMITED:
                    again.append(story_id)
        return (fresh + again)[: self.limit]

    def check_due(self, now: dt.datetime | None = None) -> list[LinkResult]:
        """Check the links :meth:`due` names; the results, in that order. Checks even when link checking is
        off (the caller decides: ``run`` asks :attr:`enabled` first)."""
        now = now or self.clock()
        return [self.check(story_id, now) for story_id in self.due(now)]

    def check(self, story_id: str, now: dt.datetime | None = None) -> LinkResult:
        """Check the story's link now and keep the result.

        Raises:
            NotFound: no such story.
            BotError: the story has no link.
        """
        now = now or self.clock()
        with self.store.session() as session:
            row = session.get(StoryRow, story_id)
            if row is None:
                raise NotFound(f"no story {story_id!r} (see `oneyearago agenda` for ids)")
            content, due = dict(row.content or {}), row.root_due
        url = str(content.get("url") or "")
        if not url:
            raise BotError(f"story {story_id!r} has no url to check")
        found = probe(url, self.settings.link_check_timeout, resolve=self.resolve,
                      allow_private=self.settings.link_check_allow_private)
        archive = None
        if found.ok is False and self.settings.archive_lookup_url:
            day = Story.from_content(content).calendar_date
            archive = lookup_archive(self.settings.archive_lookup_url, url, day, self.settings.link_check_timeout)
        result = LinkResult(story_id, url, now, found.ok is not False, found.detail, archive,
                            str(content.get("headline") or ""), due)
        self._keep(result)
        if found.ok is False:
            log.warning("the link of %s is broken (%s): %s%s", story_id, found.detail, url,
                        f"; archived copy: {archive}" if archive else "")
        return result

    def _keep(self, result: LinkResult) -> None:
        values = {"url": result.url, "checked_at": result.checked_at, "ok": result.ok, "detail": result.detail,
                  "archive_url": result.archive_url}
        for attempt in range(2):  # another process may insert the same story's row at the same moment
            try:
                with self.store.session() as session:
                    row = session.get(LinkCheckRow, result.story_id)
                    if row is None:
                        session.add(LinkCheckRow(story_id=result.story_id, **values))
                    else:
                        for name, value in values.items():
                            setattr(row, name, value)
                return
            except IntegrityError:
                if attempt:
                    raise

    # ------------------------------------------------------------------ in the run loop

    def tick(self, now: dt.datetime | None = None) -> list[LinkResult]:
        """One sweep when link checking is on (what ``run`` does every :data:`CHECK_EVERY`, through
        :func:`bot.runner.side_job`, which logs an error and never raises it)."""
        return self.check_due(now) if self.enabled else []


# ---------------------------------------------------------------------------- the archived copy


def use_archive(store: Store, settings: Settings, story_id: str, *, now: dt.datetime, origin: str = "dashboard",
                templates: Any = None) -> LoadReport:
    """Make the archived copy offered for the story's broken link its ``url``, as a dashboard edit
    (recorded in the story's history; a later file load of another version needs ``--force``). Returns
    the planner's :class:`~bot.planner.LoadReport`.

    Raises:
        NotFound: no such story.
        BotError: no archived copy is offered for the story's current link.
    """
    with store.session() as session:
        row = session.get(StoryRow, story_id)
        if row is None:
            raise NotFound(f"no story {story_id!r} (see `oneyearago agenda` for ids)")
        content = dict(row.content or {})
    check = result_for(store, story_id)
    if check is None or check.ok or not check.archive_url:
        raise BotError(f"no archived copy is offered for the link of {story_id!r}: it is offered once a check "
                       "found the link broken and the archive (ONEYEARAGO_ARCHIVE_LOOKUP_URL) had a copy "
                       "(`oneyearago links --check " + story_id + "` checks it now)")
    unfit = link_problems(check.archive_url, length=True)
    if unfit:  # offered before this check existed
        message, hint = unfit[0]
        raise BotError(f"the archived copy cannot be the link of {story_id!r}: {message} ({hint})")
    edited = dataclasses.replace(Story.from_content(content), url=check.archive_url, origin=origin)
    return Planner(store, settings, templates=templates).load([edited], now=now, source="dashboard")
