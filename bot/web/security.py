"""Who may use the dashboard, and proof that a form was sent from it.

* **Binding**: loopback needs nothing; any other address needs the operator token
  (:func:`check_bind`).
* **Binding**: a non-loopback address needs a strong token: 32 characters or more, with at least
  10 different ones (:func:`check_bind`).
* **Token**: when one is configured, every request carries it: HTTP Basic (any user name, the
  token as password), ``Authorization: Bearer TOKEN``, or the ``session`` cookie the login form
  sets: a random session id, kept in memory, that expires after an idle time and ends on logout
  or restart (:class:`Sessions`). Failed logins are limited per client address (:class:`LoginLimiter`).
* **Monitoring**: ``/metrics``, ``/healthz`` and ``/readyz`` are read without the token by a loopback
  client (a scraper on the same machine cannot log in); any other client sends ``Authorization: Bearer
  TOKEN``.
* **Host**: without a token the dashboard answers only to loopback host names, so a web page
  that rebinds its own DNS name to 127.0.0.1 cannot read it or use its forms.
* **CSRF**: every POST carries ``csrf_token``, an HMAC of the browser's random ``csrf`` cookie
  under the app's secret (a signed double-submit cookie), checked with :func:`hmac.compare_digest`.
  A POST without the ``csrf`` cookie, or from another site, is refused before its body is read.
* **Bodies**: a request body is counted while it streams in and refused (413) past its path's
  limit (:class:`BodyLimit`); nothing of an unauthorised request's body is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import aclosing
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from starlette.datastructures import FormData, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser, parse_options_header
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from posts.errors import BotError

CSRF_COOKIE = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_COOKIE = "session"
MIN_PUBLIC_TOKEN = 32
"""Shortest token accepted when the dashboard listens on a non-loopback address."""
MIN_TOKEN_VARIETY = 10
"""Fewest different characters such a token must have (``secrets.token_urlsafe(32)`` has about 30)."""
MAKE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_COOKIE_RE = re.compile(r"[A-Za-z0-9_-]{32,64}")

SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'self'; img-src 'self' https: data:; style-src 'self'; "
                                "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is only reachable from this machine."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen on a non-loopback address without a (long enough) operator token.

    Raises:
        BotError: one line naming the address and what to do.
    """
    if is_loopback(host):
        return
    if not token:
        raise BotError(f"refusing to serve the dashboard on {host} without an operator token: set "
                       f"ONEYEARAGO_WEB_TOKEN (e.g. to the output of `{MAKE_TOKEN}`), or bind 127.0.0.1")
    if len(token) < MIN_PUBLIC_TOKEN:
        raise BotError(f"refusing to serve the dashboard on {host}: ONEYEARAGO_WEB_TOKEN is shorter than "
                       f"{MIN_PUBLIC_TOKEN} characters; make a random one with `{MAKE_TOKEN}`")
    if len(set(token)) < MIN_TOKEN_VARIETY:
        raise BotError(f"refusing to serve the dashboard on {host}: ONEYEARAGO_WEB_TOKEN has fewer than "
                       f"{MIN_TOKEN_VARIETY} different characters; make a random one with `{MAKE_TOKEN}`")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


class Sessions:
    """Logged-in browsers: random ids (``secrets.token_urlsafe``), kept in memory only.

    A session ends after ``idle`` seconds without a request, on logout, and when the process
    stops (a restart logs everyone out). Only a hash of each id is kept, so a lookup does not
    compare secrets byte by byte.
    """

    def __init__(self, idle: float, *, clock: Callable[[], float] = time.monotonic, limit: int = 10_000):
        self.idle = idle
        self.clock = clock
        self.limit = limit
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def create(self) -> str:
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            if len(self._seen) >= self.limit:
                self._prune(now)
                while len(self._seen) >= self.limit:  # the least recently used go first
                    self._seen.pop(min(self._seen, key=self._seen.__getitem__))
            self._seen[_digest(sid)] = now
        return sid

    def valid(self, sid: str) -> bool:
        """Whether ``sid`` is a live session; a valid one is kept alive."""
        if not sid or len(sid) > 100:
            return False
        key, now = _digest(sid), self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None:
                return False
            if now - seen > self.idle:
                del self._seen[key]
                return False
            self._seen[key] = now
            return True

    def revoke(self, sid: str) -> None:
        with self._lock:
            self._seen.pop(_digest(sid), None)

    def __len__(self) -> int:
        return len(self._seen)

    def _prune(self, now: float) -> None:
        for key in [k for k, seen in self._seen.items() if now - seen > self.idle]:
            del self._seen[key]


class LoginLimiter:
    """At most ``failures`` failed logins per client address in ``window`` seconds; then 429."""

    def __init__(self, failures: int = 5, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic,
                 limit: int = 10_000):
        self.failures = failures
        self.window = window
        self.clock = clock
        self.limit = limit
        self._failed: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Seconds until ``client`` may try again (0: now)."""
        now = self.clock()
        with self._lock:
            times = self._failed.get(client)
            if not times:
                return 0
            while times and now - times[0] >= self.window:
                times.popleft()
            if not times:
                del self._failed[client]
                return 0
            if len(times) < self.failures:
                return 0
            return max(1, int(times[0] + self.window - now + 0.999))

    def failed(self, client: str) -> None:
        now = self.clock()
        with self._lock:
            if client not in self._failed and len(self._failed) >= self.limit:
                for key in [k for k, v in self._failed.items() if not v or now - v[-1] >= self.window]:
                    del self._failed[key]
                if len(self._failed) >= self.limit:
                    self._failed.pop(next(iter(self._failed)))
            times = self._failed.setdefault(client, deque(maxlen=self.failures))
            times.append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failed.pop(client, None)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def authorized(request: Request, token: str, sessions: Sessions | None = None) -> bool:
    """Whether the request carries the operator token (Basic, Bearer) or a live login session."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials and same(credentials, token):
        return True
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        _, sep, password = decoded.partition(":")
        if sep and same(password, token):
            return True
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return sessions is not None and bool(cookie) and sessions.valid(cookie)


def csrf_token(request: Request, secret: bytes) -> str:
    """The token this browser's forms carry: an HMAC of its ``csrf`` cookie."""
    cookie = request.scope.get("state", {}).get("csrf_cookie") or request.cookies.get(CSRF_COOKIE, "")
    return hmac.new(secret, cookie.encode(), hashlib.sha256).hexdigest()


def csrf_ok(request: Request, secret: bytes, given: Any) -> bool:
    """Whether ``given`` matches the token of the ``csrf`` cookie the request came with."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not isinstance(given, str) or not given or not _COOKIE_RE.fullmatch(cookie):
        return False
    expected = hmac.new(secret, cookie.encode(), hashlib.sha256).hexdigest()
    return same(given, expected)


def safe_next(target: str | None, default: str = "/") -> str:
    """A redirect target that stays on this site: a path, never ``//host``, a URL, or anything a
    browser could turn into one.

    Refused (``default`` instead): whitespace and control characters anywhere (browsers drop
    tabs and newlines, so ``/%09/evil`` would become ``//evil``), backslashes (read as ``/``), a
    scheme or host, and a path whose percent-decoded form (decoded repeatedly) is any of those.
    """
    if not target or len(target) > 2000:
        return default
    decoded, seen = target, {target}
    for _ in range(5):
        decoded = unquote(decoded)
        if decoded in seen:
            break
        seen.add(decoded)
    for form in seen:
        if not form.startswith("/") or form.startswith("//") or "\\" in form:
            return default
        if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in form):
            return default
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return default
    return target


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class BodyTooLarge(HTTPException):
    """A request body over its limit (413)."""


def limited(receive: Receive, limit: int, what: str) -> Receive:
    """``receive`` that counts the body as it streams in and stops past ``limit`` bytes (413)."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(413, f"{what} is larger than {_size(limit)}; nothing was read past it.")
        return message

    return counted


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"


def before_body(request: Request, limit: int, what: str) -> None:
    """Refuse a POST before reading any of its body: no ``csrf`` cookie (its form cannot carry a
    valid token), sent from another site (``Sec-Fetch-Site``), or a declared length over ``limit``.

    Raises:
        HTTPException: 403 or 413, with a message for the operator.
    """
    if not _COOKIE_RE.fullmatch(request.cookies.get(CSRF_COOKIE, "")):
        raise HTTPException(403, "This form is missing its security token, or it expired (the dashboard "
                                 "restarted, or cookies are blocked). Reload the page and try again.")
    # the browser says so (a proxy may rewrite Host, so Origin is not compared with it)
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        raise HTTPException(403, "This form was sent from another site; nothing was changed.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(413, f"{what} is larger than {_size(limit)}; nothing was read.")


class Guard:
    """ASGI middleware: host check, token check, the CSRF cookie and the security headers.

    A refused request is answered without reading any of its body.
    """

    def __init__(self, app: ASGIApp, *, token: str, allowed_hosts: Iterable[str] | None,
                 sessions: Sessions | None = None, secure_cookies: bool = False,
                 open_paths: tuple[str, ...] = ("/static/", "/login"), loopback_paths: tuple[str, ...] = ()):
        self.app = app
        self.token = token
        self.allowed_hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
        self.sessions = sessions
        self.secure_cookies = secure_cookies
        self.open_paths = open_paths
        self.loopback_paths = frozenset(loopback_paths)
        """Paths a loopback client reads without the token (monitoring: ``/metrics``, ``/healthz``, ``/readyz``);
        any other client sends the token, and is answered 401 (never the login form) without it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookie = request.cookies.get(CSRF_COOKIE, "")
        new_cookie = None
        if not _COOKIE_RE.fullmatch(cookie):
            cookie = new_cookie = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_cookie"] = cookie
        secure = self.secure_cookies or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if new_cookie:
                    headers.append("set-cookie", f"{CSRF_COOKIE}={new_cookie}; Path=/; HttpOnly; SameSite=Strict"
                                   + ("; Secure" if secure else ""))
            await send(message)

        refusal = self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        if self.allowed_hosts is not None and _host_name(request.headers.get("host", "")) not in self.allowed_hosts:
            return PlainTextResponse("This dashboard answers only to 127.0.0.1 and localhost; set "
                                     "ONEYEARAGO_WEB_TOKEN to use another host name.\n", status_code=400)
        path = request.url.path
        if not self.token or path.startswith(self.open_paths) or authorized(request, self.token, self.sessions):
            return None
        if path in self.loopback_paths:
            if is_loopback(client_address(request.scope)):
                return None
            return PlainTextResponse("The operator token is required (Authorization: Bearer TOKEN).\n",
                                     status_code=401, headers={"www-authenticate": 'Bearer realm="oneyearago"'})
        if "text/html" in request.headers.get("accept", ""):  # a browser: the login form, no Basic dialog
            if request.method in ("GET", "HEAD"):
                target = path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            return HTMLResponse('<!doctype html><meta charset="utf-8"><meta name="viewport" '
                                'content="width=device-width, initial-scale=1"><title>Refused · oneyearago</title>'
                                '<link rel="stylesheet" href="/static/style.css"><link rel="icon" href="/static/favicon.svg">'
                                '<main><h1>Refused</h1>'
                                '<p class="notice bad">The operator token is required: nothing was changed. '
                                '<a href="/login">Log in</a> and try again.</p></main>', status_code=401)
        return PlainTextResponse("The operator token is required (HTTP Basic with any user name, "
                                 "Authorization: Bearer, or log in at /login).\n", status_code=401,
                                 headers={"www-authenticate": 'Basic realm="oneyearago", charset="UTF-8"'})


class _FileLimitParser(MultiPartParser):
    """Starlette's multipart parser, refusing any one file past ``max_file_size`` as it streams in."""

    def __init__(self, *args: Any, max_file_size: int, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_file_size = max_file_size
        self._file_size = 0

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._file_size = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            self._file_size += end - start
            if self._file_size > self.max_file_size:
                name = self._current_part.file.filename or "a file"
                raise BodyTooLarge(413, f"{quoted(name)} is larger than {_size(self.max_file_size)} (the limit for "
                                        "one file); nothing was loaded.")
        super().on_part_data(data, start, end)


def quoted(name: str, limit: int = 80) -> str:
    """A user-given name for a message: escaped controls, cut after ``limit`` characters."""
    shown = name if len(name) <= limit else name[:limit] + "…"
    return repr(shown)


async def read_form(request: Request, *, limit: int, what: str, max_files: int = 0, max_fields: int = 20,
                    max_file_size: int = 0, max_field_size: int = 16 * 1024) -> FormData:
    """The request's form, read within limits while it streams in: ``limit`` bytes in all, at most
    ``max_files`` files of ``max_file_size`` bytes each, ``max_fields`` other fields of
    ``max_field_size`` bytes each.

    Raises:
        HTTPException: 413 past a size limit, 400 for a malformed form or too many parts.
    """
    body = Request(request.scope, limited(request.receive, limit, what))
    content_type, _ = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or not max_files:
        return await body.form(max_files=0, max_fields=max_fields, max_part_size=max_field_size)
    async with aclosing(body.stream()) as stream:
        parser = _FileLimitParser(body.headers, stream, max_files=max_files, max_fields=max_fields,
                                  max_part_size=max_field_size, max_file_size=max_file_size)
        try:
            return await parser.parse()
        except MultiPartException as exc:
            raise HTTPException(400, f"The form could not be read: {exc.message}") from None
