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
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from posts.anniversary import LEAP_DAY_RULES, parse_window
from posts.durations import format_duration, parse_duration
from posts.errors import ConfigError
from posts.masking import Masker, Secret, mask_urls
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


def _optional_path(text: str) -> Path | None:
    return Path(text).expanduser() if text.strip() else None


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


SPECS: tuple[Spec, ...] = (
    Spec("database_url", "sqlite:///oneyearago.db",
         "SQLAlchemy URL of the queue database (SQLite file by default; postgresql+psycopg://... to scale out)"),
    Spec("mode", "sandbox", "sandbox records posts to the transcript instead of posting; live posts for real",
         _choice(MODES)),
    Spec("platforms", ",".join(PLATFORMS), "Comma-separated platforms to post to: x, reddit, bluesky", _platforms),
    Spec("timezone", "UTC", "The bot's IANA time zone, for date-only stories and the posting window", _timezone),
    Spec("years", "1", "How many years after the story its anniversary post goes out", _whole(1, 100)),
    Spec("leap_day", "feb28", "Where 29 February goes in a year without one: feb28 or mar1",
         _choice(LEAP_DAY_RULES)),
    Spec("posting_window", "09:00-21:00",
         "Daily window (bot time zone) in which date-only stories are spread evenly", parse_window),
    Spec("followup_delay", "6h", "Default delay between a root post and its one-year-later reply (90m, 6h, 1d)",
         _span(dt.timedelta(days=30))),
    Spec("grace", "2h", "A root post more than this late is not posted but marked missed (retry posts it)",
         _span(dt.timedelta(days=30))),
    Spec("transcript", "", "Sandbox transcript (JSON Lines); empty means transcript.jsonl next to the database",
         _optional_path),
    Spec("templates", "", "Folder of Jinja2 templates overriding the look per platform and kind (empty: built-in)",
         _optional_path),
    Spec("max_attempts", "5", "Attempts per delivery for transient errors before it fails", _whole(1, 100)),
    Spec("backoff", "30s", "First retry delay after a transient error; doubles per attempt, with jitter",
         _span(dt.timedelta(days=1))),
    Spec("lease", "2m", "How long a worker's claim on a delivery holds without a heartbeat before another "
         "worker reconciles it (workers renew their claims every third of it)", _span(dt.timedelta(days=1))),
    Spec("settle", "2m", "After an unknown outcome or a crash, how long a post may still land before not finding it "
         "counts as 'not posted' (a platform can finish a request after the client gave up)", _span(dt.timedelta(days=1))),
    Spec("recheck", "30s", "While idle, how often the run loop looks for stories loaded by another process",
         _span(dt.timedelta(days=1))),
    Spec("sandbox_latency", "0", "Sandbox only: simulated seconds each post takes (for rehearsals and benchmarks)",
         _number(0, 60)),
    Spec("lang", "en", "Default language of posts (Bluesky langs) when a story does not say"),
    Spec("log_level", "WARNING", "Logging level: DEBUG, INFO, WARNING or ERROR",
         lambda t: _choice(("debug", "info", "warning", "error"))(t).upper()),
    # Quotas: posts per rolling window, shared by every worker (0 means no limit)
    Spec("quota_x_24h", "100", "X: posts per rolling 24 hours (API v2 limits: 100/24h per user on Basic, 17 on "
         "Free; set yours)", _non_negative_int, group="quotas"),
    Spec("quota_x_15m", "100", "X: posts per rolling 15 minutes (2026 limits: 100 per 15 min per user)",
         _non_negative_int, group="quotas"),
    Spec("quota_reddit_24h", "50", "Reddit: posts and comments per rolling 24 hours (Reddit publishes no "
         "figure; keep it modest to stay clear of spam filters)", _non_negative_int, group="quotas"),
    Spec("quota_reddit_15m", "0", "Reddit: posts per rolling 15 minutes (0: none; Reddit answers RATELIMIT "
         "itself when you go too fast)", _non_negative_int, group="quotas"),
    Spec("quota_bluesky_24h", "5000", "Bluesky: posts per rolling 24 hours (bsky.social allows 11,666 creates a "
         "day: 35,000 points at 3 each)", _non_negative_int, group="quotas"),
    Spec("quota_bluesky_15m", "400", "Bluesky: posts per rolling 15 minutes (5,000 points an hour is ~416 "
         "creates per 15 min)", _non_negative_int, group="quotas"),
    Spec("backlog_pace", "10s", "After downtime, at least this long between two late posts on one platform, so "
         "a backlog drains steadily (0s: no pacing)", _span(dt.timedelta(days=1), zero=True), group="quotas"),
    Spec("x_price_post", "0.015", "X: price per post without a link, USD (pay-per-use; for agenda estimates)",
         _number(0, 1000), group="quotas"),
    Spec("x_price_post_link", "0.200", "X: price per post with a link, USD (pay-per-use; for agenda estimates)",
         _number(0, 1000), group="quotas"),
    Spec("web_token", "", "Dashboard: operator token every request to `oneyearago web` must carry; required to "
         "bind anything but 127.0.0.1, then at least 32 characters (make one: python -c 'import secrets; "
         "print(secrets.token_urlsafe(32))')",
         secret=True, group="dashboard"),
    # Images (read and prepared at load time; see docs/reliability.md#images)
    Spec("media_dir", "", "Folder that relative image paths in story files are read from (empty: each story "
         "file's own folder); an image must lie inside it, symbolic links included", _optional_path, group="images"),
    Spec("media_allow_private", "false", "Image URLs on loopback, private or link-local addresses are refused; "
         "true allows them all, or list the allowed ones (127.0.0.1,192.168.1.0/24)", _networks, group="images"),
    Spec("media_max_bytes", "20000000", "Images: the most bytes read from one image file or URL (1 KB to 100 MB)",
         _whole(1_000, 100_000_000), group="images"),
    Spec("media_timeout", "20s", "Images: how long fetching one image URL may take, redirects included",
         _span(dt.timedelta(minutes=10)), group="images"),
    Spec("web_session_idle", "12h", "Dashboard: a login ends after this long without a request (sessions live in "
         "memory: logout and a restart end them too)", _duration, group="dashboard"),
    Spec("web_secure_cookies", "false", "Dashboard: mark its cookies Secure; set true when a TLS proxy serves it "
         "over https (requests that reach it as https get Secure cookies anyway)", _bool, group="dashboard"),
    Spec("http_timeout", "30s", "Live mode: how long to wait for a platform's answer before the outcome is unknown",
         _span(dt.timedelta(minutes=10)), group="live platforms"),
    # X (tweepy, API v2, OAuth 1.0a user context)
    Spec("x_consumer_key", "", "X: API key (developer.x.com > your app > Keys and tokens > Consumer Keys)",
         secret=True, group="X"),
    Spec("x_consumer_secret", "", "X: API key secret (same page as the API key)", secret=True, group="X"),
    Spec("x_access_token", "", "X: access token of the posting account (Keys and tokens > Authentication "
         "Tokens; the app needs Read and Write permission, regenerate after changing it)", secret=True, group="X"),
    Spec("x_access_token_secret", "", "X: access token secret (same page as the access token)", secret=True,
         group="X"),
    Spec("x_api_url", "https://api.twitter.com", "X: API base URL (change only to point at a test server)",
         group="X"),
    # Reddit (praw, script app)
    Spec("reddit_client_id", "", "Reddit: client id of a 'script' app (reddit.com/prefs/apps, under the app name)",
         group="Reddit"),
    Spec("reddit_client_secret", "", "Reddit: the script app's secret (reddit.com/prefs/apps)", secret=True,
         group="Reddit"),
    Spec("reddit_username", "", "Reddit: the posting account's username (a developer of the script app)",
         group="Reddit"),
    Spec("reddit_password", "", "Reddit: the posting account's password", secret=True, group="Reddit"),
    Spec("reddit_user_agent", "", "Reddit: user agent; empty builds the required form "
         "'<platform>:oneyearago:<version> (by /u/<username>)'", group="Reddit"),
    Spec("reddit_subreddit", "", "Reddit: the subreddit to post to, without r/", group="Reddit"),
    Spec("reddit_flair", "false", "Reddit: send the story's category as flair text (subreddits that use flair)",
         _bool, group="Reddit"),
    Spec("reddit_flair_id", "", "Reddit: flair template id to use with the flair text (some subreddits require one)",
         group="Reddit"),
    Spec("reddit_url", "https://www.reddit.com", "Reddit: site URL for logins (change only for a test server)",
         group="Reddit"),
    Spec("reddit_oauth_url", "https://oauth.reddit.com", "Reddit: API URL (change only for a test server)",
         group="Reddit"),
    # Bluesky (atproto)
    Spec("bluesky_handle", "", "Bluesky: the posting account's handle, e.g. oneyearago.bsky.social",
         group="Bluesky"),
    Spec("bluesky_app_password", "", "Bluesky: an app password (Settings > Privacy and security > App passwords)",
         secret=True, group="Bluesky"),
    Spec("bluesky_pds_url", "https://bsky.social", "Bluesky: the account's PDS (your own for a self-hosted one)",
         group="Bluesky"),
    Spec("bluesky_session_file", "", "Bluesky: where the login session is kept (0600) between runs; empty means "
         "bluesky-session.json next to the database", _optional_path, group="Bluesky"),
)
"""Every setting, in the order ``.env.example`` lists them."""

SPEC_BY_NAME: dict[str, Spec] = {spec.name: spec for spec in SPECS}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the bot is configured with; built once at the edge (see :func:`load_settings`)."""

    database_url: str
    mode: str
    platforms: tuple[str, ...]
    timezone: str
    years: int
    leap_day: str
    posting_window: tuple[dt.time, dt.time]
    followup_delay: dt.timedelta
    grace: dt.timedelta
    transcript: Path | None
    templates: Path | None
    max_attempts: int
    backoff: dt.timedelta
    lease: dt.timedelta
    settle: dt.timedelta
    recheck: dt.timedelta
    sandbox_latency: float
    lang: str
    log_level: str
    quota_x_24h: int
    quota_x_15m: int
    quota_reddit_24h: int
    quota_reddit_15m: int
    quota_bluesky_24h: int
    quota_bluesky_15m: int
    backlog_pace: dt.timedelta
    x_price_post: float
    x_price_post_link: float
    web_token: Secret
    media_dir: Path | None
    media_allow_private: tuple[Any, ...]
    media_max_bytes: int
    media_timeout: dt.timedelta
    web_session_idle: dt.timedelta
    web_secure_cookies: bool
    http_timeout: dt.timedelta
    x_consumer_key: Secret
    x_consumer_secret: Secret
    x_access_token: Secret
    x_access_token_secret: Secret
    x_api_url: str
    reddit_client_id: str
    reddit_client_secret: Secret
    reddit_username: str
    reddit_password: Secret
    reddit_user_agent: str
    reddit_subreddit: str
    reddit_flair: bool
    reddit_flair_id: str
    reddit_url: str
    reddit_oauth_url: str
    bluesky_handle: str
    bluesky_app_password: Secret
    bluesky_pds_url: str
    bluesky_session_file: Path | None
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    """Where each setting's value came from (``option``, ``environment``, ``.env`` or ``default``)."""

    @property
    def bluesky_session_path(self) -> Path:
        """Where the Bluesky session is kept: the setting, else next to a SQLite database."""
        if self.bluesky_session_file is not None:
            return self.bluesky_session_file
        return sqlite_directory(self.database_url) / "bluesky-session.json"

    def quotas(self, platform: str) -> list[tuple[dt.timedelta, int]]:
        """(window, posts allowed) for each quota set for ``platform``."""
        pairs = [(dt.timedelta(hours=24), getattr(self, f"quota_{platform}_24h")),
                 (dt.timedelta(minutes=15), getattr(self, f"quota_{platform}_15m"))]
        return [(window, limit) for window, limit in pairs if limit > 0]

    def secrets(self) -> list[str]:
        """Every secret value that is set (for masking in logs and errors), the database password too."""
        values = [str(getattr(self, spec.name)) for spec in SPECS if spec.secret and getattr(self, spec.name)]
        return values + url_secrets(self.database_url)

    def masker(self) -> Masker:
        """The :class:`Masker` of these settings' secrets."""
        return Masker(self.secrets())

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
                shown = "(default)"
            else:
                shown = mask_url(str(value))
            rows.append((spec.env, shown, self.sources.get(spec.name, "default")))
        return rows


def sqlite_directory(url: str) -> Path:
    """The folder of a SQLite database file, else the working directory."""
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        return Path(url[len("sqlite:///"):]).expanduser().resolve().parent
    return Path.cwd()


def mask_url(url: str) -> str:
    """Hide the password of a database URL (in its user info or a ``password=`` parameter)."""
    return mask_urls(url)


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
            shown = "********" if spec.secret else raw
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
