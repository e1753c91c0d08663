"""Provide the frozen Settings object and the one place that reads the environment.

Precedence, highest first: CLI options, the process environment, a ``.env`` file, defaults.
Nothing below the CLI reads ``os.environ``; the settings object is built once and passed down.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import math
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from posts.anniversary import LEAP_DAY_RULES, parse_window
from posts.durations import format_duration, parse_duration
from posts.errors import ConfigError
from posts.limits import MAX_FOLLOWUP_AFTER
from posts.masking import MASK, Masker, Secret, mask_url
from posts.replies import REPLIES
from posts.story import PLATFORMS

ENV_PREFIX = "ONEYEARAGO_"
MODES = ("sandbox", "live")


@dataclasses.dataclass(frozen=True)
class Spec:
    """One setting: its name, default, parser and the line that documents it."""

    name: str
    default: str
    doc: str
    parse: Callable[[str], Any] = str
    secret: bool = False
    group: str = "core"

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def setting(default: str, doc: str, parse: Callable[[str], Any] = str, *, secret: bool = False,
            group: str = "core") -> Any:
    """Declare a :class:`Settings` field as a setting: its default (as written in the environment),
    the line that documents it, its parser, whether it is a secret and its ``.env.example`` group.
    :data:`SPECS` is made from these declarations, so each setting is declared once."""
    return dataclasses.field(metadata={"setting": (default, doc, parse, secret, group)})


def _apprise_urls(text: str) -> Secret:
    """One or more Apprise URLs (``scheme://...``), separated by spaces or commas."""
    urls = [u for u in re.split(r"[\s,]+", text.strip()) if u]
    for url in urls:
        if not re.match(r"^[a-z][a-z0-9+.-]*://", url, re.I):
            scheme = url.split(":", 1)[0][:20] if ":" in url else "no scheme"
            raise ValueError(f"a notification URL must start with its service, like json:// or mailto:// "
                             f"(one starts with {scheme!r})")
    return Secret(" ".join(urls))


def _clock_time(text: str) -> dt.time | None:
    """``HH:MM`` (24-hour), or empty for none."""
    value = text.strip()
    if not value:
        return None
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value)
    if match is None:
        raise ValueError(f"{value!r} is not a time of day; write it as HH:MM, like 08:30")
    return dt.time(int(match.group(1)), int(match.group(2)))


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{text!r} is not a yes/no value (use true or false)")


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in options:
            raise ValueError(f"{text!r} is not one of {', '.join(options)}")
        return value

    return parse


def _replies(variable: str, *, empty: bool = False) -> Callable[[str], str]:
    """Who may reply (:data:`posts.replies.REPLIES`); with ``empty``, an empty value too (inherit)."""
    def parse(text: str) -> str:
        value = text.strip().lower()
        if empty and not value:
            return ""
        if value not in REPLIES:
            raise ValueError(f"{variable} must be one of {', '.join(REPLIES)}"
                             + (" (or empty for ONEYEARAGO_REPLIES)" if empty else "") + f", not {text!r}")
        return value

    return parse


def _platforms(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p.strip().lower() for p in text.replace(";", ",").split(",") if p.strip()))
    for name in names:
        if name not in PLATFORMS:
            close = difflib.get_close_matches(name, PLATFORMS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown platform {name!r}{hint}; known: {', '.join(PLATFORMS)}")
    if not names:
        raise ValueError("at least one platform is needed")
    return names


def _timezone(text: str) -> str:
    try:
        ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{text!r} is not an IANA time zone name (e.g. Europe/London, UTC)") from None
    return text.strip()


def _whole(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(str(text).strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number (allowed: {low} to {high:,})") from None
        if not low <= value <= high:
            raise ValueError(f"{text!r} must be a whole number of at least {low} and at most {high:,}")
        return value

    return parse


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a number (allowed: {low:g} to {high:g})") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"{text!r} must be a number from {low:g} to {high:g}")
        return value

    return parse


def _host_port(text: str) -> str:
    """``host:port`` (``[::1]:9100`` for IPv6), or empty for off."""
    value = text.strip()
    if not value:
        return ""
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not host:port (e.g. 127.0.0.1:9464, or [::1]:9464), or empty for off")
    return value


def split_host_port(value: str) -> tuple[str, int]:
    """The host and port of a :func:`_host_port` value (brackets of an IPv6 address removed)."""
    host, _, port = value.rpartition(":")
    return (host[1:-1] if host.startswith("[") else host), int(port)


def _span(high: dt.timedelta, *, zero: bool = False) -> Callable[[str], dt.timedelta]:
    """A duration longer than zero (or zero too, with ``zero``) and at most ``high``."""

    def parse(text: str) -> dt.timedelta:
        value = parse_duration(text)
        if value < dt.timedelta(0) or (value == dt.timedelta(0) and not zero):
            raise ValueError(f"{text!r} must be {'0s or more' if zero else 'longer than zero'} "
                             f"and at most {format_duration(high)}")
        if value > high:
            raise ValueError(f"{text!r} must be at most {format_duration(high)}")
        return value

    return parse


_positive_int = _whole(1, 1_000_000)
_non_negative_int = _whole(0, 1_000_000)
_non_negative_float = _number(0, 1_000_000)
_duration = _span(dt.timedelta(days=365))
_non_negative_duration = _span(dt.timedelta(days=365), zero=True)


def _every(text: str) -> dt.timedelta | None:
    """How often a periodic job runs: ``off`` (or ``0``) for never, else from 5 minutes to 7 days."""
    value = text.strip().lower()
    if value in {"off", "0", "false", "no", "never"}:
        return None
    span = parse_duration(value)
    if not dt.timedelta(minutes=5) <= span <= dt.timedelta(days=7):
        raise ValueError(f"{text!r} must be from 5m to 7d (a shorter interval would spend the platforms' "
                         "request budgets on reads), or off")
    return span


def _log_level(text: str) -> str:
    return _choice(("debug", "info", "warning", "error"))(text).upper()


def _optional_path(text: str) -> Path | None:
    return Path(text).expanduser() if text.strip() else None


def _http_url(text: str) -> str:
    """An http(s) URL with a host, without a trailing slash; empty when not set."""
    value = text.strip().rstrip("/")
    if not value:
        return ""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{text!r} is not an http(s) URL (e.g. https://mastodon.social)")
    return value


def _networks(text: str) -> tuple[Any, ...]:
    """false (none), true (every address), or a comma-separated list of addresses and CIDR blocks."""
    import ipaddress

    value = text.strip().lower()
    if value in {"0", "false", "no", "off", ""}:
        return ()
    if value in {"1", "true", "yes", "on"}:
        return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    try:
        return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in value.split(",") if item.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not true, false or a list of addresses or networks "
                         "(e.g. 127.0.0.1,192.168.1.0/24)") from None




@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the bot is configured with; built once at the edge (see :func:`load_settings`).

    Each field declared with :func:`setting` is a setting, read from ``ONEYEARAGO_<NAME>``, in the
    order ``.env.example`` lists them.
    """

    database_url: str = setting(
        "sqlite:///oneyearago.db",
        "SQLAlchemy URL of the queue database (SQLite file by default; postgresql+psycopg://... to scale out)"
    )
    mode: str = setting(
        "sandbox",
        "sandbox records posts to the transcript instead of posting; live posts for real",
        _choice(MODES)
    )
    platforms: tuple[str, ...] = setting(
        ",".join(PLATFORMS),
        "Comma-separated platforms to post to: x, reddit, bluesky",
        _platforms
    )
    timezone: str = setting("UTC", "The bot's IANA time zone, for date-only stories and the posting window", _timezone)
    years: int = setting("1", "How many years after the story its anniversary post goes out", _whole(1, 100))
    leap_day: str = setting(
        "feb28",
        "Where 29 February goes in a year without one: feb28 or mar1",
        _choice(LEAP_DAY_RULES)
    )
    posting_window: tuple[dt.time, dt.time] = setting(
        "09:00-21:00",
        "Daily window (bot time zone) in which date-only stories are spread evenly",
        parse_window
    )
    followup_delay: dt.timedelta = setting(
        "6h",
        "Default delay between a root post and its one-year-later reply (90m, 6h, 1d)",
        _span(MAX_FOLLOWUP_AFTER)
    )
    grace: dt.timedelta = setting(
        "2h",
        "A root post more than this late is not posted but marked missed (retry posts it)",
        _span(dt.timedelta(days=30))
    )
    transcript: Path | None = setting(
        "",
        "Sandbox transcript (JSON Lines); empty means transcript.jsonl next to the database",
        _optional_path
    )
    templates: Path | None = setting(
        "",
        "Folder of Jinja2 templates overriding the look per platform and kind (empty: built-in)",
        _optional_path
    )
    max_attempts: int = setting("5", "Attempts per delivery for transient errors before it fails", _whole(1, 100))
    backoff: dt.timedelta = setting(
        "30s",
        "First retry delay after a transient error; doubles per attempt, with jitter",
        _span(dt.timedelta(days=1))
    )
    lease: dt.timedelta = setting(
        "2m",
        "How long a worker's claim on a delivery holds without a heartbeat before another "
        "worker reconciles it (workers renew their claims every third of it)",
        _span(dt.timedelta(days=1))
    )
    settle: dt.timedelta = setting(
        "2m",
        "After an unknown outcome or a crash, how long a post may still land before not finding it "
        "counts as 'not posted' (a platform can finish a request after the client gave up)",
        _span(dt.timedelta(days=1))
    )
    recheck: dt.timedelta = setting(
        "30s",
        "While idle, how often the run loop looks for stories loaded by another process",
        _span(dt.timedelta(days=1))
    )
    sandbox_latency: float = setting(
        "0",
        "Sandbox only: simulated seconds each post takes (for rehearsals and benchmarks)",
        _number(0, 60)
    )
    lang: str = setting("en", "Default language of posts (Bluesky langs) when a story does not say")
    replies: str = setting(
        "everyone",
        "Who may reply to a story's thread: everyone, followers, mentioned or nobody (the bot's own follow-up "
        "is always allowed); a story's replies field wins, then the per-platform setting, then this one",
        _replies("ONEYEARAGO_REPLIES")
    )
    replies_x: str = setting(
        "",
        "Who may reply on X (reply_settings on the root; followers becomes X's 'following'); empty: "
        "ONEYEARAGO_REPLIES",
        _replies("ONEYEARAGO_REPLIES_X", empty=True)
    )
    replies_bluesky: str = setting(
        "",
        "Who may reply on Bluesky (a threadgate created with the root); empty: ONEYEARAGO_REPLIES",
        _replies("ONEYEARAGO_REPLIES_BLUESKY", empty=True)
    )
    replies_mastodon: str = setting(
        "",
        "Who may reply on Mastodon: accepted, but Mastodon has no per-post reply control, so nothing is applied",
        _replies("ONEYEARAGO_REPLIES_MASTODON", empty=True)
    )
    replies_reddit: str = setting(
        "",
        "Who may reply on Reddit: accepted, but Reddit has no per-post reply control, so nothing is applied",
        _replies("ONEYEARAGO_REPLIES_REDDIT", empty=True)
    )
    log_level: str = setting(
        "WARNING",
        "Logging level: DEBUG, INFO, WARNING or ERROR",
        _log_level
    )
    log_format: str = setting(
        "human",
        "Log lines: human, or json for one JSON object per line (time, level, logger, message, and the "
        "event, delivery, platform and story of an engine event)",
        _choice(("human", "json"))
    )
    # Quotas: posts per rolling window, shared by every worker (0 means no limit)
    quota_x_24h: int = setting(
        "100",
        "X: posts per rolling 24 hours (API v2 limits: 100/24h per user on Basic, 17 on "
        "Free; set yours)",
        _non_negative_int,
        group="quotas"
    )
    quota_x_15m: int = setting(
        "100",
        "X: posts per rolling 15 minutes (2026 limits: 100 per 15 min per user)",
        _non_negative_int,
        group="quotas"
    )
    quota_reddit_24h: int = setting(
        "50",
        "Reddit: posts and comments per rolling 24 hours (Reddit publishes no "
        "figure; keep it modest to stay clear of spam filters)",
        _non_negative_int,
        group="quotas"
    )
    quota_reddit_15m: int = setting(
        "0",
        "Reddit: posts per rolling 15 minutes (0: none; Reddit answers RATELIMIT "
        "itself when you go too fast)",
        _non_negative_int,
        group="quotas"
    )
    quota_bluesky_24h: int = setting(
        "5000",
        "Bluesky: posts per rolling 24 hours (bsky.social allows 11,666 creates a "
        "day: 35,000 points at 3 each)",
        _non_negative_int,
        group="quotas"
    )
    quota_bluesky_15m: int = setting(
        "400",
        "Bluesky: posts per rolling 15 minutes (5,000 points an hour is ~416 "
        "creates per 15 min)",
        _non_negative_int,
        group="quotas"
    )
    quota_mastodon_24h: int = setting(
        "250",
        "Mastodon: posts per rolling 24 hours (a stock server allows 300 statuses per 3 hours; "
        "at most 300 here keeps under that even if a day's posts fall in one 3-hour window)",
        _non_negative_int,
        group="quotas"
    )
    quota_mastodon_15m: int = setting(
        "25",
        "Mastodon: posts per rolling 15 minutes (the server allows 300 requests of any kind per "
        "5 minutes; this leaves room for the look-ups around each post)",
        _non_negative_int,
        group="quotas"
    )
    backlog_pace: dt.timedelta = setting(
        "10s",
        "After downtime, at least this long between two late posts on one platform, so "
        "a backlog drains steadily (0s: no pacing)",
        _span(dt.timedelta(days=1), zero=True),
        group="quotas"
    )
    x_price_post: float = setting(
        "0.015",
        "X: price per post without a link, USD (pay-per-use; for agenda estimates)",
        _number(0, 1000),
        group="quotas"
    )
    x_price_post_link: float = setting(
        "0.200",
        "X: price per post with a link, USD (pay-per-use; for agenda estimates)",
        _number(0, 1000),
        group="quotas"
    )
    web_token: Secret = setting(
        "",
        "Dashboard: operator token every request to `oneyearago web` must carry; required to "
        "bind anything but 127.0.0.1, then at least 32 characters (make one: python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))')",
        secret=True,
        group="dashboard"
    )
    # Images (read and prepared at load time; see docs/reliability.md#images)
    media_dir: Path | None = setting(
        "",
        "Folder that relative image paths in story files are read from (empty: each story "
        "file's own folder); an image must lie inside it, symbolic links included",
        _optional_path,
        group="images"
    )
    media_allow_private: tuple[Any, ...] = setting(
        "false",
        "Image URLs on loopback, private or link-local addresses are refused; "
        "true allows them all, or list the allowed ones (127.0.0.1,192.168.1.0/24)",
        _networks,
        group="images"
    )
    media_max_bytes: int = setting(
        "20000000",
        "Images: the most bytes read from one image file or URL (1 KB to 100 MB)",
        _whole(1_000, 100_000_000),
        group="images"
    )
    media_timeout: dt.timedelta = setting(
        "20s",
        "Images: how long fetching one image URL may take, redirects included",
        _span(dt.timedelta(minutes=10)),
        group="images"
    )
    story_card: bool = setting(
        "false",
        "Images: give a story without pictures a drawn card (date stamp, category and source, "
        "headline) as its one picture, with the headline as alt text",
        _bool,
        group="images"
    )
    web_session_idle: dt.timedelta = setting(
        "12h",
        "Dashboard: a login ends after this long without a request (sessions live in "
        "memory: logout and a restart end them too)",
        _duration,
        group="dashboard"
    )
    web_secure_cookies: bool = setting(
        "false",
        "Dashboard: mark its cookies Secure; set true when a TLS proxy serves it "
        "over https (requests that reach it as https get Secure cookies anyway)",
        _bool,
        group="dashboard"
    )
    metrics_addr: str = setting(
        "",
        "Monitoring: host:port on which `oneyearago run` serves /metrics (Prometheus), /healthz and "
        "/readyz (empty: off); any but a loopback address needs ONEYEARAGO_WEB_TOKEN, sent as a Bearer header",
        _host_port,
        group="monitoring"
    )
    http_timeout: dt.timedelta = setting(
        "30s",
        "Live mode: how long to wait for a platform's answer before the outcome is unknown",
        _span(dt.timedelta(minutes=10)),
        group="live platforms"
    )
    # Notifications (Apprise)
    notify: Secret = setting(
        "",
        "Apprise URLs to tell the operator of failures, separated by spaces (mailto://, json://, ntfy://, "
        "matrix://, discord://, tgram://, ...; see https://github.com/caronc/apprise/wiki); empty: tell no one",
        _apprise_urls,
        secret=True,
        group="notifications"
    )
    notify_rate_limit: dt.timedelta = setting(
        "1h",
        "Tell the operator when a platform makes the bot wait longer than this (a rate limit)",
        _span(dt.timedelta(days=7)),
        group="notifications"
    )
    digest_at: dt.time | None = setting(
        "",
        "Send a daily digest at this local time (HH:MM, bot time zone): yesterday's posts, today's, what needs "
        "attention; empty: no digest",
        _clock_time,
        group="notifications"
    )
    # The editorial loop: drafts, reveals, link checks
    require_approval: bool = setting(
        "false",
        "Every story loaded or captured starts as a draft, posted only once `oneyearago approve` (or the "
        "dashboard) approves it; captured stories are always drafts",
        _bool,
        group="editorial"
    )
    reveal_lead: dt.timedelta = setting(
        "14d",
        "A story due within this time whose reveal (one_year_later) is empty is listed as needing one "
        "(status, agenda, the dashboard, notifications)",
        _span(dt.timedelta(days=365)),
        group="editorial"
    )
    link_check: str = setting(
        "auto",
        "Check each story's link a few days before its anniversary: on, off, or auto (on in live mode)",
        _choice(("auto", "on", "off")),
        group="editorial"
    )
    link_check_ahead: dt.timedelta = setting(
        "3d",
        "How long before a story's anniversary its link is checked",
        _span(dt.timedelta(days=60)),
        group="editorial"
    )
    link_check_timeout: dt.timedelta = setting(
        "10s",
        "How long a link check may take, redirects included (the archive lookup of a dead link gets as long again)",
        _span(dt.timedelta(minutes=2)),
        group="editorial"
    )
    link_check_allow_private: tuple[Any, ...] = setting(
        "false",
        "Story links (and their redirects) to loopback, private or link-local addresses are not asked; "
        "true allows them all, or list the allowed ones (127.0.0.1,192.168.1.0/24)",
        _networks,
        group="editorial"
    )
    archive_lookup_url: str = setting(
        "",
        "The archive lookup service offering a copy of a dead link (e.g. https://archive.org/wayback/available); "
        "empty: off",
        _http_url,
        group="editorial"
    )
    # What followers said: the conversation sweep (bot.conversation)
    conversation_every: dt.timedelta | None = setting(
        "30m",
        "How often `run` reads the replies under the threads posted recently, within each platform's "
        "request budget per pass (5m to 7d; off: never)",
        _every,
        group="conversation"
    )
    conversation_days: int = setting(
        "7",
        "Read the replies under the threads whose root was posted within this many days",
        _whole(1, 90),
        group="conversation"
    )
    conversation_keep: int = setting(
        "20",
        "Keep at most this many of the latest replies per thread (the count is kept whatever it is)",
        _whole(1, 100),
        group="conversation"
    )
    conversation_x: bool = setting(
        "false",
        "Read the replies on X too: X bills every read (pay-per-use), so it is off unless set true",
        _bool,
        group="conversation"
    )
    # X (tweepy, API v2, OAuth 1.0a user context)
    x_consumer_key: Secret = setting(
        "",
        "X: API key (developer.x.com > your app > Keys and tokens > Consumer Keys)",
        secret=True,
        group="X"
    )
    x_consumer_secret: Secret = setting("", "X: API key secret (same page as the API key)", secret=True, group="X")
    x_access_token: Secret = setting(
        "",
        "X: access token of the posting account (Keys and tokens > Authentication "
        "Tokens; the app needs Read and Write permission, regenerate after changing it)",
        secret=True,
        group="X"
    )
    x_access_token_secret: Secret = setting(
        "",
        "X: access token secret (same page as the access token)",
        secret=True,
        group="X"
    )
    x_api_url: str = setting(
        "https://api.twitter.com",
        "X: API base URL (change only to point at a test server)",
        group="X"
    )
    # Reddit (praw, script app)
    reddit_client_id: str = setting(
        "",
        "Reddit: client id of a 'script' app (reddit.com/prefs/apps, under the app name)",
        group="Reddit"
    )
    reddit_client_secret: Secret = setting(
        "",
        "Reddit: the script app's secret (reddit.com/prefs/apps)",
        secret=True,
        group="Reddit"
    )
    reddit_username: str = setting(
        "",
        "Reddit: the posting account's username (a developer of the script app)",
        group="Reddit"
    )
    reddit_password: Secret = setting("", "Reddit: the posting account's password", secret=True, group="Reddit")
    reddit_user_agent: str = setting(
        "",
        "Reddit: user agent; empty builds the required form "
        "'<platform>:oneyearago:<version> (by /u/<username>)'",
        group="Reddit"
    )
    reddit_subreddit: str = setting("", "Reddit: the subreddit to post to, without r/", group="Reddit")
    reddit_flair: bool = setting(
        "false",
        "Reddit: send the story's category as flair text (subreddits that use flair)",
        _bool,
        group="Reddit"
    )
    reddit_flair_id: str = setting(
        "",
        "Reddit: flair template id to use with the flair text (some subreddits require one)",
        group="Reddit"
    )
    reddit_images: str = setting(
        "inline",
        "Reddit: how a story's pictures go into its post: inline (in the self text, each with its alt text as "
        "the caption) or gallery (an image gallery with the text below; captions of at most 180 characters)",
        _choice(("inline", "gallery")),
        group="Reddit"
    )
    reddit_url: str = setting(
        "https://www.reddit.com",
        "Reddit: site URL for logins (change only for a test server)",
        group="Reddit"
    )
    reddit_oauth_url: str = setting(
        "https://oauth.reddit.com",
        "Reddit: API URL (change only for a test server)",
        group="Reddit"
    )
    # Bluesky (atproto)
    bluesky_handle: str = setting(
        "",
        "Bluesky: the posting account's handle, e.g. oneyearago.bsky.social",
        group="Bluesky"
    )
    bluesky_app_password: Secret = setting(
        "",
        "Bluesky: an app password (Settings > Privacy and security > App passwords)",
        secret=True,
        group="Bluesky"
    )
    bluesky_pds_url: str = setting(
        "https://bsky.social",
        "Bluesky: the account's PDS (your own for a self-hosted one)",
        group="Bluesky"
    )
    bluesky_session_file: Path | None = setting(
        "",
        "Bluesky: where the login session is kept (0600) between runs; empty means "
        "bluesky-session.json next to the database",
        _optional_path,
        group="Bluesky"
    )
    # Mastodon (Mastodon.py)
    mastodon_api_base_url: str = setting(
        "",
        "Mastodon: the instance the account lives on, e.g. https://mastodon.social",
        _http_url,
        group="Mastodon"
    )
    mastodon_access_token: Secret = setting(
        "",
        "Mastodon: an access token of the posting account (on the instance: Preferences > Development > "
        "New application, scopes write:statuses, write:media, read:statuses and read:accounts; then 'Your access "
        "token')",
        secret=True,
        group="Mastodon"
    )
    mastodon_visibility: str = setting(
        "unlisted",
        "Mastodon: who sees the posts: public, unlisted (the fediverse's etiquette for bots: not on the "
        "public timelines) or private (followers only)",
        _choice(("public", "unlisted", "private")),
        group="Mastodon"
    )
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    """Where each setting's value came from (``option``, ``environment``, ``.env`` or ``default``)."""

    @property
    def bluesky_session_path(self) -> Path:
        """Where the Bluesky session is kept: the setting, else next to a SQLite database."""
        if self.bluesky_session_file is not None:
            return self.bluesky_session_file
        return sqlite_directory(self.database_url) / "bluesky-session.json"

    def replies_for(self, platform: str) -> str:
        """Who may reply on ``platform`` by the settings: its own setting, else ``ONEYEARAGO_REPLIES``."""
        return str(getattr(self, f"replies_{platform}", "") or self.replies)

    def quotas(self, platform: str) -> list[tuple[dt.timedelta, int]]:
        """(window, posts allowed) for each quota set for ``platform``."""
        pairs = [(dt.timedelta(hours=24), getattr(self, f"quota_{platform}_24h")),
                 (dt.timedelta(minutes=15), getattr(self, f"quota_{platform}_15m"))]
        return [(window, limit) for window, limit in pairs if limit > 0]

    def secrets(self) -> list[str]:
        """Every secret value that is set (for masking in logs and errors), the database password too."""
        values = [str(getattr(self, spec.name)) for spec in SPECS if spec.secret and getattr(self, spec.name)]
        values += str(self.notify).split()  # each notification URL on its own, as a message may quote one
        return values + url_secrets(self.database_url)

    def masker(self) -> Masker:
        """The :class:`Masker` of these settings' secrets."""
        return Masker(self.secrets())

    def local_time(self, when: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
        """``when`` in the bot's time zone, as ``fmt`` writes it (``-`` for no time)."""
        if when is None:
            return "-"
        return when.astimezone(ZoneInfo(self.timezone)).strftime(fmt)

    @property
    def transcript_path(self) -> Path:
        """The sandbox transcript: the setting, else ``transcript.jsonl`` next to a SQLite database."""
        if self.transcript is not None:
            return self.transcript
        return sqlite_directory(self.database_url) / "transcript.jsonl"

    def describe(self) -> list[tuple[str, str, str]]:
        """(environment variable, shown value, source) for every setting, secrets masked."""
        rows = []
        for spec in SPECS:
            value = getattr(self, spec.name)
            if spec.secret:
                shown = Secret(value or "").masked()
            elif isinstance(value, tuple) and value and isinstance(value[0], dt.time):
                shown = f"{value[0]:%H:%M}-{value[1]:%H:%M}"
            elif isinstance(value, tuple):
                shown = ",".join(map(str, value)) or "(none)"
            elif isinstance(value, dt.timedelta):
                shown = format_duration(value)
            elif value is None:
                shown = "off" if spec.default else "(default)"  # a setting whose default is on, turned off
            else:
                shown = mask_url(str(value))
            rows.append((spec.env, shown, self.sources.get(spec.name, "default")))
        return rows


SPECS: tuple[Spec, ...] = tuple(Spec(field.name, *field.metadata["setting"]) for field in dataclasses.fields(Settings)
                                if "setting" in field.metadata)
"""Every setting, in the order ``.env.example`` lists them (the order of the fields of :class:`Settings`)."""

SPEC_BY_NAME: dict[str, Spec] = {spec.name: spec for spec in SPECS}


def sqlite_directory(url: str) -> Path:
    """The folder of a SQLite database file, else the working directory."""
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return Path(url[len("sqlite:///"):]).expanduser().resolve().parent
    return Path.cwd()


def url_secrets(url: str) -> list[str]:
    """The passwords a database URL carries (user info and ``password=`` query parameters), as
    written and decoded, so that they are masked wherever a driver repeats them."""
    found: list[str] = []
    try:
        parts = urllib.parse.urlsplit(url)
        if parts.password:
            found += [parts.password, urllib.parse.unquote(parts.password)]
        for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=False):
            if name.lower() in ("password", "passwd"):
                found += [value, urllib.parse.quote_plus(value)]
    except ValueError:
        pass
    return [value for value in found if value]


def load_settings(
    options: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    env_file: Path | str | None = ".env",
) -> Settings:
    """Build the settings from CLI ``options``, then ``environ``, then ``env_file``, then defaults.

    Raises:
        ConfigError: naming the setting, where its value came from, and what is wrong.
    """
    options = {k: v for k, v in (options or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    file_values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    unknown = sorted(k for k in options if k not in SPEC_BY_NAME)
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(SPEC_BY_NAME), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown setting {unknown[0]!r}{hint}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SPECS:
        if spec.name in options:
            raw, source = str(options[spec.name]), "option"
        elif spec.env in environ:
            raw, source = environ[spec.env], "environment"
        elif spec.env in file_values:
            raw, source = file_values[spec.env], f"{env_file}"
        else:
            raw, source = spec.default, "default"
        try:
            value = spec.parse(raw)
        except (ValueError, TypeError) as exc:
            shown = MASK if spec.secret else raw
            raise ConfigError(f"{spec.env}={shown!s} (from {source}): {exc}") from None
        values[spec.name] = Secret(value) if spec.secret else value
        sources[spec.name] = source
    return Settings(**values, sources=sources)


def env_example() -> str:
    """The text of ``.env.example``: every setting with its one-line comment and default."""
    lines = ["# oneyearago settings. Copy to .env and edit; CLI options and the environment win over .env.",
             "# Secrets (keys, passwords) are never printed: doctor and --debug show them masked.", ""]
    group = None
    for spec in SPECS:
        if spec.group != group:
            group = spec.group
            if group != "core":
                lines.append(f"# --- {group} ---")
                lines.append("")
        lines.append(f"# {spec.doc}")
        lines.append(f"{spec.env}={spec.default}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
