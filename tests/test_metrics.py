"""Prometheus metrics, /healthz and /readyz (dashboard and the metrics port of ``run``), ``oneyearago health``."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from starlette.testclient import TestClient

from adapters.sandbox import read_transcript
from bot.config import load_settings
from bot.engine import Engine
from bot.metrics import MetricsServer
from bot.models import DeliveryRow, PlatformRow
from bot.runner import run_forever
from bot.store import Store
from bot.web import create_app
from bot.wiring import build_engine
from posts.errors import BotError, ConfigError
from tests.cli_support import isolate, run_cli

UTC = dt.UTC
STORIES = """\
- id: alpha
  date: 2025-03-01T12:00:00Z
  headline: Alpha model released
  url: https://example.com/alpha
  one_year_later: It became the default choice.
- id: beta
  date: 2025-03-01T13:00:00Z
  headline: Beta chip announced
  url: https://example.com/beta
"""
SECRET = "sk-very-secret-value-0123456789abcdef"
TOKEN = "metrics-token-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolate(tmp_path, monkeypatch)
    (tmp_path / "stories.yaml").write_text(STORIES)
    return tmp_path


def settings_for(folder: Path, **options: str):
    base = {"database_url": f"sqlite:///{folder / 'queue.db'}", "transcript": str(folder / "transcript.jsonl")}
    return load_settings({**base, **options}, environ={}, env_file=None)


def families(body: str) -> dict[str, list]:
    """Samples of each metric family of an exposition, by family name."""
    return {family.name: family.samples for family in text_string_to_metric_families(body)}


def scrape(client: TestClient, **headers: str) -> dict[str, list]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return families(response.text)


def pause(store: Store, platform: str, reason: str | None) -> None:
    """Pause (or with ``None`` resume) a platform, as the engine does when its credentials are refused."""
    with store.session() as session:
        row = session.get(PlatformRow, platform) or PlatformRow(name=platform, updated_at=dt.datetime.now(UTC))
        row.paused_reason = reason
        session.add(row)


# ---------------------------------------------------------------------------- /metrics after a sandbox run


def test_metrics_after_a_sandbox_run_match_the_transcript(env, capsys):
    assert run_cli(capsys, "load", "stories.yaml")[0] == 0
    for at in ("2026-03-01T12:00:00Z", "2026-03-01T13:00:02Z", "2026-03-01T20:00:00Z"):
        code, _, err = run_cli(capsys, "run", "--once", "--now", at)
        assert code == 0, err
    records = read_transcript(env / "transcript.jsonl")
    assert len(records) > 8  # both roots and alpha's reply, on several platforms
    settings = settings_for(env)
    store = Store(settings.database_url)
    now = dt.datetime(2026, 3, 1, 20, 0, 5, tzinfo=UTC)
    try:
        client = TestClient(create_app(settings, store, clock=lambda: now), base_url="http://127.0.0.1:8080")
        got = scrape(client)
    finally:
        store.dispose()

    posted = Counter()
    for sample in got["oneyearago_posts"]:
        if sample.name == "oneyearago_posts_total" and sample.labels["outcome"] == "posted":
            posted[sample.labels["platform"]] += int(sample.value)
    assert posted == Counter(r["platform"] for r in records)
    by_kind = Counter((s.labels["platform"], s.labels["kind"]) for s in got["oneyearago_posts"]
                      for _ in range(int(s.value)) if s.labels["outcome"] == "posted")
    assert by_kind == Counter((r["platform"], "root" if r["kind"] == "root" else "followup") for r in records)
    delivered = {s.labels["platform"]: s.value for s in got["oneyearago_deliveries"] if s.labels["status"] == "posted"}
    assert delivered == {p: float(n) for p, n in Counter(r["platform"] for r in records).items()}

    counts = {s.labels["platform"]: s.value for s in got["oneyearago_post_lateness_seconds"]
              if s.name.endswith("_count")}
    assert counts == {p: float(n) for p, n in Counter(r["platform"] for r in records).items()}
    buckets = [s for s in got["oneyearago_post_lateness_seconds"] if s.name.endswith("_bucket")]
    late = {}
    for r in records:
        due = dt.datetime.fromisoformat({"alpha": "2026-03-01T12:00:00+00:00",
                                         "beta": "2026-03-01T13:00:00+00:00"}[r["story_id"]])
        if r["kind"] == "root":
            late.setdefault(r["platform"], []).append((dt.datetime.fromisoformat(r["posted_at"]) - due).total_seconds())
    # beta's roots went out 2 s late: none of them within the 1-second bucket, all within 5 seconds
    for platform in late:
        le1 = next(s.value for s in buckets if s.labels == {"platform": platform, "le": "1.0"})
        le5 = next(s.value for s in buckets if s.labels == {"platform": platform, "le": "5.0"})
        assert le1 == sum(1 for v in late[platform] if v <= 1) and le5 >= len(late[platform])

    last = {s.labels["platform"]: s.value for s in got["oneyearago_last_post_timestamp_seconds"]}
    newest = {}
    for r in records:
        when = dt.datetime.fromisoformat(r["posted_at"]).timestamp()
        newest[r["platform"]] = max(newest.get(r["platform"], 0.0), when)
    assert last == pytest.approx(newest, abs=1.0)
    swept = {s.labels["platform"]: s.value for s in got["oneyearago_last_sweep_timestamp_seconds"]}
    assert set(swept) == set(settings.platforms)
    assert all(v == pytest.approx(dt.datetime(2026, 3, 1, 20, 0, tzinfo=UTC).timestamp(), abs=60) for v in swept.values())
    quota = {(s.labels["platform"], s.labels["window"]): s.value for s in got["oneyearago_quota_remaining"]}
    limit = {(s.labels["platform"], s.labels["window"]): s.value for s in got["oneyearago_quota_limit"]}
    assert ("x", "24h") in quota and quota[("x", "24h")] == limit[("x", "24h")] - posted["x"]
    assert {s.labels["platform"]: s.value for s in got["oneyearago_platform_paused"]} == dict.fromkeys(
        settings.platforms, 0.0)
    assert got["oneyearago_database_up"][0].value == 1.0
    assert got["oneyearago_unconfirmed_deliveries"] and all(s.value == 0 for s in got["oneyearago_missed_deliveries"])


def test_next_due_and_rate_limit_wait(env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    settings = settings_for(env)
    store = Store(settings.database_url)
    now = dt.datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    try:
        with store.session() as session:
            session.add(PlatformRow(name="x", updated_at=now, retry_at=now + dt.timedelta(seconds=90)))
        got = scrape(TestClient(create_app(settings, store, clock=lambda: now), base_url="http://127.0.0.1:8080"))
    finally:
        store.dispose()
    assert {s.labels["platform"]: s.value for s in got["oneyearago_next_due_seconds"]} == dict.fromkeys(
        settings.platforms, 3600.0)
    assert {s.labels["platform"]: s.value for s in got["oneyearago_rate_limit_wait_seconds"]} == {"x": 90.0}


def test_no_secret_in_metrics_or_health(tmp_path):
    settings = settings_for(tmp_path, x_consumer_secret=SECRET, web_token=TOKEN)
    store = Store(settings.database_url)
    at = dt.datetime(2026, 3, 1, tzinfo=UTC)
    try:
        with store.session() as session:
            session.add(PlatformRow(name="x", updated_at=at, paused_reason=f"401 with key {SECRET}",
                                    account=f"@bot {SECRET}"))
        client = TestClient(create_app(settings, store, clock=lambda: at), base_url="http://127.0.0.1:8080",
                            client=("127.0.0.1", 40000))
        bodies = [client.get(path).text for path in ("/metrics", "/healthz", "/readyz")]
    finally:
        store.dispose()
    assert "oneyearago_platform_paused" in bodies[0] and "platform x is paused" in bodies[2]
    for body in bodies:
        assert SECRET not in body and TOKEN not in body


# ---------------------------------------------------------------------------- /healthz and /readyz


def test_healthz_and_readyz_on_the_dashboard(tmp_path):
    settings = settings_for(tmp_path)
    store = Store(settings.database_url)
    try:
        client = TestClient(create_app(settings, store), base_url="http://127.0.0.1:8080")
        health, ready = client.get("/healthz"), client.get("/readyz")
        assert (health.status_code, health.json()["status"]) == (200, "ok")
        assert ready.status_code == 200 and ready.json()["paused"] == [] and ready.json()["revision"] == \
            ready.json()["head"]
        with store.session() as session:
            session.add(PlatformRow(name="reddit", updated_at=dt.datetime.now(UTC),
                                    paused_reason="Reddit refused the credentials"))
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["paused"] == ["reddit"]
        assert any("reddit" in reason and "refused the credentials" in reason for reason in ready.json()["reasons"])
        assert client.get("/healthz").status_code == 200  # paused is not unhealthy
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0008'"))
        behind = client.get("/readyz").json()
        assert behind["revision"] == "0008" and any("revision 0008" in r for r in behind["reasons"])
    finally:
        store.dispose()


def test_the_token_guards_monitoring_off_loopback_only(tmp_path):
    settings = settings_for(tmp_path)
    store = Store(settings.database_url)
    try:
        app = create_app(settings, store, token=TOKEN, public=True)
        remote = TestClient(app, base_url="http://bot.example", client=("192.0.2.7", 40000), follow_redirects=False)
        local = TestClient(app, base_url="http://bot.example", client=("127.0.0.1", 40000), follow_redirects=False)
        for path in ("/metrics", "/healthz", "/readyz"):
            refused = remote.get(path, headers={"accept": "text/html"})
            assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"]
            assert remote.get(path, headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
            assert remote.get(path, headers={"authorization": "Bearer wrong"}).status_code == 401
            assert local.get(path).status_code == 200
        assert local.get("/status").status_code == 401  # the pages still need the token on loopback
    finally:
        store.dispose()


# ---------------------------------------------------------------------------- the metrics port of ``run``


def get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_run_serves_metrics_on_its_own_port(env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    settings = settings_for(env, lease="3s")  # the heartbeat, which writes the sweep times, every second
    store = Store(settings.database_url)
    engine: Engine = build_engine(settings, store)
    stop, started, seen = threading.Event(), threading.Event(), []

    def serving(server: MetricsServer) -> None:
        seen.append(server)
        started.set()

    loop = threading.Thread(target=run_forever, args=(engine,), daemon=True, kwargs={
        "recheck": dt.timedelta(seconds=1), "stop": stop, "install_signals": False,
        "metrics_addr": "127.0.0.1:0", "on_metrics": serving})
    loop.start()
    try:
        assert started.wait(30)
        url = seen[0].url
        assert url.startswith("http://127.0.0.1:")
        swept: list = []
        for _ in range(100):  # the loop's first sweep is at start: wait for it to be recorded
            status, body = get(url + "/metrics")
            assert status == 200
            swept = families(body)["oneyearago_last_sweep_timestamp_seconds"]
            if len(swept) == len(settings.platforms):
                break
            stop.wait(0.1)
        assert {s.labels["platform"] for s in swept} == set(settings.platforms)
        assert json.loads(get(url + "/healthz")[1])["status"] == "ok"
        status, body = get(url + "/readyz")
        assert status == 200 and json.loads(body)["status"] == "ready"
        assert get(url + "/nothing")[0] == 404
        pause(store, "bluesky", "the app password was revoked")
        status, body = get(url + "/readyz")
        assert status == 503 and json.loads(body)["paused"] == ["bluesky"]
    finally:
        stop.set()
        engine.stopping.set()
        loop.join(30)
        store.dispose()
    assert not loop.is_alive()
    with pytest.raises(OSError):
        get(url + "/healthz")  # stopped with the loop


def test_metrics_port_needs_a_token_off_loopback(tmp_path):
    store = Store(settings_for(tmp_path).database_url)
    try:
        with pytest.raises(BotError, match="ONEYEARAGO_METRICS_ADDR=0.0.0.0:0 .*ONEYEARAGO_WEB_TOKEN"):
            MetricsServer(store, settings_for(tmp_path), "0.0.0.0:0")
        server = MetricsServer(store, settings_for(tmp_path, web_token=TOKEN), "127.0.0.1:0")
        try:
            assert server.respond("/metrics", "192.0.2.7", "")[0] == 401
            assert server.respond("/readyz", "192.0.2.7", "Bearer nope")[0] == 401
            status, kind, body = server.respond("/metrics", "192.0.2.7", f"Bearer {TOKEN}")
            assert status == 200 and kind.startswith("text/plain") and b"oneyearago_deliveries" in body
            assert server.respond("/healthz", "127.0.0.1", "")[0] == 200
        finally:
            server.httpd.server_close()
    finally:
        store.dispose()


@pytest.mark.parametrize("value", ["9100", "localhost:", ":9100", "127.0.0.1:70000", "127.0.0.1:x"])
def test_a_bad_metrics_address_names_the_variable(tmp_path, value):
    with pytest.raises(ConfigError, match="ONEYEARAGO_METRICS_ADDR=.*host:port"):
        settings_for(tmp_path, metrics_addr=value)


# ---------------------------------------------------------------------------- oneyearago health


def test_health_exit_codes(env, capsys):
    code, out, _ = run_cli(capsys, "health")
    assert code == 2 and "does not exist" in out
    assert not (env / "queue.db").exists()  # health creates nothing
    run_cli(capsys, "load", "stories.yaml")
    code, out, _ = run_cli(capsys, "health")
    assert code == 0 and "healthy and ready" in out
    store = Store("sqlite:///queue.db")
    try:
        pause(store, "mastodon", "the access token was revoked")
        code, out, _ = run_cli(capsys, "health", "--json")
        data = json.loads(out)
        assert code == 1 and data["healthy"] and not data["ready"] and data["paused"] == ["mastodon"]
        code, out, _ = run_cli(capsys, "health")
        assert code == 1 and "platform mastodon is paused: the access token was revoked" in out
        pause(store, "mastodon", None)
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0008'"))
        code, out, _ = run_cli(capsys, "health")
        assert code == 1 and "revision 0008" in out and f"needs {Store.head_revision()}" in out
    finally:
        store.dispose()
    (env / "other.db").write_text("not a database at all, just text" * 100)
    code, out, _ = run_cli(capsys, "health", "--json", db="sqlite:///other.db")
    assert code == 2 and json.loads(out)["database"] is False


def test_sweeps_are_recorded_per_platform(env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    run_cli(capsys, "--platforms", "x,bluesky", "run", "--once", "--now", "2026-03-01T12:00:00Z")
    store = Store("sqlite:///queue.db")
    try:
        with store.session() as session:
            swept = {row.name: row.swept_at for row in session.query(PlatformRow)}
            assert session.query(DeliveryRow).filter(DeliveryRow.status == "posted").count() == 2
    finally:
        store.dispose()
    assert {name for name, at in swept.items() if at is not None} == {"x", "bluesky"}
    assert swept["x"] == dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC) or \
        abs((swept["x"] - dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)).total_seconds()) < 60


def test_health_says_an_unreachable_server_is_unreachable_without_its_password(env, capsys):
    with socket.socket() as probe:  # a port of this machine nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, out, err = run_cli(capsys, "health", db=f"postgresql+psycopg://bot:{SECRET}@127.0.0.1:{port}/queue")
    assert code == 2 and "unreachable" in out
    assert SECRET not in out + err


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_run_command_serves_metrics_where_the_setting_says(env, capsys):
    run_cli(capsys, "load", "stories.yaml")
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ONEYEARAGO_")}
    environ.update({"ONEYEARAGO_DATABASE_URL": "sqlite:///queue.db", "ONEYEARAGO_METRICS_ADDR": f"127.0.0.1:{port}",
                    "PYTHONPATH": str(Path(__file__).parents[1])})
    proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=env, env=environ,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        status, body = 0, ""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, body = get(f"http://127.0.0.1:{port}/readyz")
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200 and json.loads(body)["status"] == "ready"
        assert "oneyearago_deliveries" in get(f"http://127.0.0.1:{port}/metrics")[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert f"Serving metrics on http://127.0.0.1:{port}/metrics" in err.decode()


def test_metrics_and_readiness_on_each_backend(db_url, tmp_path):
    """The same scrape on SQLite and PostgreSQL: the collector's queries and the health checks."""
    from bot.metrics import check, exposition, registry
    from bot.planner import Planner
    from bot.sources.stories import load_stories

    (tmp_path / "stories.yaml").write_text(STORIES)
    settings = load_settings({"database_url": db_url, "transcript": str(tmp_path / "transcript.jsonl")},
                             environ={}, env_file=None)
    store = Store(settings.database_url)
    at = dt.datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC)
    try:
        Planner(store, settings).load(load_stories([tmp_path / "stories.yaml"]), now=at - dt.timedelta(days=1))
        report = build_engine(settings, store, clock=lambda: at).run_once(at)
        got = families(exposition(registry(store, settings, lambda: at))[0].decode())
        posted = {s.labels["platform"]: s.value for s in got["oneyearago_posts"] if s.labels["outcome"] == "posted"}
        assert posted == {e.platform: 1.0 for e in report.events if e.action == "posted"} and len(posted) == 4
        assert {s.labels["platform"]: s.value for s in got["oneyearago_next_due_seconds"]} == dict.fromkeys(
            settings.platforms, 3599.0)  # beta's roots, at 13:00
        assert check(store).ready
        pause(store, "x", "refused")
        health = check(store)
        assert health.healthy and not health.ready and health.paused == {"x": "refused"}
    finally:
        store.dispose()
