"""Telling the operator through Apprise, with real receivers on 127.0.0.1: a JSON and a form webhook
and an SMTP server (aiosmtpd). Each event arrives once, several together come as one message, the
digest comes once a day, and no secret arrives anywhere."""

from __future__ import annotations

import datetime as dt
import email
import http.server
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.config import load_settings
from bot.models import DeliveryRow, PlatformRow, WorkerRow
from bot.notify import Notifier
from bot.planner import Planner
from bot.store import Store
from tests.cli_support import isolate, run_cli
from tests.conftest import story

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = "xsecret-Zq8vL3nWp0xKc7Rt"


class Receiver:
    """An HTTP server on 127.0.0.1 keeping what Apprise posts to it (JSON and form webhooks)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str, bytes]] = []
        received = self.got

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append((self.path, self.headers.get("Content-Type", ""), self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def messages(self, path: str = "/hook") -> list[dict[str, str]]:
        found = []
        for got_path, kind, body in self.got:
            if got_path != path:
                continue
            if "json" in kind:
                found.append(json.loads(body))
            else:
                found.append({k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()})
        return found


class Mailbox:
    """An SMTP server on 127.0.0.1 (aiosmtpd) keeping the mails it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.mails: list[email.message.EmailMessage] = []
        mails = self.mails

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mails.append(email.message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def texts(self) -> list[str]:
        return [str(mail["Subject"]) + "\n" + mail.get_body(("plain",)).get_content() for mail in self.mails]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.server.shutdown()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    yield box
    box.controller.stop()


def urls(receiver: Receiver, mailbox: Mailbox | None = None) -> str:
    found = [f"json://127.0.0.1:{receiver.port}/hook", f"form://127.0.0.1:{receiver.port}/form"]
    if mailbox is not None:
        found.append(f"mailto://127.0.0.1:{mailbox.port}?from=bot@example.com&to=operator@example.com")
    return " ".join(found)


@pytest.fixture
def world(tmp_path: Path, receiver: Receiver, mailbox: Mailbox) -> Iterator[dict[str, Any]]:
    settings = load_settings({"database_url": f"sqlite:///{tmp_path / 'queue.db'}", "notify": urls(receiver, mailbox),
                              "x_consumer_secret": SECRET, "timezone": "Europe/Berlin", "digest_at": "08:00"},
                             environ={}, env_file=None)
    store = Store(settings.database_url)
    clock = {"t": NOW - dt.timedelta(days=10)}
    Planner(store, settings).load([
        story("s1", dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)),
        story("norev", dt.datetime(2025, 3, 5, 12, 0, tzinfo=UTC), one_year_later=""),
    ], now=clock["t"])
    yield {"settings": settings, "store": store, "clock": clock,
           "notifier": Notifier(settings, store, clock=lambda: clock["t"])}
    store.dispose()


def set_row(store: Store, platform: str, **values: Any) -> None:
    with store.session() as session:
        session.execute(update(DeliveryRow).where(DeliveryRow.story_id == "s1", DeliveryRow.platform == platform,
                                                  DeliveryRow.kind == "root").values(**values))


def test_events_close_together_come_as_one_message_to_every_receiver_and_each_is_told_once(world, receiver, mailbox):
    store, notifier = world["store"], world["notifier"]
    set_row(store, "x", status="failed", updated_at=NOW,
            last_error=f"rejected by x: 403 duplicate content (token {SECRET})")
    set_row(store, "reddit", status="unconfirmed", updated_at=NOW, last_error="timeout; not found yet")
    with store.session() as session:
        session.merge(PlatformRow(name="bluesky", paused_reason="authentication failed: bad app password",
                                  updated_at=NOW))
        session.merge(PlatformRow(name="mastodon", retry_at=NOW + dt.timedelta(hours=3), updated_at=NOW))
    told = notifier.check(NOW)
    assert len(told) == 5  # failed, unconfirmed, paused, rate limited for 3 h, the story without a reveal
    (message,) = receiver.messages("/hook")
    assert message["title"] == "oneyearago: 5 things to look at"
    body = message["message"]
    assert "s1 · X root failed: rejected by x: 403 duplicate content" in body
    assert "s1 · Reddit root is unconfirmed" in body
    assert "Bluesky is paused: authentication failed: bad app password" in body
    assert "Mastodon is rate limited for 3.0h, until 2026-03-01 16:00 CET" in body
    assert "norev goes out" in body and "has no reveal yet" in body
    assert "s1 goes out" not in body  # it has its reveal
    (form,) = receiver.messages("/form")
    assert form["message"] == body
    (mail,) = mailbox.texts()
    assert "5 things to look at" in mail and "Bluesky is paused" in mail
    everything = b"".join(b for _, _, b in receiver.got).decode() + mail
    assert SECRET not in everything and "********" in body

    # told once: the next checks send nothing until something new happens
    assert notifier.check(NOW + dt.timedelta(minutes=1)) == []
    assert notifier.check(NOW + dt.timedelta(minutes=2)) == []
    assert len(receiver.messages("/hook")) == 1 and len(mailbox.mails) == 1
    set_row(store, "bluesky", status="missed", updated_at=NOW, last_error="more than 2h late")
    (new,) = notifier.check(NOW + dt.timedelta(minutes=3))
    assert "s1 · Bluesky root was missed" in new.line
    assert len(receiver.messages("/hook")) == 2


def test_a_notifier_started_again_does_not_tell_again(world, receiver):
    set_row(world["store"], "x", status="failed", updated_at=NOW, last_error="rejected")
    assert len(world["notifier"].check(NOW)) == 2  # the failure and the missing reveal
    again = Notifier(world["settings"], world["store"], clock=lambda: NOW)
    assert again.check(NOW) == []


def test_a_message_nobody_took_is_tried_again_at_the_next_check(world, receiver):
    settings = load_settings({"database_url": world["settings"].database_url,
                              "notify": "json://127.0.0.1:9/nobody-listens"}, environ={}, env_file=None)
    down = Notifier(settings, world["store"])
    assert down.check(NOW) == []
    up = Notifier(load_settings({"database_url": world["settings"].database_url, "notify": urls(receiver)},
                                environ={}, env_file=None), world["store"])
    assert [n.key for n in up.check(NOW)] == ["reveal:norev"]


def test_a_short_rate_limit_is_not_news(world, receiver):
    with world["store"].session() as session:
        session.merge(PlatformRow(name="x", retry_at=NOW + dt.timedelta(minutes=15), updated_at=NOW))
    assert [n.key for n in world["notifier"].check(NOW)] == ["reveal:norev"]


def test_a_run_that_did_not_stop_cleanly_is_told_when_the_next_one_starts(world, receiver):
    store, notifier = world["store"], world["notifier"]
    with store.session() as session:
        session.add(WorkerRow(id="somehost:4242", host="somehost", pid=4242, platforms="x",
                              started_at=NOW - dt.timedelta(hours=2), heartbeat_at=NOW - dt.timedelta(hours=1)))
    notifier.starting(NOW)
    told = notifier.check(NOW)
    assert any(n.key.startswith("crash:somehost:4242") for n in told)
    assert "started again after a run that did not stop cleanly" in receiver.messages()[0]["message"]
    notifier.starting(NOW + dt.timedelta(minutes=1))
    assert notifier.check(NOW + dt.timedelta(minutes=1)) == []


def test_the_digest_comes_once_a_day_at_its_local_time_with_yesterdays_links(world, receiver):
    store, notifier = world["store"], world["notifier"]
    set_row(store, "x", status="posted", posted_at=NOW - dt.timedelta(hours=1),
            remote_url="https://x.com/oneyearago/status/1")
    day_after = dt.datetime(2026, 3, 2, 6, 59, tzinfo=UTC)  # 07:59 in Berlin
    assert notifier.digest(day_after) is False
    at_eight = dt.datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    assert notifier.digest(at_eight) is True
    assert notifier.digest(at_eight + dt.timedelta(hours=3)) is False
    digests = [m for m in receiver.messages() if m["title"].startswith("oneyearago digest")]
    assert len(digests) == 1 and digests[0]["title"] == "oneyearago digest for 2026-03-02"
    body = digests[0]["message"]
    assert "Went out on 2026-03-01: 1" in body and "https://x.com/oneyearago/status/1" in body
    assert "Goes out today:" in body and "Needs attention:" in body
    assert notifier.digest(dt.datetime(2026, 3, 3, 7, 0, tzinfo=UTC)) is True  # the next day's


def test_notify_test_says_which_url_worked_and_never_shows_one(tmp_path, monkeypatch, capsys, receiver):
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("ONEYEARAGO_NOTIFY", f"json://127.0.0.1:{receiver.port}/hook json://127.0.0.1:9/down?token={SECRET}")
    code, out, err = run_cli(capsys, "notify", "--test")
    assert code == 1
    assert "1. json:// worked" in out and "2. json:// failed" in out
    assert SECRET not in out + err and "127.0.0.1" not in out
    assert receiver.messages()[0]["title"] == "oneyearago: test"
    monkeypatch.setenv("ONEYEARAGO_NOTIFY", f"json://127.0.0.1:{receiver.port}/hook")
    assert run_cli(capsys, "notify", "--test")[0] == 0
    monkeypatch.delenv("ONEYEARAGO_NOTIFY")
    code, out, err = run_cli(capsys, "notify", "--test")
    assert code != 0 and "ONEYEARAGO_NOTIFY is empty" in err


def test_run_once_tells_a_missed_root_once(tmp_path, monkeypatch, capsys, receiver):
    isolate(tmp_path, monkeypatch)
    monkeypatch.setenv("ONEYEARAGO_NOTIFY", urls(receiver))
    (tmp_path / "stories.yaml").write_text("- id: late\n  date: 2025-03-01T09:00:00Z\n  headline: Late news\n"
                                           "  one_year_later: It was fine.\n")
    assert run_cli(capsys, "load", "stories.yaml")[0] == 0
    assert run_cli(capsys, "run", "--once", "--now", "2026-03-01T15:00:00Z")[0] == 0
    assert run_cli(capsys, "run", "--once", "--now", "2026-03-01T15:05:00Z")[0] == 0
    bodies = [m["message"] for m in receiver.messages()]
    assert len(bodies) == 1 and bodies[0].count("was missed") == 4  # one root per platform, told once


def test_bad_notification_settings_name_the_variable(tmp_path):
    from posts.errors import ConfigError

    with pytest.raises(ConfigError, match="ONEYEARAGO_NOTIFY=.*must start with its service"):
        load_settings({"notify": "example.com/hook"}, environ={}, env_file=None)
    with pytest.raises(ConfigError, match="ONEYEARAGO_DIGEST_AT.*HH:MM"):
        load_settings({"digest_at": "8am"}, environ={}, env_file=None)


def test_the_notifier_is_quiet_without_urls(world):
    quiet = Notifier(load_settings({"database_url": world["settings"].database_url}, environ={}, env_file=None),
                     world["store"])
    assert quiet.enabled is False and quiet.check(NOW) == [] and quiet.digest(NOW) is False

