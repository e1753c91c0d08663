"""Who may use the dashboard, and proof that a form was sent from it.

* **Binding**: loopback needs nothing; any other address needs the operator token
  (:func:`check_bind`).
* **Token**: when one is configured, every request carries it: HTTP Basic (any user name, the
  token as password), ``Authorization: Bearer TOKEN``, or the ``token`` cookie the login form sets.
* **Host**: without a token the dashboard answers only to loopback host names, so a web page
  that rebinds its own DNS name to 127.0.0.1 cannot read it or use its forms.
* **CSRF**: every POST carries ``csrf_token``, an HMAC of the browser's random ``csrf`` cookie
  under the app's secret (a signed double-submit cookie), checked with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.errors import BotError

CSRF_COOKIE = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
TOKEN_COOKIE = "token"
MIN_PUBLIC_TOKEN = 12
"""Shortest token accepted when the dashboard listens on a non-loopback address."""
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
                       "ONEYEARAGO_WEB_TOKEN (e.g. to the output of `python -c 'import secrets; "
                       "print(secrets.token_urlsafe(32))'`), or bind 127.0.0.1")
    if len(token) < MIN_PUBLIC_TOKEN:
        raise BotError(f"refusing to serve the dashboard on {host}: ONEYEARAGO_WEB_TOKEN is shorter than "
                       f"{MIN_PUBLIC_TOKEN} characters; use a long random one")


def login_cookie(token: str) -> str:
    """The value of the ``token`` cookie: derived from the token, so the cookie never holds it."""
    return hmac.new(token.encode(), b"oneyearago-web-login", hashlib.sha256).hexdigest()


def same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


def authorized(request: Request, token: str) -> bool:
    """Whether the request carries the operator token (Basic, Bearer or the login cookie)."""
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
    cookie = request.cookies.get(TOKEN_COOKIE, "")
    return bool(cookie) and same(cookie, login_cookie(token))


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
    """A redirect target that stays on this site (a path, never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware: host check, token check, the CSRF cookie and the security headers."""

    def __init__(self, app: ASGIApp, *, token: str, allowed_hosts: Iterable[str] | None,
                 open_paths: tuple[str, ...] = ("/static/", "/login")):
        self.app = app
        self.token = token
        self.allowed_hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
        self.open_paths = open_paths

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
        secure = scope.get("scheme") == "https"

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
        if not self.token or path.startswith(self.open_paths) or authorized(request, self.token):
            return None
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
