"""Capture RSS and Atom feeds as draft stories (``oneyearago capture FEED...``).

Each new entry of a feed becomes a *draft* story (never posted until ``oneyearago approve``): the
entry's published time, with the zone it was written in, as the date (``updated`` when it has no
``published``; a date without a time makes a date-only story), its title as the headline, its summary
(HTML reduced to text) as the summary, its link as the url, the feed's title as the source and its
categories as the tags. Every entry goes through :func:`bot.sources.stories.validate_record`, so the
same validation as ``load`` applies, each problem naming the feed, the line of the entry (when it can
be found in the feed's text) and the entry by its number and title or id.

**Broken entries are skipped, not fatal.** ``load`` is all-or-nothing because the operator wrote the
file and can fix it; a feed is someone else's, and ``capture`` runs from a daily cron line: refusing a
whole feed for one entry without a title would capture nothing, every day, until the publisher fixes
it. So a broken entry is reported (a warning on standard error, each naming feed and entry) and the
good entries are captured. A feed that cannot be read at all (missing, unreachable, not a feed) is an
error: the exit status is then 1, while the other feeds are still captured.

**Already captured entries are skipped**: an entry whose link is the url of a story in the queue (from
any source), or whose id (the entry's ``id``/``guid``, else its link) was captured before, or which
appears twice in one run, or whose draft was deleted with ``oneyearago discard`` (by the same id and
link, kept in ``discarded_stories``). An id that is not an absolute URI or URN (RSS guids are often ``1``, ``2``)
is unique only within its feed, so it is namespaced by the feed's address (without credentials or
query) or absolute path: :func:`entry_key`. The story id is derived from the entry's day, title and id
(``2025-01-12-council-votes-budget-3f2a9c1d``, the last 8 characters standing for the entry id), so the
entry id is looked up as the end of the story ids and the link as the stories' url: two queries per
run, each one pass over the stories in the database (nothing is read into Python but the matches).
A headline edited by the publisher (a new slug) or a changed link is still found by the other.

A URL is fetched here, never by feedparser: with one deadline for the whole fetch (every connect, read
and write waits at most until it, redirects included, so a server dripping bytes cannot hold ``capture``)
and a size cap, redirects followed a few times. A feed URL's user, password and query (often a token)
are used to fetch it and nowhere else: the feed is named by :func:`feed_name` in stories' origin,
reports and messages. The feed is the operator's own choice on the command line, so any address is
fetched (an intranet feed, or 127.0.0.1 in the tests), unlike the image URLs that story files name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import hashlib
import html
import io
import re
import time
from collections.abc import Callable, Iterable, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot import netguard
from bot.models import DiscardedStoryRow, StoryRow
from bot.planner import LoadReport, Planner
from bot.sources.images import MediaLoader, MediaPolicy, is_url
from bot.sources.stories import validate_record
from bot.store import Store
from posts.errors import BotError, Problem, StoryError
from posts.limits import CONTROL_RE, MAX_FIELD_CHARS
from posts.masking import MASK, mask_url
from posts.story import Story

MAX_FEED_BYTES = 20_000_000
"""The most bytes read from one feed file or URL."""
FEED_TIMEOUT = 20.0
"""How long fetching one feed URL may take, in seconds, redirects included."""
MAX_REDIRECTS = 5

_SLUG_RE = re.compile(r"[^a-z0-9]+")
_ENTRY_TAG_RE = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)(?=[\s/>])", re.IGNORECASE)
_ISO_DAY_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CLOCK_RE = re.compile(r"\d{1,2}:\d{2}")
_CLOCK_PARTS_RE = re.compile(r"(?<![\d:])(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?\s*"
                             r"(?:(?P<sign>[+-])(?P<oh>\d{2}):?(?P<om>\d{2})(?![\d]))?")
_NUMBER_RE = re.compile(r"\d+")
_COMPACT_DAY_RE = re.compile(r"\d{8}")
_ISO_TIME_RE = re.compile(r"\d{4}-?\d{2}-?\d{2}[T ]\d{2}")
_MERIDIEM_RE = re.compile(r"\b(?P<hour>\d{1,2}):\d{2}(?::\d{2})?\s*(?P<ampm>[AaPp]\.?[Mm]\.?)(?![\w.])")
_COLON_OFFSET_RE = re.compile(r"(?<=\s)([+-]\d{2}):(\d{2})(?=\s*(?:\(.*\))?$)")
_YEAR_RE = re.compile(r"(?<![\d:+-])\d{4}(?![\d:])")
_GLOBAL_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+\Z")
_WORD_RE = re.compile(r"[^\W_]+(?:[_'’-][^\W_]+)*")

ZONE_NAMES: dict[str, int] = {
    # RFC 822's own (email.utils knows these too)
    "UT": 0, "UTC": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5, "MST": -7, "MDT": -6,
    "PST": -8, "PDT": -7,
    # names feeds use although RFC 822 lacks them (unambiguous ones only)
    "WET": 0, "WEST": 1, "BST": 1, "CET": 1, "CEST": 2, "MET": 1, "MEST": 2, "EET": 2, "EEST": 3, "MSK": 3,
    "HKT": 8, "SGT": 8, "AWST": 8, "JST": 9, "KST": 9, "ACST": 9, "ACDT": 10, "AEST": 10, "AEDT": 11,
    "NZST": 12, "NZDT": 13, "AKST": -9, "AKDT": -8, "HST": -10,
}
"""Named time zones of RFC 822 dates, as hours east of UTC. An unknown name is read as UTC, with a warning."""

Fetch = Callable[[str], "Fetched"]
"""Reads a feed (a file path or an http(s) URL) into bytes and its media type; raises :class:`FeedError`."""


class FeedError(BotError):
    """A feed that cannot be read at all (missing, unreachable, too big, not RSS or Atom)."""

    def __init__(self, feed: str, message: str, hint: str = ""):
        self.feed = feed
        self.message = message
        self.hint = hint
        super().__init__(f"{feed}: {message}" + (f" ({hint})" if hint else ""))


@dataclasses.dataclass(frozen=True)
class Skipped:
    """An entry not captured because it is in the queue already (or twice in this run)."""

    feed: str
    entry: str
    """``entry 3 ('Title')``."""
    reason: str
    """``same link as story ID``, ``same id as story ID``, ``twice in this run (as entry 1 of FEED)``."""

    def __str__(self) -> str:
        return f"{self.feed}: {self.entry}: {self.reason}"


@dataclasses.dataclass
class CaptureReport:
    """What a capture did (or, with ``dry_run``, would do)."""

    feeds: list[str] = dataclasses.field(default_factory=list)
    entries: int = 0
    """Entries read, in every feed read."""
    captured: list[str] = dataclasses.field(default_factory=list)
    """The ids of the new draft stories."""
    skipped: list[Skipped] = dataclasses.field(default_factory=list)
    older: int = 0
    """Entries dated before ``--since``."""
    problems: list[Problem] = dataclasses.field(default_factory=list)
    """Broken entries, skipped (each names its feed and entry)."""
    warnings: list[str] = dataclasses.field(default_factory=list)
    """Entries captured with a caveat (a time zone name read as UTC, a summary cut to fit)."""
    unreadable: list[FeedError] = dataclasses.field(default_factory=list)
    """Feeds that could not be read at all."""
    load: LoadReport | None = None
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "feeds": self.feeds, "entries": self.entries, "captured": self.captured,
            "skipped": [dataclasses.asdict(s) for s in self.skipped], "older": self.older,
            "problems": [str(p) for p in self.problems], "warnings": self.warnings,
            "unreadable": [str(e) for e in self.unreadable],
            "load": self.load.to_dict() if self.load is not None else None, "dry_run": self.dry_run,
        }


@dataclasses.dataclass
class _Entry:
    """One entry as read from a feed, before validation."""

    feed: str
    number: int
    line: int
    label: str
    key: str
    """The entry's id, else its link: what says it was captured before."""
    link: str
    raw: dict[str, Any]
    when: dt.date | dt.datetime | None


# ---------------------------------------------------------------------------- naming


def feed_name(source: str) -> str:
    """How a feed is named wherever it is shown or stored (stories' origin, reports, messages): a URL
    without its user and password, its query (often a token) masked and its fragment dropped. A path
    is itself."""
    if not is_url(source):
        return source
    scheme, _, rest = source.partition("://")
    end = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    host, tail = rest[:end].rpartition("@")[2], rest[end:]
    path, _, query = tail.partition("#")[0].partition("?")
    return f"{scheme.lower()}://{host.lower()}{path}" + (f"?{MASK}" if query else "")


def _namespace(source: str) -> str:
    """What an entry id that is not a URI is unique within: the feed, by its address without
    credentials or query (a rotated token is the same feed), or its absolute path."""
    if is_url(source):
        return feed_name(source).partition("?")[0]
    return str(Path(source).absolute())


def entry_key(entry_id: str, link: str, headline: str, source: str) -> str:
    """What says an entry was captured before: its id, else its link, else its title. An id that is an
    absolute URI or URN (``tag:``, ``urn:``, ``https://``) is unique across feeds; any other (RSS guids
    such as ``1``, ``2``) only within its feed, so it is prefixed with the feed's :func:`_namespace`."""
    key = entry_id or link or headline
    return key if _GLOBAL_ID_RE.match(key) else f"{_namespace(source)} {key}"


# ---------------------------------------------------------------------------- reading


class Fetched(NamedTuple):
    """A feed's bytes, and the media type (with its charset) the server sent them as; "" for a file."""

    data: bytes
    content_type: str = ""


def fetch(source: str, *, timeout: float = FEED_TIMEOUT, max_bytes: int = MAX_FEED_BYTES) -> Fetched:
    """The bytes of ``source``: an http(s) URL (fetched with ``timeout`` and ``max_bytes``) or a file.

    Raises:
        FeedError: when it cannot be read, or holds more than ``max_bytes``.
    """
    if is_url(source):
        return _fetch_url(source, timeout, max_bytes)
    path = Path(source)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise FeedError(source, "no such file", "check the path, or give the feed's http(s) URL") from None
    except OSError as exc:
        raise FeedError(source, f"cannot read the file: {exc.strerror or exc}", "check the path") from None
    if len(data) > max_bytes:
        raise FeedError(source, f"the file holds more than {max_bytes:,} bytes", "is it really a feed?")
    return Fetched(data)


def _fetch_url(url: str, timeout: float, max_bytes: int) -> Fetched:
    import httpx

    name = feed_name(url)
    deadline = time.monotonic() + timeout
    current = url
    late = FeedError(name, f"took longer than {timeout:g} s to fetch",
                     "try again later, or check the address")
    too_big = FeedError(name, f"sends more than {max_bytes:,} bytes", "is it really a feed?")
    headers = {"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5",
               "User-Agent": "oneyearago (feed capture)"}
    try:
        with httpx.Client(transport=netguard.deadline_transport(deadline), trust_env=False, follow_redirects=False,
                          timeout=httpx.Timeout(timeout)) as client:
            for _hop in range(MAX_REDIRECTS + 1):
                if time.monotonic() >= deadline:
                    raise late
                with client.stream("GET", current, headers=headers) as answer:
                    if answer.status_code in (301, 302, 303, 307, 308) and answer.headers.get("location"):
                        current = urljoin(current, answer.headers["location"])
                        if urlsplit(current).scheme not in ("http", "https"):
                            raise FeedError(name, f"redirects to a {urlsplit(current).scheme or 'relative'}: "
                                            "address; only http and https are fetched", "give the feed's final address")
                        continue
                    if answer.status_code != 200:
                        raise FeedError(name, f"answered HTTP {answer.status_code}", "check the address")
                    declared = answer.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise too_big
                    chunks, total = [], 0
                    for chunk in answer.iter_bytes():
                        total += len(chunk)
                        if total > max_bytes:
                            raise too_big
                        chunks.append(chunk)
                    return Fetched(b"".join(chunks), answer.headers.get("content-type", ""))
    except httpx.TimeoutException:
        raise late from None
    except httpx.HTTPError as exc:
        raise FeedError(name, f"cannot be fetched: {type(exc).__name__}", "check the address") from None
    except (httpx.InvalidURL, ValueError) as exc:  # "http://[::1", a control character, a bad port
        raise FeedError(name, f"the feed's address is not a valid URL ({mask_url(str(exc))[:120]})",
                        "check the address") from None
    raise FeedError(name, f"redirects more than {MAX_REDIRECTS} times", "give the feed's final address")


# ---------------------------------------------------------------------------- text


class _TextOf(HTMLParser):
    """The text a reader sees in an HTML fragment: no scripts or styles, paragraphs as blank lines."""

    HIDDEN = frozenset({"script", "style", "noscript", "template", "head", "title", "iframe", "object", "svg"})
    BLOCKS = frozenset({"p", "div", "section", "article", "blockquote", "pre", "ul", "ol", "table", "h1", "h2",
                        "h3", "h4", "h5", "h6", "figure", "figcaption", "header", "footer", "aside", "hr"})
    LINES = frozenset({"br", "li", "tr", "dt", "dd"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")
        elif tag in self.LINES:
            self.parts.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt and not self.hidden:
                self.parts.append(f" {alt} ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.HIDDEN:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """``markup`` (an HTML fragment, or plain text) as plain text: tags dropped, scripts and styles with
    their content, entities decoded, paragraphs kept as blank lines, other white space folded, and the
    control characters a story may not hold removed (a feed's text is not the operator's to fix)."""
    if "<" in markup or "&" in markup:
        parser = _TextOf()
        parser.feed(markup)
        parser.close()
        text = "".join(parser.parts)
    else:
        text = markup
    text = CONTROL_RE.sub("", text).replace("\xa0", " ")
    lines = []
    for block in re.split(r"\n[ \t]*\n", text):
        joined = "\n".join(" ".join(line.split()) for line in block.split("\n"))
        joined = re.sub(r"\n{2,}", "\n", joined).strip()
        if joined:
            lines.append(joined)
    return "\n\n".join(lines)


def _detail_text(item: Any, name: str) -> str:
    """The text of ``item[name]`` (feedparser's ``title``, ``summary``, ...): HTML reduced to text, plain
    text kept as it is (but for white space and control characters)."""
    value = str(item.get(name) or "")
    kind = str((item.get(f"{name}_detail") or {}).get("type") or "text/html")
    if "html" in kind:
        return html_to_text(value)
    return html_to_text(html.escape(value, quote=False))


def _cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut at a word with an ellipsis when it is longer."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip() + "…"


def tag_word(category: str) -> str:
    """A feed category as one tag word: ``World News`` -> ``WorldNews``, ``#ai`` -> ``ai``."""
    words = _WORD_RE.findall(html_to_text(category).lstrip("#＃"))
    if len(words) <= 1:
        return words[0] if words else ""
    return "".join(w[:1].upper() + w[1:] for w in words)


# ---------------------------------------------------------------------------- dates


def entry_date(raw_text: str, parsed: Any) -> tuple[dt.date | dt.datetime | None, str]:
    """The date of an entry from its date text as written (``raw_text``) and feedparser's UTC reading of
    it (``parsed``, a ``time.struct_time``), with a warning ('' if none).

    The zone the publisher wrote is kept: ``Sun, 12 Jan 2025 14:30:00 EST`` is 14:30 at -05:00, not
    19:30 UTC (``+05:30`` and ``+0530`` alike; ``2:30 PM`` is 14:30). A date without a time
    (``2025-01-12``, ``12 Jan 2025``) is a date-only story. A time without a zone is read as UTC (as
    feedparser reads it: RFC 822 and RFC 3339 both require one). A zone name the bot does not know is
    taken from feedparser's reading when feedparser knew it, else read as UTC with a warning.
    """
    text = " ".join((raw_text or "").split())
    if text and (_impossible(text) or (_NUMBER_RE.fullmatch(text) and not _COMPACT_DAY_RE.fullmatch(text))):
        return None, ""  # a clock or zone no date has, or a bare number: never guessed at (feedparser would)
    if text and (_ISO_DAY_RE.fullmatch(text) or _COMPACT_DAY_RE.fullmatch(text)):
        try:
            return dt.date.fromisoformat(text), ""
        except ValueError:
            return None, ""
    if text and _ISO_TIME_RE.match(text):  # ISO 8601 / RFC 3339, extended or compact
        try:
            when = dt.datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            when = None
        if when is not None:
            return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)), ""
    day_only = bool(text) and not _CLOCK_RE.search(text) and not _ISO_TIME_RE.match(text)
    if text and not day_only:
        when, known, warning = _rfc822(text)
        if when is not None:
            if not known and not _MERIDIEM_RE.search(text):  # feedparser drops a PM (and reads it as the zone)
                when, warning = _zone_from_feedparser(when, parsed, warning)
            return when, warning
    if parsed is not None:
        try:
            when = dt.datetime(*tuple(parsed)[:6]).replace(tzinfo=dt.UTC)
        except (TypeError, ValueError):
            return None, ""
        if day_only:
            return when.date(), ""
        return when, ""
    return None, ""


def _impossible(text: str) -> bool:
    """Whether the date text holds a clock or a zone offset no date has (``25:00``, ``10:61``,
    ``+9999``, ``+25:00``): feedparser would roll it over into another day rather than refuse it."""
    for match in _CLOCK_PARTS_RE.finditer(text):
        hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
        if hour > 24 or minute > 59 or second > 60 or (hour == 24 and (minute or second)):
            return True
        if match.group("sign") and (int(match.group("oh")) > 14 or int(match.group("om")) > 59):
            return True
    return False


def _zone_from_feedparser(when: dt.datetime, parsed: Any, warning: str) -> tuple[dt.datetime, str]:
    """``when`` (the clock as written, its zone unknown and read as UTC) at the offset feedparser's UTC
    reading implies, when feedparser knew the zone (it reads some names this module lacks)."""
    try:
        utc = dt.datetime(*tuple(parsed)[:6])
    except (TypeError, ValueError):
        return when, warning
    offset = when.replace(tzinfo=None) - utc
    if offset and abs(offset) < dt.timedelta(hours=24) and not offset % dt.timedelta(minutes=1):
        return when.replace(tzinfo=dt.timezone(offset)), ""
    return when, warning


def _rfc822(text: str) -> tuple[dt.datetime | None, bool, str]:
    """An RFC 822 date-time with the zone as written, whether that zone was known, and a warning; a zone
    name outside :data:`ZONE_NAMES` is read as UTC. Also read: ``+05:30`` offsets, ``2:30 PM`` clocks
    and years before 100 (which :mod:`email.utils` would take for two-digit years)."""
    meridiem = _MERIDIEM_RE.search(text)
    if meridiem:
        text = (text[:meridiem.start("ampm")] + text[meridiem.end("ampm"):]).strip()
    text = _COLON_OFFSET_RE.sub(r"\1\2", text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None, False, ""
    year = _YEAR_RE.search(text)
    try:
        if year and int(year.group()) != when.year:
            when = when.replace(year=int(year.group()))
        if meridiem and 1 <= when.hour <= 12:  # "14:30 PM" is read as 14:30
            pm = meridiem["ampm"][:1].upper() == "P"
            when = when.replace(hour=when.hour % 12 + (12 if pm else 0))
    except ValueError:
        return None, False, ""
    if when.tzinfo is not None and not text.rstrip().endswith("-0000"):
        return when, True, ""
    name = text.rsplit(" ", 1)[-1].strip("()").upper()
    if name in ZONE_NAMES:
        return when.replace(tzinfo=dt.timezone(dt.timedelta(hours=ZONE_NAMES[name]))), True, ""
    if name in ("-0000", "+0000"):
        return when.replace(tzinfo=dt.UTC), True, ""
    warning = "" if name[:1].isdigit() else \
        f"the time zone {name[:10]!r} is not one the bot knows; read as UTC"
    return when.replace(tzinfo=dt.UTC), False, warning


# ---------------------------------------------------------------------------- entries


def story_id(when: dt.date | dt.datetime, headline: str, key: str) -> str:
    """A stable id for a captured entry: its day, a slug of its title, and a hash of its feed id."""
    day = when.date() if isinstance(when, dt.datetime) else when
    slug = _SLUG_RE.sub("-", headline.lower()).strip("-")[:40].rstrip("-")
    digest = entry_digest(key)
    return f"{day.isoformat()}-{slug}-{digest}" if slug else f"{day.isoformat()}-{digest}"


def _label(number: int, title: str, entry_id: str) -> str:
    if title:
        shown = title if len(title) <= 60 else title[:59] + "…"
        return f"entry {number} ({shown!r})"
    if entry_id:
        shown = entry_id if len(entry_id) <= 60 else entry_id[:59] + "…"
        return f"entry {number} (id {shown!r})"
    return f"entry {number}"


def _entry_lines(data: bytes, count: int) -> list[int]:
    """The line on which each of ``count`` entries starts, when the feed's text shows exactly that many
    ``<item>``/``<entry>`` tags; else 0 for each (the entry is then named by its number alone)."""
    text = data.decode("utf-8", errors="replace")
    starts = [m.start() for m in _ENTRY_TAG_RE.finditer(text)]
    if len(starts) != count:
        return [0] * count
    lines, line, pos = [], 1, 0
    for start in starts:
        line += text.count("\n", pos, start)
        pos = start
        lines.append(line)
    return lines


def read_entries(data: bytes, source: str, problems: list[Problem], warnings: list[str], *,
                 content_type: str = "") -> tuple[str, int, list[_Entry]]:
    """The feed's title, how many entries it holds, and those with a date as raw story records (problems
    of single entries go to ``problems``, caveats to ``warnings``). ``source`` is the feed as given;
    everything here names it by :func:`feed_name`. ``content_type`` is what the server sent it as: its
    charset decides how the bytes read (RFC 3023, as feedparser applies it); without one the feed's own
    XML declaration, else UTF-8, as XML says.

    Raises:
        FeedError: when ``data`` is not an RSS or Atom feed.
    """
    import feedparser

    feed = feed_name(source)
    # A stream, never bytes: feedparser would try bytes as a file name first (and a str as a URL to fetch).
    headers = {"content-location": feed.partition("?")[0],
               "content-type": content_type or "application/xml"} if is_url(feed) else {}
    parsed = feedparser.parse(io.BytesIO(data), sanitize_html=True, resolve_relative_uris=True,
                              response_headers=headers)
    if not parsed.get("version") and not parsed.entries:
        reason = parsed.get("bozo_exception")
        raise FeedError(feed, "is not an RSS or Atom feed" + (f" ({str(reason)[:120]})" if reason else ""),
                        "give the address of the feed itself (often ending in /feed, /rss or .xml)")
    title = _cut(" ".join(_detail_text(parsed.feed, "title").split()), MAX_FIELD_CHARS["source"])
    lines = _entry_lines(data, len(parsed.entries))
    entries: list[_Entry] = []
    for number, (item, line) in enumerate(zip(parsed.entries, lines, strict=True), start=1):
        headline = " ".join(_detail_text(item, "title").split())
        entry_id = " ".join(str(item.get("id") or "").split())
        link = str(item.get("link") or "").strip()
        label = _label(number, headline, entry_id)
        key = entry_key(entry_id, link, headline, source)
        when, warning, date_text = None, "", ""
        for field in ("published", "updated"):  # an unreadable published falls back to updated
            if item.get(field):
                when, warning = entry_date(str(item[field]), item.get(f"{field}_parsed"))
                date_text = date_text or str(item[field])
                if when is not None:
                    break
        if warning:
            warnings.append(f"{feed}:{line}: {label}: {warning}")
        summary = _detail_text(item, "summary")
        if not summary and item.get("content"):
            summary = _detail_text({"value": item["content"][0].get("value"),
                                    "value_detail": item["content"][0]}, "value")
        if len(summary) > MAX_FIELD_CHARS["summary"]:
            summary = _cut(summary, MAX_FIELD_CHARS["summary"])
            warnings.append(f"{feed}:{line}: {label}: the summary was cut to {MAX_FIELD_CHARS['summary']:,} "
                            "characters")
        tags, room = [], MAX_FIELD_CHARS["tags"]
        for tag in dict.fromkeys(tag_word(str(t.get("term") or t.get("label") or "")) for t in item.get("tags") or []):
            if tag and len(tag) + 1 <= room:
                tags.append(tag)
                room -= len(tag) + 1
        if len(headline) > MAX_FIELD_CHARS["headline"]:
            headline = _cut(headline, MAX_FIELD_CHARS["headline"])
            warnings.append(f"{feed}:{line}: {label}: the title was cut to {MAX_FIELD_CHARS['headline']:,} "
                            "characters")
        raw: dict[str, Any] = {"headline": headline, "summary": summary,
                               "url": link, "source": title, "tags": tags}
        if when is None:
            problems.append(Problem(feed, line, "", f"{label}: has no date (published or updated)"
                                    + (f": {date_text[:60]!r} cannot be read" if date_text else ""),
                                    "the feed must date its entries; such an entry cannot be captured"))
            continue
        if isinstance(when, dt.datetime) and (when.utcoffset() or dt.timedelta(0)) % dt.timedelta(minutes=1):
            when = when.astimezone(dt.UTC)  # "+05:30:15": the same instant in UTC (a story's offset is whole minutes)
        raw["date"] = when.isoformat()
        if headline:
            raw["id"] = story_id(when, headline, key)
        entries.append(_Entry(feed, number, line, label, key, link, raw, when))
    return title, len(parsed.entries), entries


# ---------------------------------------------------------------------------- capture


def entry_digest(key: str) -> str:
    """The part of a captured story's id that stands for its entry's id (the last 8 characters)."""
    return hashlib.sha1(f"capture|{key}".encode()).hexdigest()[:8]


def _already(store: Store, digests: Sequence[str], links: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The story captured from each entry id (by the :func:`entry_digest` its id ends in), and the story
    holding each of ``links`` as its url: one pass over the stories each, in the database; then the same
    over the drafts deleted with ``discard`` (named ``ID (discarded)``)."""
    found_digests: dict[str, str] = {}
    found_links: dict[str, str] = {}
    with store.session() as session:
        for id_column, url, label in (
                (StoryRow.id, StoryRow.content["url"].as_string(), "{}"),
                (DiscardedStoryRow.story_id, DiscardedStoryRow.url, "{} (discarded)")):
            tail = func.substr(id_column, func.length(id_column) - 8)
            for start in range(0, len(digests), 500):
                wanted = [f"-{d}" for d in digests[start:start + 500]]
                for sid, end in session.execute(select(id_column, tail).where(tail.in_(wanted))):
                    found_digests.setdefault(end[1:], label.format(sid))
            for start in range(0, len(links), 500):
                for sid, link in session.execute(select(id_column, url).where(url.in_(links[start:start + 500]))):
                    found_links.setdefault(link, label.format(sid))
    return found_digests, found_links


def capture(sources: Iterable[str], planner: Planner, *, now: dt.datetime, since: dt.datetime | None = None,
            dry_run: bool = False, fetch: Fetch = fetch, media: MediaPolicy | None = None) -> CaptureReport:
    """Add each new entry of the feeds ``sources`` (paths or http(s) URLs) to the queue as a draft.

    ``since`` leaves out entries dated before it (a date-only entry when its day, in the bot's time zone,
    is before ``since``'s day there). Feeds are named without credentials (:func:`feed_name`). Broken
    entries are reported in the report's ``problems`` and skipped; feeds that cannot be read at all are
    in its ``unreadable``. Nothing is written with ``dry_run``.
    """
    report = CaptureReport(dry_run=dry_run)
    loader = MediaLoader(media)
    candidates: list[tuple[_Entry, Story]] = []
    zone = ZoneInfo(planner.settings.timezone)
    for source in dict.fromkeys(sources):
        report.feeds.append(feed_name(source))
        try:
            fetched = fetch(source)
            _title, count, entries = read_entries(fetched.data, source, report.problems, report.warnings,
                                                  content_type=fetched.content_type)
        except FeedError as exc:
            report.unreadable.append(FeedError(feed_name(source), exc.message, exc.hint))
            continue
        report.entries += count
        for entry in entries:
            if since is not None and entry.when is not None and _before(entry.when, since, zone):
                report.older += 1
                continue
            before = len(report.problems)
            item = validate_record(entry.raw, entry.feed, entry.line, report.problems, media=loader)
            for i in range(before, len(report.problems)):
                problem = report.problems[i]
                report.problems[i] = dataclasses.replace(problem, message=f"{entry.label}: {problem.message}")
            if item is not None:
                candidates.append((entry, item))
    fresh = _new_only(planner.store, candidates, report)
    report.load = _load(planner, fresh, now=now, dry_run=dry_run, report=report)
    return report


def _before(when: dt.date | dt.datetime, since: dt.datetime, zone: dt.tzinfo) -> bool:
    """Whether an entry is older than ``since``; a date-only entry only when its whole day, in the bot's
    time zone (the zone ``--since`` is read in), is."""
    try:
        if isinstance(when, dt.datetime):
            return when < since
        return when < since.astimezone(zone).date()
    except OverflowError:  # a year-1 entry at a zone east of UTC: far older than any --since
        return True


def _new_only(store: Store, candidates: list[tuple[_Entry, Story]], report: CaptureReport) -> list[tuple[_Entry, Story]]:
    """The candidates not in the queue yet, nor twice in this run (the first of them is kept)."""
    digests = [entry_digest(entry.key) for entry, _ in candidates]
    links = [entry.link for entry, _ in candidates if entry.link]
    found_ids, found_links = _already(store, list(dict.fromkeys(digests)), list(dict.fromkeys(links)))
    first_by_key: dict[str, _Entry] = {}
    first_by_link: dict[str, _Entry] = {}
    fresh = []
    for (entry, story), digest in zip(candidates, digests, strict=True):
        reason = ""
        if digest in found_ids:
            reason = f"same id as story {found_ids[digest]}"
        elif entry.link in found_links:
            reason = f"same link as story {found_links[entry.link]}"
        else:
            earlier = first_by_key.get(entry.key) or (first_by_link.get(entry.link) if entry.link else None)
            if earlier is not None:
                reason = f"twice in this run (as {earlier.label} of {earlier.feed})"
        if reason:
            report.skipped.append(Skipped(entry.feed, entry.label, reason))
            continue
        first_by_key[entry.key] = entry
        if entry.link:
            first_by_link[entry.link] = entry
        fresh.append((entry, story))
    return fresh


def _load(planner: Planner, fresh: list[tuple[_Entry, Story]], *, now: dt.datetime, dry_run: bool,
          report: CaptureReport) -> LoadReport:
    """Queue the new entries as drafts. One the planner refuses (it cannot be rendered) is skipped as
    a broken entry is, and the rest are queued."""
    by_id = {story.id: entry for entry, story in fresh}
    stories = [story for _, story in fresh]
    while True:  # each round leaves out at least one story, so this ends
        try:
            load = planner.load(stories, now=now, dry_run=dry_run, source="capture", draft=True)
        except StoryError as exc:
            refused = {p.story_id for p in exc.problems}
            if not refused or not refused <= {s.id for s in stories}:
                raise
            for problem in exc.problems:
                entry = by_id[problem.story_id]
                report.problems.append(dataclasses.replace(problem, file=entry.feed, line=entry.line,
                                                           message=f"{entry.label}: {problem.message}"))
            stories = [s for s in stories if s.id not in refused]
            continue
        report.captured = list(load.drafts)
        return load


__all__ = ["CaptureReport", "FeedError", "Skipped", "capture", "entry_date", "entry_digest", "entry_key",
           "feed_name", "fetch", "html_to_text", "read_entries", "story_id", "tag_word"]
