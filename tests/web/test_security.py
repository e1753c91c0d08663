"""Who may use the dashboard: loopback by default, the operator token otherwise, CSRF on every POST."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bot.cli import main
from bot.models import DeliveryStatus as S
from bot.store import Store
from bot.web import check_bind, create_app, is_loopback
from bot.web.security import safe_next
from posts.errors import BotError
from tests.web.helpers import BASE, csrf_of, delivery, set_status

TOKEN = "Zq8-vL3nWp0xKc7RtY2mHs5bJf9dGa4e"


@pytest.fixture
def guarded(make_client, loaded: Store) -> TestClient:
    """The app as served on a non-loopback address with a token."""
    return make_client(token=TOKEN, public=True)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "[::1]"])
def test_loopback_needs_no_token(host):
    assert is_loopback(host)
    check_bind(host, "")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_any_other_address_needs_a_token(host):
    assert not is_loopback(host)
    with pytest.raises(BotError, match=f"refusing to serve the dashboard on {host} without an operator token"):
        check_bind(host, "")
    with pytest.raises(BotError, match="shorter than 32 characters; make a random one with .*token_urlsafe"):
        check_bind(host, "correct-horse-battery-staple")
    with pytest.raises(BotError, match="fewer than 10 different characters; make a random one"):
        check_bind(host, "ab" * 20)
    check_bind(host, TOKEN)
    import secrets

    for _ in range(200):  # what the error says to run always passes
        check_bind(host, secrets.token_urlsafe(32))


def test_the_app_refuses_to_be_public_without_a_token(settings, store):
    with pytest.raises(BotError, match="ONEYEARAGO_WEB_TOKEN"):
        create_app(settings, store, public=True)
    create_app(settings, store, public=True, token=TOKEN)


def test_the_token_setting_is_read_when_present(settings, store):
    class WithToken:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            return TOKEN if name == "web_token" else getattr(self._inner, name)

    app = create_app(WithToken(settings), store, public=True)
    client = TestClient(app, base_url=BASE, follow_redirects=False)
    assert client.get("/status", headers={"Accept": "text/plain"}).status_code == 401
    assert client.get("/status", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_with_a_token_every_page_needs_it(guarded: TestClient):
    for path in ("/", "/status", "/story/first-story", "/upload", "/retry/1", "/skip/first-story"):
        page = guarded.get(path, headers={"Accept": "text/html"})
        assert page.status_code == 303, path
        assert page.headers["location"].startswith("/login?next=")
        assert guarded.get(path, headers={"Accept": "*/*"}).status_code == 401
    refused = guarded.get("/status")
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert TOKEN not in refused.text


def test_basic_bearer_and_cookie_carry_the_token(guarded: TestClient):
    assert guarded.get("/status", headers=basic("anyone", TOKEN)).status_code == 200
    assert guarded.get("/status", headers=basic("", TOKEN)).status_code == 200
    assert guarded.get("/status", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    for wrong in (basic("anyone", TOKEN + "x"), {"Authorization": "Bearer nope"}, {"Authorization": "Basic !!"},
                  basic(TOKEN, "")):
        assert guarded.get("/status", headers=wrong).status_code == 401
    import hashlib
    import hmac

    # the cookie the dashboard used to derive from the token opens nothing
    guarded.cookies.set("token", hmac.new(TOKEN.encode(), b"oneyearago-web-login", hashlib.sha256).hexdigest())
    guarded.cookies.set("session", hmac.new(TOKEN.encode(), b"oneyearago-web-login", hashlib.sha256).hexdigest())
    assert guarded.get("/status").status_code == 401


def test_login_form_sets_the_cookie(guarded: TestClient):
    form = guarded.get("/login?next=/status")
    assert form.status_code == 200 and 'type="password"' in form.text
    token = csrf_of(guarded, "/login")
    wrong = guarded.post("/login", data={"csrf_token": token, "token": "guess", "next": "/status"})
    assert wrong.status_code == 401 and "not the operator token" in wrong.text
    assert guarded.post("/login", data={"token": TOKEN, "next": "/status"}).status_code == 403  # no CSRF
    ok = guarded.post("/login", data={"csrf_token": token, "token": TOKEN, "next": "/status"})
    assert ok.status_code == 303 and ok.headers["location"] == "/status"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert TOKEN not in cookie
    assert guarded.get("/status").status_code == 200
    off = guarded.post("/logout", data={"csrf_token": token})
    assert off.status_code == 303
    assert guarded.get("/status", headers={"Accept": "text/html"}).status_code == 303


def test_login_never_redirects_off_site(guarded: TestClient):
    token = csrf_of(guarded, "/login")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = guarded.post("/login", data={"csrf_token": token, "token": TOKEN, "next": target})
        assert response.headers["location"] == "/"
    assert safe_next("/story/a?x=1") == "/story/a?x=1"


def test_actions_need_the_token_and_the_csrf_token(guarded: TestClient, loaded: Store):
    row = delivery(loaded, "first-story", "x")
    set_status(loaded, row.id, S.FAILED.value, error="boom")
    csrf = csrf_of(guarded, "/login")
    refused = guarded.post(f"/retry/%23{row.id}", data={"csrf_token": csrf})
    assert refused.status_code == 401
    assert delivery(loaded, "first-story", "x").status == S.FAILED.value
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.post(f"/retry/%23{row.id}", headers=auth).status_code == 403
    assert delivery(loaded, "first-story", "x").status == S.FAILED.value
    assert guarded.post(f"/retry/%23{row.id}", headers=auth, data={"csrf_token": csrf}).status_code == 200
    assert delivery(loaded, "first-story", "x").status == S.PENDING.value


def test_static_files_and_login_are_open(guarded: TestClient):
    assert guarded.get("/static/style.css").status_code == 200
    assert guarded.get("/login").status_code == 200


def test_without_a_token_only_loopback_host_names_are_answered(make_client, loaded):
    client = make_client()
    assert client.get("/", headers={"Host": "127.0.0.1:8080"}).status_code == 200
    assert client.get("/", headers={"Host": "localhost"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8080"}).status_code == 200
    rebound = client.get("/", headers={"Host": "attacker.example:8080"})
    assert rebound.status_code == 400 and "ONEYEARAGO_WEB_TOKEN" in rebound.text


def test_with_a_token_any_host_name_is_answered(guarded: TestClient):
    assert guarded.get("/status", headers={"Host": "bot.example.org", "Authorization": f"Bearer {TOKEN}"}
                       ).status_code == 200


# ---------------------------------------------------------------------------- the CLI command


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith("ONEYEARAGO_"):
            monkeypatch.delenv(name)
    calls: list[dict] = []
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    return calls


def run_cli(*args: str) -> int:
    try:
        main(["--db", "sqlite:///queue.db", *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_web_command_serves_on_loopback_by_default(cli_env, capsys):
    assert run_cli("web", "--port", "8099") == 0
    assert cli_env[0]["host"] == "127.0.0.1" and cli_env[0]["port"] == 8099
    assert "dashboard on http://127.0.0.1:8099/" in capsys.readouterr().err


def test_web_command_refuses_a_public_address_without_a_token(cli_env, capsys):
    assert run_cli("web", "--host", "0.0.0.0") == 1
    err = capsys.readouterr().err
    assert "refusing to serve the dashboard on 0.0.0.0 without an operator token" in err
    assert len(err.strip().splitlines()) == 1
    assert cli_env == []
    assert not Path("queue.db").exists()  # refused before the database is opened


def test_a_token_is_required_on_loopback_too_when_configured(make_client, loaded):
    client = make_client(token=TOKEN)
    assert client.get("/status").status_code == 401
    assert client.get("/status", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_web_command_refuses_a_weak_token_off_loopback(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("ONEYEARAGO_WEB_TOKEN", "correct-horse-battery-staple")
    assert run_cli("web", "--host", "0.0.0.0") == 1
    err = capsys.readouterr().err
    assert "shorter than 32 characters" in err and "secrets.token_urlsafe(32)" in err
    assert "correct-horse" not in err and len(err.strip().splitlines()) == 1
    assert cli_env == []
    monkeypatch.setenv("ONEYEARAGO_WEB_TOKEN", TOKEN)
    monkeypatch.setenv("ONEYEARAGO_WEB_SESSION_IDLE", "30m")
    assert run_cli("web", "--host", "0.0.0.0") == 0
    assert cli_env[0]["app"].state.web.sessions.idle == 1800
