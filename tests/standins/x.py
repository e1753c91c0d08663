"""A stateful stand-in for the X API v2 endpoints the bot uses, with fault injection."""

from __future__ import annotations

import base64
import calendar
import contextlib
import dataclasses
import hashlib
import hmac
import http.client
import http.server
import io
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
from oauthlib.oauth1.rfc5849 import signature as oauth_signature
from oauthlib.oauth1.rfc5849 import utils as oauth_utils
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from posts.twitter_text import weighted_length

DATA = Path(__file__).resolve().parents[1] / "data" / "x"
PUBLIC_BASE = "https://api.twitter.com"
"""The URL tweepy signs (OAuth 1.0a) whatever base the request is finally sent to."""
UPLOAD_BASE = "https://upload.twitter.com"
"""The same for tweepy.API's media calls (its ``upload_host``)."""
FIRST_MEDIA_ID = 1349010955083132928
"""The media id of ``testmediauploadpng.yaml``; later ids count up from it."""
MEDIA_LIFETIME = 86400
"""``expires_after_secs`` of the recorded upload."""
ME = {"id": "1072250532645998596", "name": "Tweepy Testing", "username": "TweepyDev"}
"""The account of ``test_client_get_me.yaml``."""
FIRST_ID = 1456012973835788293
"""The post id of ``test_client_create_and_delete_tweet.yaml``; later ids count up from it."""
WINDOW = 15 * 60
DAY = 24 * 3600
LIMITS = {
    "POST /2/tweets": 200,          # x-rate-limit-limit in the create cassette
    "DELETE /2/tweets/:id": 50,     # ... in the delete cassette
    "GET /2/users/me": 75,          # ... in the get_me cassette
    "GET /2/tweets/:id": 900,
    "GET /2/users/:id/tweets": 900,
    "GET /2/tweets/search/recent": 300,  # per user (OAuth 1.0a); 450 per app with a bearer token (docs.x.com)
    "PUT /2/tweets/:id/hidden": 50,      # x-rate-limit-limit in test_client_hide_and_unhide_reply.yaml
    "POST /1.1/media/upload.json": 415,           # x-rate-limit-limit in testmediauploadpng.yaml
    "POST /1.1/media/metadata/create.json": 415,  # NOT recorded: assumed the same as the upload
}
ROUTES = (
    ("POST", re.compile(r"/2/tweets"), "POST /2/tweets"),
    ("DELETE", re.compile(r"/2/tweets/(?P<id>[^/]+)"), "DELETE /2/tweets/:id"),
    ("GET", re.compile(r"/2/users/me"), "GET /2/users/me"),
    ("GET", re.compile(r"/2/users/(?P<id>[^/]+)/tweets"), "GET /2/users/:id/tweets"),
    ("GET", re.compile(r"/2/tweets/search/recent"), "GET /2/tweets/search/recent"),
    ("PUT", re.compile(r"/2/tweets/(?P<id>[^/]+)/hidden"), "PUT /2/tweets/:id/hidden"),
    ("GET", re.compile(r"/2/tweets/(?P<id>[^/]+)"), "GET /2/tweets/:id"),
    ("POST", re.compile(r"/1\.1/media/upload\.json"), "POST /1.1/media/upload.json"),
    ("POST", re.compile(r"/1\.1/media/metadata/create\.json"), "POST /1.1/media/metadata/create.json"),
)
MEDIA_INVALID = "Your media IDs are invalid."
"""X's message for a post naming an unknown or expired media id: NOT recorded; the wording of
tweepy/tweepy#2016 ("400 Bad Request / Your media IDs are invalid.") and the parameter name of
abraham/twitteroauth#1222 (``media.media_ids``), in the v2 invalid-request body."""
JSON_TYPE = "application/json; charset=utf-8"
TOO_LONG = ("Your Tweet text is too long. For more information on how Twitter determines text length see "
            "https://github.com/twitter/twitter-text.")
REPLY_GONE = "You attempted to reply to a Tweet that is deleted or not visible to you."
REPLY_CLOSED = ("Reply to this conversation is not allowed because you have not been mentioned or otherwise "
                "engaged by the author of the post you are replying to.")
"""X's 403 to a reply its conversation's ``reply_settings`` do not admit (NOT recorded here: the wording
reported by users of the API, e.g. tweepy/tweepy discussions on reply_settings)."""
SEARCH_WINDOW = 7 * DAY
"""How far back recent search looks (X: "the last 7 days")."""
NOT_YOUR_CONVERSATION = "You are not allowed to hide replies to this Tweet."
"""NOT recorded: the 403 detail assumed for hiding a reply in someone else's conversation."""
UNAUTHORIZED = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}


def observed_body(status: int) -> dict[str, Any]:
    """The real X error body for ``status`` (429 or 403 duplicate) from the observed fixture."""
    cases = json.loads((DATA / "x-api-v2-error-bodies-observed.json").read_text(encoding="utf-8"))["cases"]
    return dict(next(case["body"] for case in cases if case["status"] == status))


def _problem(status: int, title: str, detail: str, kind: str = "about:blank") -> dict[str, Any]:
    return {"title": title, "type": kind, "status": status, "detail": detail}


def _v1_error(code: int, message: str) -> dict[str, Any]:
    """The v1.1 error body (``{"errors": [{"code", "message"}]}``)."""
    return {"errors": [{"code": code, "message": message}]}


REPLY_SETTINGS = ("following", "mentionedUsers", "subscribers", "verified")
"""What create-tweet takes as ``reply_settings`` (X API v2 reference, POST /2/tweets); left out: everyone."""


def _invalid(message: str, **parameters: Any) -> dict[str, Any]:
    return {"errors": [{"parameters": parameters, "message": message}], "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": "https://api.twitter.com/2/problems/invalid-request"}


# A link as X finds one: with a scheme, or a bare domain under a common TLD; trailing punctuation stays out.
_LINK = re.compile(r"(?i)(?:https?://[^\s<>\"]+|(?<![\w@.\-/])(?:[a-z0-9-]+\.)+"
                   r"(?:com|org|net|io|co|gov|edu|info|news|uk|de|fr)\b(?:/[^\s<>\"]*)?)")
_TRAILING = ".,;:!?'\")]}"
_HASHTAG = re.compile(r"(?<![\w&])#(\w+)")
_SLUG = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _tco(seed: str) -> str:
    number = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    slug = ""
    for _ in range(10):
        number, rem = divmod(number, len(_SLUG))
        slug += _SLUG[rem]
    return f"https://t.co/{slug}"


def shorten(tweet_id: str, text: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """X's view of posted text: links rewritten to t.co, ``&<>`` escaped, with url and hashtag entities."""
    shown, urls, cursor = "", [], 0
    for match in _LINK.finditer(text):
        link = match.group(0).rstrip(_TRAILING)
        start, end = match.start(), match.start() + len(link)
        shown += _escape(text[cursor:start])
        tco = _tco(f"{tweet_id}:{start}:{link}")
        expanded = link if re.match(r"(?i)https?://", link) else f"http://{link}"
        display = re.sub(r"(?i)^https?://", "", link)
        urls.append({"start": len(shown), "end": len(shown) + len(tco), "url": tco, "expanded_url": expanded,
                     "display_url": display if len(display) <= 26 else display[:23] + "…"})
        shown += tco
        cursor = end
    shown += _escape(text[cursor:])
    hashtags = [{"start": m.start(), "end": m.end(), "tag": m.group(1)} for m in _HASHTAG.finditer(shown)]
    return shown, urls, hashtags


@dataclasses.dataclass
class Tweet:
    """One post held by the stand-in."""

    id: str
    text: str
    """As it was posted."""
    created_at: float
    author_id: str
    reply_to: str | None
    conversation_id: str
    deleted: bool = False
    shown: str = ""
    urls: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    hashtags: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    media_ids: list[str] = dataclasses.field(default_factory=list)
    """The media ids attached, in the order they were given."""
    reply_settings: str = "everyone"
    """Who may reply, as create-tweet set it (``everyone`` when the request left it out)."""
    reply_to_user: str = ""
    """The author of the post it answers (``in_reply_to_user_id``)."""
    hidden: bool = False
    """Hidden by the conversation's author (``PUT /2/tweets/:id/hidden``)."""

    def render(self, fields: set[str], *, created: bool = False) -> dict[str, Any]:
        """The tweet object X returns with the requested ``tweet.fields``."""
        data: dict[str, Any] = {"id": self.id, "text": self.shown}
        if created:
            return data  # the create cassette's shape: id and text only
        data["edit_history_tweet_ids"] = [self.id]
        if "created_at" in fields:
            data["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.created_at)) + \
                f".{int(self.created_at * 1000) % 1000:03d}Z"
        if "author_id" in fields:
            data["author_id"] = self.author_id
        if "conversation_id" in fields:
            data["conversation_id"] = self.conversation_id
        if "reply_settings" in fields:
            data["reply_settings"] = self.reply_settings
        if "in_reply_to_user_id" in fields and self.reply_to:
            data["in_reply_to_user_id"] = self.reply_to_user or self.author_id
        if "referenced_tweets" in fields and self.reply_to:
            data["referenced_tweets"] = [{"type": "replied_to", "id": self.reply_to}]
        if "attachments" in fields and self.media_ids:
            data["attachments"] = {"media_keys": [f"3_{m}" for m in self.media_ids]}
        if "entities" in fields and (self.urls or self.hashtags):
            data["entities"] = {k: [dict(e) for e in v] for k, v in
                                (("urls", self.urls), ("hashtags", self.hashtags)) if v}
        return data


@dataclasses.dataclass
class Fault:
    """One injected answer for the next request to a route."""

    status: int | None = None
    body: Any = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    apply: bool = False
    """With a status: apply the request, then answer with the status anyway."""


@dataclasses.dataclass
class Reply:
    """What the stand-in answers; ``drop`` and ``delay`` are carried out by the front end."""

    status: int
    headers: dict[str, str]
    body: bytes
    delay: float = 0.0
    drop: bool = False

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclasses.dataclass
class Seen:
    """One request as the stand-in received it."""

    method: str
    path: str
    route: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    at: float
    parts: list[Part] = dataclasses.field(default_factory=list)
    """The multipart/form-data parts (the media upload)."""
    body: bytes = b""


@dataclasses.dataclass
class Part:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def multipart(content_type: str, body: bytes) -> list[Part]:
    """The parts of a multipart/form-data ``body`` (as requests encodes it: CRLF lines)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.lower().startswith("multipart/form-data") or match is None:
        return []
    delimiter = b"--" + match.group(1).encode("latin-1")
    parts: list[Part] = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        field = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        parts.append(Part(field.group(1) if field else "", filename.group(1) if filename else None,
                          headers.get("content-type"), data))
    return parts


@dataclasses.dataclass
class Media:
    """One upload held by the stand-in."""

    id: str
    data: bytes = dataclasses.field(repr=False)
    mime: str
    width: int
    height: int
    uploaded_at: float
    filename: str | None
    alt: str | None = None
    """As set by ``media/metadata/create`` (``None``: never set)."""
    expired: bool = False

    def answer(self) -> dict[str, Any]:
        """The upload answer, key for key as ``testmediauploadpng.yaml`` recorded it."""
        return {"media_id": int(self.id), "media_id_string": self.id, "size": len(self.data),
                "expires_after_secs": MEDIA_LIFETIME,
                "image": {"image_type": self.mime, "w": self.width, "h": self.height}}


class ConnectionDropped(Exception):
    """``handle`` applied the request, then the connection was dropped without an answer."""


class XStandin:
    """A small, stateful X API v2 for one account (``ME``), with fault injection.

    Endpoints: ``POST /2/tweets``, ``DELETE /2/tweets/:id``, ``GET /2/tweets/:id``, ``GET /2/users/me``
    and ``GET /2/users/:id/tweets``. Shapes follow tweepy's recorded cassettes and the error bodies
    observed from the real API (``tests/data/x/``): links in a post come back rewritten to
    ``https://t.co/...`` with ``entities.urls[].expanded_url`` holding the original, ``&<>`` are
    HTML-escaped, and every response carries ``x-rate-limit-*`` headers (plus the 24-hour
    ``x-user-limit-*``/``x-app-limit-*`` ones on ``POST /2/tweets``); limits are enforced.

    Front ends: :meth:`install` (callbacks for a ``responses`` mock) and :meth:`serve` (a threaded
    HTTP server on 127.0.0.1). Faults are queued per route (``"POST /2/tweets"``...): a status
    (optionally after applying the request), a 429 with reset headers, a delay, or "accept then
    drop". ``violations`` lists requests that came before the time a 429 named.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        credentials: tuple[str, str, str, str] | None = None,
        daily_user_limit: int = 2400,
        daily_app_limit: int = 10000,
        access_level: str = "read-write-directmessages",
    ):
        """``credentials`` (consumer key and secret, access token and secret) turn on OAuth 1.0a
        signature checks: a request not signed with them gets X's 401."""
        self.clock = clock
        self.credentials = credentials
        self.daily = {"user": daily_user_limit, "app": daily_app_limit}
        self.access_level = access_level
        self.tweets: dict[str, Tweet] = {}
        self.users: dict[str, dict[str, str]] = {ME["id"]: dict(ME)}
        """Every account known by id (``ME`` and those that replied): what ``expansions=author_id`` shows."""
        self.media: dict[str, Media] = {}
        self._next_media = FIRST_MEDIA_ID
        self.requests: list[Seen] = []
        self.violations: list[tuple[str, float, float]] = []
        """(route, when, allowed from): requests that came before the time a 429 named."""
        self.told: list[tuple[str, float, float]] = []
        """(route, when, until): every 429 and the time it named."""
        self.faults_injected = 0
        self._next = FIRST_ID
        self._faults: dict[str, deque[Fault]] = {}
        self._windows: dict[str, tuple[float, int]] = {}
        self._days: dict[str, tuple[float, int]] = {}
        self._wait_until: dict[str, float] = {}
        self._lock = threading.RLock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self.base_url: str | None = None

    # -- fault injection ----------------------------------------------------------------

    def fail_next(self, route: str, status: int, body: Any = None, headers: Mapping[str, str] | None = None,
                  count: int = 1, *, apply: bool = False) -> None:
        """Answer the next ``count`` requests to ``route`` with ``status``.

        Nothing is applied, unless ``apply``: then the request takes effect first (a 503 for a post
        that was in fact created).
        """
        if body is None:
            body = observed_body(status) if status in (429,) else _problem(
                status, http.client.responses.get(status, "Error"), http.client.responses.get(status, "Error"))
        self._queue(route, Fault(status=status, body=body, headers=dict(headers or {}), apply=apply), count)

    def rate_limit_next(self, route: str, *, reset: float | None = None, user_day_reset: float | None = None,
                        app_day_reset: float | None = None, count: int = 1) -> None:
        """Answer 429 (the observed body) with the given reset times (epoch seconds) as headers."""
        headers: dict[str, str] = {}
        if reset is not None:
            headers.update({"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(reset))})
        if user_day_reset is not None:
            headers.update({"x-user-limit-24hour-remaining": "0",
                            "x-user-limit-24hour-reset": str(int(user_day_reset))})
        if app_day_reset is not None:
            headers.update({"x-app-limit-24hour-remaining": "0",
                            "x-app-limit-24hour-reset": str(int(app_day_reset))})
        self._queue(route, Fault(status=429, body=observed_body(429), headers=headers), count)

    def delay_next(self, route: str, seconds: float, count: int = 1) -> None:
        """Apply the next request(s) to ``route`` normally but answer only after ``seconds``."""
        self._queue(route, Fault(delay=seconds), count)

    def drop_next(self, route: str, count: int = 1) -> None:
        """Accept then drop: apply the next request(s), then close the connection without an answer."""
        self._queue(route, Fault(drop=True), count)

    def _queue(self, route: str, fault: Fault, count: int) -> None:
        if route not in LIMITS:
            raise ValueError(f"unknown route {route!r}; known: {', '.join(LIMITS)}")
        with self._lock:
            self._faults.setdefault(route, deque()).extend(dataclasses.replace(fault) for _ in range(count))

    # -- state --------------------------------------------------------------------------

    def add_tweet(self, text: str, *, reply_to: str | None = None, at: float | None = None,
                  media_ids: list[str] | None = None, author: Mapping[str, str] | None = None,
                  tweet_id: str | None = None) -> Tweet:
        """Create a post directly (no request), as if the account (or ``author``: ``{"id", "username",
        "name"}``, someone else) had posted it; ``tweet_id``: the id a recording gave it (else the next)."""
        with self._lock:
            user = dict(author or ME)
            self.users[user["id"]] = user
            if tweet_id is None:
                tweet_id = str(self._next)
                self._next += 4096
            elif not tweet_id.isdigit() or tweet_id in self.tweets:
                raise ValueError(f"{tweet_id!r} is no free post id")
            conversation = self.tweets[reply_to].conversation_id if reply_to in self.tweets else tweet_id
            shown, urls, hashtags = shorten(tweet_id, text)
            if media_ids:  # X appends one link to the post's pictures (as the v1.1 recording with media shows)
                link = _tco(f"{tweet_id}:media")
                urls.append({"start": len(shown) + 1, "end": len(shown) + 1 + len(link), "url": link,
                             "expanded_url": f"https://x.com/{ME['username']}/status/{tweet_id}/photo/1",
                             "display_url": f"pic.x.com/{link.rsplit('/', 1)[1]}", "media_key": f"3_{media_ids[0]}"})
                shown += " " + link
            tweet = Tweet(tweet_id, text, self.clock() if at is None else at, user["id"], reply_to,
                          conversation, shown=shown, urls=urls, hashtags=hashtags, media_ids=list(media_ids or []),
                          reply_to_user=self.tweets[reply_to].author_id if reply_to in self.tweets else "")
            self.tweets[tweet_id] = tweet
            return tweet

    def delete(self, tweet_id: str) -> None:
        """Delete a post (it stays in memory, marked deleted)."""
        with self._lock:
            self.tweets[tweet_id].deleted = True

    def expire_media(self, media_id: str) -> None:
        """Forget an upload as X does when its ``expires_after_secs`` ran out unused."""
        with self._lock:
            self.media[media_id].expired = True

    def usable(self, media_id: str, now: float) -> bool:
        media = self.media.get(media_id)
        return media is not None and not media.expired and now < media.uploaded_at + MEDIA_LIFETIME

    def live(self) -> list[Tweet]:
        """The account's posts that are not deleted, oldest first."""
        with self._lock:
            return [t for t in self.tweets.values() if not t.deleted]

    # -- the protocol -------------------------------------------------------------------

    def handle(self, method: str, url: str, headers: Mapping[str, str], body: bytes | str | None
               ) -> tuple[int, dict[str, str], bytes]:
        """Answer one request; sleeps for a delay fault, raises ``ConnectionDropped`` for a drop."""
        reply = self.respond(method, url, headers, body)
        if reply.drop:
            raise ConnectionDropped(f"{method} {url}: applied, then the connection was dropped")
        if reply.delay:
            time.sleep(reply.delay)
        return reply.status, reply.headers, reply.body

    def respond(self, method: str, url: str, headers: Mapping[str, str], body: bytes | str | None) -> Reply:
        """Answer one request, leaving delays and drops to the caller."""
        parts = urlsplit(url)
        path = parts.path
        for prefix in ("/2/", "/1.1/"):
            if prefix in path:
                path = path[path.find(prefix):]
                break
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        raw = body.encode() if isinstance(body, str) else (body or b"")
        headers = {str(k): v.decode("latin-1") if isinstance(v, bytes) else str(v) for k, v in headers.items()}
        lower = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            now = self.clock()
            route, params = self._route(method.upper(), path)
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = None
            form = multipart(lower.get("content-type", ""), raw)
            self.requests.append(Seen(method.upper(), path, route or "", query, payload, dict(headers), now,
                                      form, raw))
            if route is None:
                return self._reply(404, _problem(404, "Not Found Error", f"no route {method} {path}"), None, now)
            if now < self._wait_until.get(route, 0):
                self.violations.append((route, now, self._wait_until[route]))
            fault = self._faults[route].popleft() if self._faults.get(route) else None
            if fault is not None:
                self.faults_injected += 1
            if fault is not None and fault.status is not None and not fault.apply:
                self._count(route, now)
                return self._reply(fault.status, fault.body, route, now, fault.headers)
            if self.credentials is not None and not self._signed(method.upper(), path, parts.query,
                                                                 lower.get("authorization", "")):
                return self._reply(401, UNAUTHORIZED, route, now)
            if not lower.get("authorization", "").startswith("OAuth "):
                return self._reply(401, UNAUTHORIZED, route, now)
            limited = self._count(route, now)
            if limited is not None:
                return self._reply(429, observed_body(429), route, now, limited)
            status, answer, extra = (self._upload(form, now) if route == "POST /1.1/media/upload.json"
                                     else self._apply(route, params, query, payload, now))
            if fault is not None and fault.status is not None:  # applied, then answered with the fault
                return self._reply(fault.status, fault.body, route, now, fault.headers)
            reply = self._reply(status, answer, route, now, extra)
            if fault is not None:
                reply.delay, reply.drop = fault.delay, fault.drop
            return reply

    def _route(self, method: str, path: str) -> tuple[str | None, dict[str, str]]:
        for verb, pattern, name in ROUTES:
            match = pattern.fullmatch(path)
            if verb == method and match:
                return name, match.groupdict()
        return None, {}

    def _signed(self, method: str, path: str, query: str, authorization: str) -> bool:
        """Whether the request carries a valid OAuth 1.0a HMAC-SHA1 signature for our credentials."""
        if not authorization.startswith("OAuth ") or self.credentials is None:
            return False
        consumer_key, consumer_secret, token, token_secret = self.credentials
        try:
            given = dict(oauth_utils.parse_authorization_header(authorization))
            params = oauth_signature.collect_parameters(uri_query=query, headers={"Authorization": authorization},
                                                        exclude_oauth_signature=True, with_realm=False)
        except ValueError:
            return False
        if unquote(given.get("oauth_consumer_key", "")) != consumer_key or unquote(given.get("oauth_token", "")) != token:
            return False
        signed_base = UPLOAD_BASE if path.startswith("/1.1/media/") else PUBLIC_BASE
        base = oauth_signature.signature_base_string(
            method, oauth_signature.base_string_uri(signed_base + path), oauth_signature.normalize_parameters(params))
        key = f"{oauth_utils.escape(consumer_secret)}&{oauth_utils.escape(token_secret)}".encode()
        expected = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha1).digest()).decode()
        return hmac.compare_digest(expected, unquote(given.get("oauth_signature", "")))

    def _count(self, route: str, now: float) -> dict[str, str] | None:
        """Count a request against its limits; the 429 headers when one is exceeded."""
        start, used = self._windows.get(route, (now, 0))
        if now >= start + WINDOW:
            start, used = now, 0
        self._windows[route] = (start, used + 1)
        over: dict[str, str] = {}
        if used + 1 > LIMITS[route]:
            over["x-rate-limit-remaining"] = "0"
        if route == "POST /2/tweets":
            for scope, limit in self.daily.items():
                day_start, day_used = self._days.get(scope, (now, 0))
                if now >= day_start + DAY:
                    day_start, day_used = now, 0
                self._days[scope] = (day_start, day_used + 1)
                if day_used + 1 > limit:
                    over[f"x-{scope}-limit-24hour-remaining"] = "0"
        return over or None

    def _limit_headers(self, route: str | None, now: float) -> dict[str, str]:
        if route is None:
            return {}
        start, used = self._windows.get(route, (now, 0))
        headers = {"x-rate-limit-limit": str(LIMITS[route]),
                   "x-rate-limit-remaining": str(max(0, LIMITS[route] - used)),
                   "x-rate-limit-reset": str(int(start + WINDOW))}
        if route == "POST /2/tweets":
            for scope, limit in self.daily.items():
                day_start, day_used = self._days.get(scope, (now, 0))
                headers.update({f"x-{scope}-limit-24hour-limit": str(limit),
                                f"x-{scope}-limit-24hour-remaining": str(max(0, limit - day_used)),
                                f"x-{scope}-limit-24hour-reset": str(int(day_start + DAY))})
        return headers

    def _reply(self, status: int, body: Any, route: str | None, now: float,
               extra: Mapping[str, str] | None = None) -> Reply:
        headers = {"content-type": JSON_TYPE, "api-version": "2.28", "x-access-level": self.access_level,
                   "cache-control": "no-cache, no-store, max-age=0"}
        headers.update(self._limit_headers(route, now))
        headers.update(extra or {})
        if status == 429 and "0" not in (headers.get(f"x-{p}-remaining") for p in
                                         ("rate-limit", "user-limit-24hour", "app-limit-24hour")):
            headers["x-rate-limit-remaining"] = "0"  # a 429 always names the limit that ran out
        if status == 429 and route is not None:
            until = _announced_wait(headers, now)
            self.told.append((route, now, until))
            self._wait_until[route] = max(self._wait_until.get(route, 0), until)
        payload = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        if route is not None and route.startswith("POST /1.1/"):
            payload = payload.replace(b"/", b"\\/")  # v1.1 escapes slashes, as recorded: "image\/png"
        return Reply(status, headers, payload)

    def _apply(self, route: str, params: dict[str, str], query: dict[str, str], payload: Any, now: float
               ) -> tuple[int, Any, dict[str, str]]:
        if route == "POST /2/tweets":
            return self._create(payload)
        if route == "DELETE /2/tweets/:id":
            tweet = self.tweets.get(params["id"])
            if tweet is None or tweet.deleted:
                return 200, {"data": {"deleted": False}}, {}
            tweet.deleted = True
            return 200, {"data": {"deleted": True}}, {}
        if route == "GET /2/users/me":
            return 200, {"data": dict(ME)}, {}
        if route == "POST /1.1/media/metadata/create.json":
            return self._alt(payload)
        if route == "PUT /2/tweets/:id/hidden":
            return self._hide(params["id"], payload)
        fields = set(filter(None, query.get("tweet.fields", "").split(",")))
        if route == "GET /2/tweets/search/recent":
            return self._search(query, fields, now)
        if route == "GET /2/tweets/:id":
            tweet_id = params["id"]
            if not tweet_id.isdigit():
                return 400, _invalid(f"The `id` query parameter value [{tweet_id}] is not valid",
                                     id=[tweet_id]), {}
            tweet = self.tweets.get(tweet_id)
            if tweet is None or tweet.deleted:
                return 200, {"errors": [{"value": tweet_id, "detail": f"Could not find tweet with id: [{tweet_id}].",
                                         "title": "Not Found Error", "resource_type": "tweet", "parameter": "id",
                                         "resource_id": tweet_id,
                                         "type": "https://api.twitter.com/2/problems/resource-not-found"}]}, {}
            return 200, {"data": tweet.render(fields)}, {}
        return self._timeline(params["id"], query, fields)

    def _upload(self, form: list[Part], now: float) -> tuple[int, Any, dict[str, str]]:
        """``POST /1.1/media/upload.json``: the multipart field ``media`` (a simple upload, images only).

        The 400 bodies are NOT recorded: v1.1-shaped assumptions."""
        from PIL import Image as PILImage

        part = next((p for p in form if p.name == "media"), None)
        if part is None or not part.data:
            return 400, _v1_error(38, "media parameter is missing."), {}
        try:
            with PILImage.open(io.BytesIO(part.data)) as probe:
                kind, (width, height) = (probe.format or "").lower(), probe.size
        except Exception:  # anything Pillow cannot read is no image
            return 400, _v1_error(324, "media type unrecognized."), {}
        mime = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}.get(kind)
        if mime is None:
            return 400, _v1_error(324, "media type unrecognized."), {}
        media = Media(str(self._next_media), part.data, mime, width, height, now, part.filename)
        self._next_media += 4096
        self.media[media.id] = media
        return 200, media.answer(), {}

    def _alt(self, payload: Any) -> tuple[int, Any, dict[str, str]]:
        """``POST /1.1/media/metadata/create.json`` ``{"media_id", "alt_text": {"text"}}``: NOT recorded (tweepy's
        request shape; X documents an empty 200 answer and at most 1000 characters)."""
        media_id = str(payload.get("media_id", "")) if isinstance(payload, dict) else ""
        alt = (payload.get("alt_text") or {}).get("text") if isinstance(payload, dict) else None
        if not isinstance(alt, str):
            return 400, _v1_error(38, "alt_text parameter is missing."), {}
        if len(alt) > 1000:
            return 400, _v1_error(44, "alt_text.text must be <= 1000 characters."), {}
        media = self.media.get(media_id)
        if media is None or media.expired:
            return 400, _v1_error(324, f"Invalid media id {media_id}"), {}
        media.alt = alt
        return 200, b"", {}

    def _create(self, payload: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(payload, dict) or not isinstance(payload.get("text"), str) or not payload["text"]:
            return 400, _invalid("$.text: is missing but it is required"), {}
        text = payload["text"]
        if weighted_length(text) > 280:
            return 400, _invalid(TOO_LONG), {}
        reply_to = (payload.get("reply") or {}).get("in_reply_to_tweet_id")
        if reply_to is not None and (reply_to not in self.tweets or self.tweets[reply_to].deleted):
            return 403, _problem(403, "Forbidden", REPLY_GONE), {}
        if reply_to is not None and not self._may_reply(self.tweets[reply_to]):
            return 403, _problem(403, "Forbidden", REPLY_CLOSED), {}
        media_ids = [str(m) for m in (payload.get("media") or {}).get("media_ids") or []]
        if media_ids and (len(media_ids) > 4 or not all(self.usable(m, self.clock()) for m in media_ids)):
            return 400, _invalid(MEDIA_INVALID, **{"media.media_ids": media_ids}), {}
        reply_settings = payload.get("reply_settings")
        if reply_settings is not None and reply_settings not in REPLY_SETTINGS:
            return 400, _invalid(f"$.reply_settings: does not have a value in the enumeration "
                                 f"[{', '.join(REPLY_SETTINGS)}]", reply_settings=[reply_settings]), {}
        if any(t.text == text and not t.deleted for t in self.tweets.values()):
            return 403, observed_body(403), {}
        tweet = self.add_tweet(text, reply_to=reply_to, media_ids=media_ids)
        if reply_settings is not None:
            tweet.reply_settings = reply_settings
        return 201, {"data": tweet.render(set(), created=True)}, {"location": f"{PUBLIC_BASE}/2/tweets/{tweet.id}"}

    def _may_reply(self, parent: Tweet) -> bool:
        """Whether the account may reply under ``parent``: its conversation's first post admits it. Its
        author always may; "mentionedUsers" admits those the post mentions, "following" those its author
        follows (the stand-in's account follows no one); "subscribers" and "verified" are not modelled
        (the account is neither)."""
        root = self.tweets.get(parent.conversation_id, parent)
        setting = root.reply_settings
        if setting == "everyone" or root.author_id == ME["id"]:
            return True
        return setting == "mentionedUsers" and f"@{ME['username']}".lower() in root.text.lower()

    def _hide(self, tweet_id: str, payload: Any) -> tuple[int, Any, dict[str, str]]:
        """``PUT /2/tweets/:id/hidden`` ``{"hidden": bool}`` -> ``{"data": {"hidden": bool}}`` (as recorded).

        NOT recorded: the answers to a post that is no reply in one of the account's conversations (403,
        :data:`NOT_YOUR_CONVERSATION`), to an unknown post (404) and to a body without a boolean (400)."""
        if not isinstance(payload, dict) or not isinstance(payload.get("hidden"), bool):
            return 400, _invalid("$.hidden: is missing but it is required"), {}
        tweet = self.tweets.get(tweet_id)
        if tweet is None or tweet.deleted:
            return 404, _problem(404, "Not Found Error", f"Could not find tweet with id: [{tweet_id}]."), {}
        root = self.tweets.get(tweet.conversation_id)
        if tweet.reply_to is None or root is None or root.author_id != ME["id"] or tweet.author_id == ME["id"]:
            return 403, _problem(403, "Forbidden", NOT_YOUR_CONVERSATION), {}
        tweet.hidden = payload["hidden"]
        return 200, {"data": {"hidden": tweet.hidden}}, {}

    def _search(self, query: dict[str, str], fields: set[str], now: float) -> tuple[int, Any, dict[str, str]]:
        """``GET /2/tweets/search/recent``: only the ``conversation_id:<id>`` query is understood (a 400 for any
        other); the posts of that conversation (its first post included) of the last 7 days, newest first,
        ``max_results`` 10..100 a page, ``next_token`` for the next page, and ``includes.users`` with
        ``expansions=author_id``. Hidden replies are found like the others (X documents no filter for them)."""
        match = re.fullmatch(r"\s*conversation_id:(\d+)\s*", query.get("query", ""))
        if match is None:
            return 400, _invalid(f"The stand-in understands only conversation_id:<id>, not {query.get('query')!r}",
                                 query=[query.get("query")]), {}
        try:
            size = int(query.get("max_results", "10"))
        except ValueError:
            size = 0
        if not 10 <= size <= 100:
            return 400, _invalid(f"The `max_results` query parameter value [{query.get('max_results')}] is not "
                                 "between 10 and 100", max_results=[query.get("max_results")]), {}
        found = [t for t in self.tweets.values() if not t.deleted and t.conversation_id == match.group(1)
                 and t.created_at >= now - SEARCH_WINDOW]
        found.sort(key=lambda t: int(t.id), reverse=True)
        offset = int(query.get("next_token", "n0")[1:] or 0)
        page = found[offset:offset + size]
        if not page:
            return 200, {"meta": {"result_count": 0}}, {}
        meta: dict[str, Any] = {"newest_id": page[0].id, "oldest_id": page[-1].id, "result_count": len(page)}
        if offset + size < len(found):
            meta["next_token"] = f"n{offset + size}"
        body: dict[str, Any] = {"data": [t.render(fields) for t in page], "meta": meta}
        if "author_id" in query.get("expansions", "").split(","):
            authors = dict.fromkeys(t.author_id for t in page)
            body["includes"] = {"users": [dict(self.users[a]) for a in authors if a in self.users]}
        return 200, body, {}

    def _timeline(self, user_id: str, query: dict[str, str], fields: set[str]) -> tuple[int, Any, dict[str, str]]:
        try:
            size = int(query.get("max_results", "10"))
        except ValueError:
            size = 0
        if not 5 <= size <= 100:
            return 400, _invalid(f"The `max_results` query parameter value [{query.get('max_results')}] is not "
                                 "between 5 and 100", max_results=[query.get("max_results")]), {}
        tweets = [t for t in self.tweets.values() if not t.deleted and t.author_id == user_id]
        for name, keep in (("start_time", lambda t, v: t.created_at >= v), ("end_time", lambda t, v: t.created_at < v)):
            if name in query:
                try:
                    bound = calendar.timegm(time.strptime(query[name], "%Y-%m-%dT%H:%M:%SZ"))
                except ValueError:
                    return 400, _invalid(f"Invalid '{name}':'{query[name]}'.", **{name: [query[name]]}), {}
                tweets = [t for t in tweets if keep(t, bound)]
        if "since_id" in query:
            tweets = [t for t in tweets if int(t.id) > int(query["since_id"])]
        tweets.sort(key=lambda t: int(t.id), reverse=True)
        offset = int(query.get("pagination_token", "p0")[1:] or 0)
        page = tweets[offset:offset + size]
        if not page:
            return 200, {"meta": {"result_count": 0}}, {}
        meta: dict[str, Any] = {"result_count": len(page), "newest_id": page[0].id, "oldest_id": page[-1].id}
        if offset + size < len(tweets):
            meta["next_token"] = f"p{offset + size}"
        return 200, {"data": [t.render(fields) for t in page], "meta": meta}, {}

    # -- front end 1: responses -----------------------------------------------------------

    def install(self, mock: Any, base: str = PUBLIC_BASE, upload_base: str = UPLOAD_BASE) -> None:
        """Register this stand-in with a ``responses.RequestsMock`` for every URL under ``base`` (and the
        media calls under ``upload_base``)."""
        pattern = re.compile(re.escape(base.rstrip("/")) + r"/2/.*")
        for method in ("GET", "POST", "DELETE", "PUT"):
            mock.add_callback(method, pattern, callback=self._callback, content_type=None)
        mock.add_callback("POST", re.compile(re.escape(upload_base.rstrip("/")) + r"/1\.1/media/.*"),
                          callback=self._callback, content_type=None)

    def _callback(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        reply = self.respond(request.method or "GET", request.url or "", dict(request.headers), request.body)
        if reply.drop:  # what requests raises when the server closes the connection without answering
            raise requests.ConnectionError(ProtocolError("Connection aborted.", http.client.RemoteDisconnected(
                "Remote end closed connection without response")), request=request)
        if reply.delay:
            timeout = (getattr(request, "req_kwargs", {}) or {}).get("timeout")
            read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
            if read_timeout is not None and reply.delay >= read_timeout:
                raise requests.ReadTimeout(ReadTimeoutError(None, request.url or "",  # type: ignore[arg-type]
                                                            f"Read timed out. (read timeout={read_timeout})"),
                                           request=request)
            time.sleep(reply.delay)
        return reply.status, reply.headers, reply.body

    # -- front end 2: a loopback HTTP server --------------------------------------------

    def serve(self) -> str:
        """Serve on 127.0.0.1 (a free port) in a background thread; returns the base URL."""
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with standin._lock:
                    standin._connections.add(self.connection)

            def finish(self) -> None:
                with standin._lock:
                    standin._connections.discard(self.connection)
                super().finish()

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = f"http://{self.headers.get('Host', '127.0.0.1')}{self.path}"
                reply = standin.respond(self.command, url, dict(self.headers.items()), body)
                if reply.drop:
                    self.close_connection = True  # closed without a byte of answer
                    return
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:  # the client gave up waiting
                    self.close_connection = True

            do_GET = do_POST = do_DELETE = do_PUT = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="x-standin",
                         daemon=True).start()
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        return self.base_url

    def stop(self) -> None:
        """Shut the loopback server down, closing the kept-alive connections too."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _announced_wait(headers: Mapping[str, str], now: float) -> float:
    """When a 429 with these headers allows the next request (as X documents it)."""
    resets = []
    if "x-rate-limit-reset" in headers and headers.get("x-rate-limit-remaining") == "0":
        resets.append(float(headers["x-rate-limit-reset"]))
    for scope in ("user", "app"):
        if headers.get(f"x-{scope}-limit-24hour-remaining") == "0":
            resets.append(float(headers[f"x-{scope}-limit-24hour-reset"]))
    return max(resets) if resets else now + WINDOW
