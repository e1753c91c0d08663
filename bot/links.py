"""Check each story's link a few days before its anniversary, and offer an archived copy of a dead one.

A story whose root is due within ``ONEYEARAGO_LINK_CHECK_AHEAD`` (3 days) has its ``url`` asked for once:
a ``HEAD`` (a ``GET`` when the site refuses ``HEAD`` or answers it with an error), redirects followed
(at most :data:`MAX_REDIRECTS`), each wait bounded by ``ONEYEARAGO_LINK_CHECK_TIMEOUT``, a few KB of a
body read at most. The answer is kept in ``link_checks`` (one row a story, for the URL last checked).

Broken means the site answered 4xx or 5xx (429 excepted: the site asks to come back later, which says
nothing of the page, so the link is asked again after :data:`RECHECK_RATE_LIMITED`), or no answer at
all (no such host, connection refused, timed out, too many redirects). A broken link is asked again
after :data:`RECHECK_BROKEN`, so that a site that comes back is noticed. When it is broken and
``ONEYEARAGO_ARCHIVE_LOOKUP_URL`` is set (the Wayback Machine's ``https://archive.org/wayback/available``),
the archive is asked for its copy closest to the story's date; the operator may make that copy the
story's link (:func:`use_archive`: ``oneyearago links --use-archive ID`` or the story page's button).

``ONEYEARAGO_LINK_CHECK`` turns it on, off, or (``auto``) on in live mode only. ``run`` checks every
:data:`CHECK_EVERY` in a thread of its own, :data:`BATCH` links at most a time, so a sweep stays short
and a slow site never delays a post; ``run --once`` checks once; ``oneyearago links --check`` checks now.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot import __version__
from bot.config import Settings
from bot.models import LinkCheckRow, StoryRow
from bot.planner import LoadReport, Planner
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
READ_BYTES = 4096
"""At most this much of a body is read (only a ``GET`` has one)."""
USER_AGENT = f"oneyearago/{__version__} (checks a story's link before posting it; python-requests)"
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


def http_session() -> requests.Session:
    """A session as link checks use it: the bot's User-Agent, at most :data:`MAX_REDIRECTS` redirects."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.max_redirects = MAX_REDIRECTS
    return session


def _seconds(timeout: dt.timedelta) -> str:
    return f"{timeout.total_seconds():g} s"


def probe(http: requests.Session, url: str, timeout: dt.timedelta) -> Probe:
    """Ask ``url`` whether it still answers: ``HEAD``, then ``GET`` when ``HEAD`` is refused or fails
    with an error status (some sites answer only ``GET``), redirects followed. Never raises for what the
    site does."""
    seconds = timeout.total_seconds()
    try:
        with http.head(url, allow_redirects=True, timeout=seconds) as response:
            status, final, hops = response.status_code, response.url, len(response.history)
        if status >= 400 and status != 429:
            with http.get(url, allow_redirects=True, timeout=seconds, stream=True) as response:
                status, final, hops = response.status_code, response.url, len(response.history)
                _read_some(response)
    except requests.exceptions.TooManyRedirects:
        return Probe(False, f"too many redirects (more than {MAX_REDIRECTS})")
    except requests.exceptions.Timeout:
        return Probe(False, f"timed out after {_seconds(timeout)}")
    except requests.exceptions.SSLError:
        return Probe(False, "TLS error (the site's certificate or protocol was refused)")
    except requests.exceptions.ConnectionError as exc:
        return Probe(False, _connection_detail(exc, timeout))
    except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL):
        return Probe(False, "not a web address (http:// or https://) that can be asked")
    except requests.RequestException as exc:
        return Probe(False, f"failed: {type(exc).__name__}")
    where = f" after {hops} redirect{'s' if hops != 1 else ''}, at {final}" if hops else ""
    if status == 429:
        return Probe(None, f"{RATE_LIMITED} (HTTP 429){where}: asked again later")
    return Probe(status < 400, f"HTTP {status}{where}")


def _read_some(response: requests.Response) -> None:
    """Read at most :data:`READ_BYTES` of the body (as a browser would start to), then hang up."""
    read = 0
    try:
        for chunk in response.iter_content(1024):
            read += len(chunk)
            if read >= READ_BYTES:
                break
    except requests.RequestException:
        pass  # the status line and headers came: what the body does after that says nothing more


def _connection_detail(exc: requests.exceptions.ConnectionError, timeout: dt.timedelta) -> str:
    """What a failed connection was, in a few words: no such host, refused, timed out."""
    text = " ".join(str(part) for part in _chain(exc)).lower()
    if any(words in text for words in ("name or service not known", "nodename nor servname", "getaddrinfo failed",
                                       "no address associated", "failed to resolve", "name resolution")):
        return "no such host"
    if "refused" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text:
        return f"timed out after {_seconds(timeout)}"
    if "reset" in text or "aborted" in text or "remote end closed" in text:
        return "the connection was closed without an answer"
    return "could not connect"


def _chain(exc: BaseException) -> Iterable[Any]:
    """The exception, what it wraps (urllib3 keeps the cause in ``args`` and ``reason``), and their causes."""
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


def lookup_archive(http: requests.Session, service: str, url: str, day: dt.date, timeout: dt.timedelta) -> str | None:
    """The archive's copy of ``url`` closest to ``day`` (Wayback Machine availability API), or ``None``
    when it has none or cannot be asked (logged)."""
    try:
        with http.get(service, params={"url": url, "timestamp": day.strftime("%Y%m%d")},
                      timeout=timeout.total_seconds()) as response:
            if response.status_code != 200:
                log.warning("the archive lookup answered HTTP %s for %s", response.status_code, url)
                return None
            data = response.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning("the archive lookup for %s failed: %s", url, type(exc).__name__)
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

    ``http`` is the ``requests`` session used (tests pass one; by default :func:`http_session`); ``clock``
    the time of a sweep that is not given one.
    """

    def __init__(self, store: Store, settings: Settings, *, http: requests.Session | None = None,
                 clock: Callable[[], dt.datetime] = utcnow, limit: int = BATCH):
        self.store = store
        self.settings = settings
        self.http = http or http_session()
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
        found = probe(self.http, url, self.settings.link_check_timeout)
        archive = None
        if found.ok is False and self.settings.archive_lookup_url:
            day = Story.from_content(content).calendar_date
            archive = lookup_archive(self.http, self.settings.archive_lookup_url, url, day,
                                     self.settings.link_check_timeout)
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
        """One sweep when link checking is on (what ``run`` does every :data:`CHECK_EVERY`); an error is
        logged, never raised (it must not stop the posts)."""
        if not self.enabled:
            return []
        try:
            return self.check_due(now)
        except Exception:
            log.exception("the link check failed; trying again at the next one")
            return []


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
    edited = dataclasses.replace(Story.from_content(content), url=check.archive_url, origin=origin)
    return Planner(store, settings, templates=templates).load([edited], now=now, source="dashboard")
