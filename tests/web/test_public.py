"""The dashboard in public: bodies read within limits (and not at all when refused), random
sessions that end, a login rate limit, cookie flags, and redirects that stay on the site."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from bot.models import DeliveryStatus as S
from bot.store import Store
from bot.web import create_app
from bot.web.app import MAX_LOGIN_BYTES, MAX_UPLOAD_BYTES, MAX_UPLOAD_FILE_BYTES
from bot.web.security import LoginLimiter, Sessions, safe_next
from tests.web.helpers import csrf_of, delivery, set_status

TOKEN = "Zq8-vL3nWp0xKc7RtY2mHs5bJf9dGa4e"
CSRF_COOKIE = "c" * 43
CHUNK = b"a" * 65536


# ---------------------------------------------------------------------------- bodies, at the ASGI level


class Body:
    """A request body sent in ``chunks`` pieces of 64 KB (chunked: no Content-Length unless given)."""

    def __init__(self, chunks: int, head: bytes = b"", tail: bytes = b""):
        self.pieces: Iterator[bytes] = iter([head, *(CHUNK for _ in range(chunks)), tail])
        self.read = 0
        self.calls = 0

    async def receive(self) -> dict[str, Any]:
        self.calls += 1
        piece = next(self.pieces, None)
        if piece is None:
            return {"type": "http.disconnect"}
        self.read += len(piece)
        return {"type": "http.request", "body": piece, "more_body": True}


def post(app: Any, path: str, body: Body, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """POST ``body`` to ``app`` as a server would pass it on; returns (status, headers, text)."""
    sent: list[dict[str, Any]] = []
    raw = [(b"host", b"127.0.0.1:8080"), (b"cookie", f"csrf={CSRF_COOKIE}".encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": raw, "client": ("203.0.113.9", 5000), "server": ("127.0.0.1", 8080)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, body.receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    text = html.unescape(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode())
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, text


def multipart(name: str, boundary: str = "b0undary") -> tuple[bytes, bytes, dict[str, str]]:
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head, tail, {"content-type": f"multipart/form-data; boundary={boundary}"}


@pytest.fixture
def app(settings, loaded: Store) -> Any:
    return create_app(settings, loaded)


@pytest.fixture
def guarded_app(settings, loaded: Store) -> Any:
    return create_app(settings, loaded, token=TOKEN, public=True)


def test_an_unauthorised_post_is_refused_without_reading_its_body(guarded_app):
    for path in ("/upload", "/retry/1", "/skip/first-story", "/logout"):
        body = Body(1000)
        status, _, _ = post(guarded_app, path, body)
        assert status == 401 and body.read == 0, path


def test_a_post_without_the_csrf_cookie_is_refused_unread(settings, loaded):
    app = create_app(settings, loaded)
    for path in ("/upload", "/login", "/retry/1"):
        body = Body(1000)
        sent: list[int] = []
        scope_headers = {"content-type": "multipart/form-data; boundary=x"}
        raw = [(b"host", b"127.0.0.1:8080")] + [(k.encode(), v.encode()) for k, v in scope_headers.items()]
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": raw, "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080)}

        async def send(message: dict[str, Any], sent: list[int] = sent) -> None:
            if message["type"] == "http.response.start":
                sent.append(message["status"])

        asyncio.run(app(scope, body.receive, send))
        assert sent == [403] and body.read == 0, path


def test_a_post_from_another_site_is_refused_unread(app):
    body = Body(1000)
    status, _, text = post(app, "/upload", body, {"sec-fetch-site": "cross-site"})
    assert status == 403 and "another site" in text and body.read == 0


def test_a_declared_length_over_the_limit_is_refused_unread(app):
    body = Body(1000)
    status, _, text = post(app, "/upload", body, {"content-length": str(MAX_UPLOAD_BYTES + 1)})
    assert status == 413 and "20 MB" in text and body.read == 0


def test_a_chunked_login_stops_at_4_kb(guarded_app):
    body = Body(100_000)  # 6.5 GB if it were all read
    status, _, text = post(guarded_app, "/login", body, {"content-type": "application/x-www-form-urlencoded"})
    assert status == 413 and "login form is larger than 4 KB" in text
    assert body.read <= MAX_LOGIN_BYTES + len(CHUNK)


def test_a_chunked_upload_stops_at_its_limit(app):
    head, tail, headers = multipart("big.yaml")
    # one file over the per-file limit, sent without a Content-Length
    body = Body(100_000, head)
    status, _, text = post(app, "/upload", body, headers)
    assert status == 413
    assert body.read <= MAX_UPLOAD_FILE_BYTES + 2 * len(CHUNK)
    assert "'big.yaml' is larger than 10 MB" in text


def test_the_whole_upload_is_limited_while_it_streams(app):
    boundary = "b0undary"
    one = b"a" * (MAX_UPLOAD_FILE_BYTES - 1024)
    parts = []
    for i in range(3):
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"f{i}.yaml\"\r\n\r\n"
                     .encode() + one + b"\r\n")
    pieces = [p[i:i + 65536] for p in parts for i in range(0, len(p), 65536)]
    body = Body(0)
    body.pieces = iter(pieces)
    status, _, text = post(app, "/upload", body, {"content-type": f"multipart/form-data; boundary={boundary}"})
    assert status == 413 and "The upload is larger than 20 MB" in text
    assert body.read <= MAX_UPLOAD_BYTES + 65536


def test_other_forms_are_small(app):
    body = Body(10_000)
    status, _, _ = post(app, "/retry/1", body, {"content-type": "application/x-www-form-urlencoded"})
    assert status == 413 and body.read <= 16 * 1024 + len(CHUNK)


# ---------------------------------------------------------------------------- sessions


@pytest.fixture
def guarded(make_client, loaded: Store) -> TestClient:
    return make_client(token=TOKEN, public=True)


def log_in(client: TestClient, token: str = TOKEN) -> Any:
    csrf = csrf_of(client, "/login")
    return client.post("/login", data={"csrf_token": csrf, "token": token, "next": "/status"})


def test_each_login_gets_a_new_random_session_that_holds_no_token(guarded: TestClient):
    first = log_in(guarded)
    assert first.status_code == 303
    one = guarded.cookies.get("session")
    guarded.cookies.delete("session")
    log_in(guarded)
    two = guarded.cookies.get("session")
    assert one and two and one != two and len(one) >= 40
    assert TOKEN not in one and TOKEN not in first.headers["set-cookie"]


def test_logout_ends_the_session_on_the_server(guarded: TestClient):
    log_in(guarded)
    cookie = guarded.cookies.get("session")
    assert guarded.get("/status").status_code == 200
    csrf = csrf_of(guarded, "/status")
    assert guarded.post("/logout", data={"csrf_token": csrf}).status_code == 303
    guarded.cookies.set("session", cookie)  # a copy of the cookie, replayed after logout
    assert guarded.get("/status").status_code == 401


def test_a_restart_ends_every_session(make_client, loaded):
    before = make_client(token=TOKEN, public=True)
    log_in(before)
    cookie = before.cookies.get("session")
    after = make_client(token=TOKEN, public=True)  # the same token, a new process
    after.cookies.set("session", cookie)
    assert after.get("/status").status_code == 401


def test_a_session_expires_after_the_idle_time(make_client, web_settings, loaded):
    settings = web_settings(web_session_idle="1h")
    client = make_client(settings_=settings, token=TOKEN, public=True)
    sessions = client.app.state.web.sessions
    assert sessions.idle == 3600
    clock = [1000.0]
    sessions.clock = lambda: clock[0]
    log_in(client)
    clock[0] += 3000
    assert client.get("/status").status_code == 200  # in use: kept alive
    clock[0] += 3000
    assert client.get("/status").status_code == 200
    clock[0] += 3601
    assert client.get("/status").status_code == 401


def test_sessions_in_memory_are_bounded():
    clock = [0.0]
    sessions = Sessions(60, clock=lambda: clock[0], limit=10)
    ids = [sessions.create() for _ in range(25)]
    assert len(sessions) == 10
    assert sessions.valid(ids[-1]) and not sessions.valid(ids[0])
    clock[0] = 61
    assert not sessions.valid(ids[-1])
    assert not sessions.valid("") and not sessions.valid("x" * 1000)


def test_failed_logins_are_limited_per_address(guarded: TestClient):
    clock = [0.0]
    guarded.app.state.web.logins.clock = lambda: clock[0]
    for _ in range(5):
        assert log_in(guarded, "wrong").status_code == 401
    refused = log_in(guarded, TOKEN)  # even the right token waits
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "try again in" in refused.text and TOKEN not in refused.text
    clock[0] += 61
    assert log_in(guarded, TOKEN).status_code == 303


def test_the_rate_limit_is_refused_before_the_body_is_read(guarded_app):
    limiter: LoginLimiter = guarded_app.state.web.logins
    for _ in range(5):
        limiter.failed("203.0.113.9")
    body = Body(1000)
    status, headers, _ = post(guarded_app, "/login", body, {"content-type": "application/x-www-form-urlencoded"})
    assert status == 429 and "retry-after" in headers and body.read == 0
    other = LoginLimiter(failures=2, window=10, limit=3)
    for address in ("a", "b", "c", "d", "e"):
        other.failed(address)
    assert len(other._failed) <= 3


# ---------------------------------------------------------------------------- cookies


def test_cookies_are_strict_and_http_only(guarded: TestClient):
    response = log_in(guarded)
    cookie = response.headers["set-cookie"]
    assert "session=" in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would never come back


def test_secure_cookies_behind_a_tls_proxy(make_client, web_settings, loaded):
    settings = web_settings(web_secure_cookies="true")
    client = make_client(settings_=settings, token=TOKEN, public=True)
    page = client.get("/login")
    assert "; Secure" in page.headers["set-cookie"]  # the csrf cookie
    csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text).group(1)
    # the proxy speaks https to the browser, which sends the Secure cookie back
    client.cookies.set("csrf", re.search(r"csrf=([^;]+)", page.headers["set-cookie"]).group(1))
    ok = client.post("/login", data={"csrf_token": csrf, "token": TOKEN})
    assert "session=" in ok.headers["set-cookie"] and "Secure" in ok.headers["set-cookie"]


def test_secure_cookies_over_https(settings, loaded):
    client = TestClient(create_app(settings, loaded, token=TOKEN, public=True), base_url="https://127.0.0.1",
                        follow_redirects=False)
    assert "; Secure" in client.get("/login").headers["set-cookie"]


# ---------------------------------------------------------------------------- redirects

HOSTILE = ["//evil.example", "//evil.example/x", "/\\evil.example", "\\\\evil.example", "\t//evil.example",
           "/\t/evil.example/x", "/\n/evil.example", "/\r/evil.example", "/ /evil.example", "/%09/evil.example/x",
           "/%0a/evil.example", "/%2F%2Fevil.example", "/%2f/evil.example", "/%5Cevil.example",
           "/%252F%252Fevil.example", "https:evil.example", "https://evil.example", "javascript:alert(1)",
           "http:/evil.example", "evil.example", " /status", "/status\x00", "/\u2028/evil.example",
           "/\u200b/evil.example", "///evil.example", "//\\evil.example", "", None]


@pytest.mark.parametrize("target", HOSTILE)
def test_safe_next_refuses_anything_that_could_leave_the_site(target):
    assert safe_next(target, "/status") == "/status"


@pytest.mark.parametrize("target", ["/", "/status", "/story/a?x=1", "/?start=2026-03-02&weeks=2", "/story/%C3%A9t%C3%A9"])
def test_safe_next_keeps_paths_on_the_site(target):
    assert safe_next(target) == target


def test_the_cancel_link_never_leaves_the_site(client: TestClient, loaded: Store):
    row = delivery(loaded, "first-story", "x")
    set_status(loaded, row.id, S.FAILED.value, error="boom")
    for target in ("/%09/evil.example/x", "%2F%2Fevil.example", "/%5Cevil.example", "%0A//evil.example"):
        page = client.get(f"/retry/%23{row.id}?next={target}")
        assert page.status_code == 200
        hrefs = re.findall(r'href="([^"]*)"', page.text)
        assert all("evil" not in h for h in hrefs), hrefs
        assert 'href="/status">Cancel' in page.text
    page = client.get(f"/retry/%23{row.id}?next={quote('/story/first-story', safe='')}")
    assert 'href="/story/first-story">Cancel' in page.text


def test_the_login_form_keeps_only_a_safe_next(guarded: TestClient):
    page = guarded.get("/login?next=/%09/evil.example/x")
    assert 'name="next" value="/"' in page.text and "evil" not in page.text
    csrf = csrf_of(guarded, "/login")
    for target in ("/\t/evil.example/x", "/%09/evil.example", "https:evil.example"):
        done = guarded.post("/login", data={"csrf_token": csrf, "token": TOKEN, "next": target})
        assert done.headers["location"] == "/"
