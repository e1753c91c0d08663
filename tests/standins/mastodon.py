"""Mastodon stand-ins on 127.0.0.1, for the real Mastodon.py code to talk to.

- :class:`CassetteServer` replays Mastodon.py's recorded exchanges with a real Mastodon 4.6.4
  (``tests/data/mastodon/cassettes``) at the HTTP level: each request is answered with the first unused
  recorded answer of the same method and path, with its recorded status, headers and body.
- :class:`MastodonMock` runs the stateful stand-in ``mastodon_mock serve`` (PyPI ``mastodon-mock``
  0.6.1, a FastAPI + SQLite fake of the Mastodon API) in its own process, with a seeded bot account
  and a fixed token, and drives its fault-injection control plane (``/api/v1/_mock/faults``).
- :class:`AnswerLossProxy` sits in front of it and, when asked, forwards a create and then cuts the
  connection without a byte of answer: the status exists, the client never hears of it.

How ``mastodon-mock`` differs from real Mastodon is tabled in ``../shared/reference/mastodon.md``
("Local stand-in"); where it matters, the tests follow real Mastodon and say so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.parser
import email.policy
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import yaml

from tests.standins.bluesky_proxy import FaultProxy

DATA = Path(__file__).resolve().parents[1] / "data" / "mastodon"
CASSETTES = DATA / "cassettes"
BOT = "newsbot"
TOKEN = "newsbot-token-0b1c2d3e4f"
"""The bot account's fixed access token on the stand-in."""
OTHER = "someoneelse"
OTHER_TOKEN = "someoneelse-token-5a6b7c"
"""Another account on the same instance (its posts must never be taken for the bot's)."""
_TRANSPORT_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding", "connection"})


def cassette(name: str) -> list[dict[str, Any]]:
    """The interactions of one recorded cassette (``name`` without ``.yaml``)."""
    return yaml.safe_load((CASSETTES / f"{name}.yaml").read_text(encoding="utf-8"))["interactions"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------- replay


@dataclasses.dataclass
class Received:
    """One request the cassette server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]
    pairs: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    """Every form field in the order sent (``media_ids[]`` comes once per id)."""
    files: dict[str, tuple[str, str, bytes]] = dataclasses.field(default_factory=dict)
    """The files of a multipart body by field name: (file name, content type, bytes)."""


def _multipart(content_type: str, raw: bytes) -> tuple[list[tuple[str, str]], dict[str, tuple[str, str, bytes]]]:
    """The text fields and the files of a ``multipart/form-data`` body (Mastodon.py's uploads)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + raw)
    fields: list[tuple[str, str]] = []
    files: dict[str, tuple[str, str, bytes]] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition") or "")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            fields.append((name, data.decode("utf-8")))
        else:
            files[name] = (filename, part.get_content_type(), data)
    return fields, files


class CassetteServer:
    """Replays recorded interactions on 127.0.0.1: the first unused answer of the same method and path.

    ``answer(..., status=...)`` replays a recorded answer with another status (its headers and body
    kept), for the exchanges no cassette holds (a 429 with the real rate-limit headers).
    """

    def __init__(self) -> None:
        self._answers: list[tuple[str, str, int, list[tuple[str, str]], bytes]] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self.url = ""

    def answer(self, interaction: Mapping[str, Any], *, status: int | None = None,
               headers: Mapping[str, str] | None = None, body: str | None = None,
               to: str | None = None) -> None:
        """Queue the recorded answer of ``interaction`` (``status``, ``headers``, ``body`` replace its own;
        ``to``, as ``"METHOD /path"``, answers another request with it)."""
        request, response = interaction["request"], interaction["response"]
        kept = [(name, value) for name, values in response["headers"].items()
                if name.lower() not in _TRANSPORT_HEADERS for value in values]
        if headers:
            names = {name.lower() for name in headers}
            kept = [(n, v) for n, v in kept if n.lower() not in names] + list(headers.items())
        text = response["body"]["string"] if body is None else body
        method, path = to.split(" ", 1) if to else (request["method"], urlsplit(request["uri"]).path)
        with self._lock:
            self._answers.append((method, path.rstrip("/"), status or response["status"]["code"], kept,
                                  text.encode("utf-8")))

    def replay(self, name: str, *, only: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Queue every answer of cassette ``name`` (only those of ``METHOD /path`` in ``only``, if given)."""
        interactions = cassette(name)
        for interaction in interactions:
            key = f"{interaction['request']['method']} {urlsplit(interaction['request']['uri']).path}"
            if only is None or key in only:
                self.answer(interaction)
        return interactions

    def _take(self, method: str, path: str) -> tuple[int, list[tuple[str, str]], bytes] | None:
        with self._lock:
            for index, (m, p, status, headers, body) in enumerate(self._answers):
                if (m, p) == (method, path.rstrip("/")):
                    del self._answers[index]
                    return status, headers, body
        return None

    def serve(self) -> CassetteServer:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                content_type = self.headers.get("Content-Type") or ""
                files: dict[str, tuple[str, str, bytes]] = {}
                if content_type.startswith("multipart/form-data"):
                    pairs, files = _multipart(content_type, raw)
                else:
                    pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
                owner.received.append(Received(self.command, parts.path, dict(parse_qsl(parts.query)),
                                               dict(self.headers.items()), dict(pairs), pairs, files))
                found = owner._take(self.command, parts.path)
                if found is None:
                    status, headers, body = 599, [("Content-Type", "application/json")], json.dumps(
                        {"error": f"no recorded answer for {self.command} {parts.path}"}).encode()
                else:
                    status, headers, body = found
                self.send_response_only(status)  # no Date or Server of ours: the recorded headers only
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_PUT = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="mastodon-cassettes",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def pending(self) -> int:
        with self._lock:
            return len(self._answers)


# ---------------------------------------------------------------------------- the stateful stand-in


CONFIG = """\
media_storage_path = "{media}"

[[seed.accounts]]
username = "{bot}"
display_name = "One year ago (test)"
bot = true
access_token = "{token}"

[[seed.accounts]]
username = "{other}"
display_name = "Someone else"
access_token = "{other_token}"
"""


class MastodonMock:
    """``mastodon_mock serve --in-memory`` on a free port of 127.0.0.1, in its own process."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._http = requests.Session()
        self._http.trust_env = False

    def start(self, timeout: float = 30.0) -> MastodonMock:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "media").mkdir(exist_ok=True)
        config = self.workdir / "mastodon-mock.toml"
        config.write_text(CONFIG.format(media=(self.workdir / "media").as_posix(), bot=BOT, token=TOKEN,
                                        other=OTHER, other_token=OTHER_TOKEN), encoding="utf-8")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT")}
        log = (self.workdir / "mastodon-mock.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mastodon_mock", "serve", "--in-memory", "--host", "127.0.0.1",
             "--port", str(self.port), "--config", str(config), "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mastodon_mock exited ({self.process.returncode}): {self.log()[-2000:]}")
            with contextlib.suppress(requests.RequestException):
                if self._http.get(f"{self.url}/api/v1/instance", timeout=1).ok:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mastodon_mock did not answer within {timeout:g}s: {self.log()[-2000:]}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._http.close()

    def log(self) -> str:
        path = self.workdir / "mastodon-mock.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    # -- control plane --------------------------------------------------------------

    def reset(self) -> None:
        """Drop every status and fault; the seeded accounts and tokens come back."""
        self.clear_faults()
        self._http.post(f"{self.url}/api/v1/_mock/reset", timeout=10).raise_for_status()

    def fault(self, path: str, effect: Mapping[str, Any], *, methods: tuple[str, ...] = ("POST",),
              count: int = 1) -> None:
        """Make the next ``count`` requests to ``path`` fail with ``effect`` (see mastodon-mock's faults)."""
        rule = {"match": {"methods": list(methods), "path": path}, "effect": dict(effect), "count": count}
        self._http.post(f"{self.url}/api/v1/_mock/faults", json=rule, timeout=10).raise_for_status()

    def clear_faults(self) -> None:
        self._http.delete(f"{self.url}/api/v1/_mock/faults", timeout=10).raise_for_status()

    # -- looking at the server's state (as the account's owner would) ---------------------

    def _get(self, path: str, token: str = TOKEN, **params: Any) -> Any:
        answer = self._http.get(f"{self.url}{path}", params=params, timeout=10,
                                headers={"Authorization": f"Bearer {token}"})
        answer.raise_for_status()
        return answer.json()

    def account_id(self, token: str = TOKEN) -> str:
        return str(self._get("/api/v1/accounts/verify_credentials", token)["id"])

    def statuses(self, token: str = TOKEN) -> list[dict[str, Any]]:
        """Every status of the account of ``token``, oldest first."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 40}
        account = self.account_id(token)
        while True:
            page = self._get(f"/api/v1/accounts/{account}/statuses", token, **params)
            if not page:
                return list(reversed(found))
            found += page
            params["max_id"] = page[-1]["id"]

    def status(self, status_id: str) -> dict[str, Any]:
        return dict(self._get(f"/api/v1/statuses/{status_id}"))

    def context(self, status_id: str) -> dict[str, Any]:
        return dict(self._get(f"/api/v1/statuses/{status_id}/context"))

    def media(self, media_id: str) -> dict[str, Any]:
        """An uploaded picture as the stand-in keeps it (``description``, ``url``)."""
        return dict(self._get(f"/api/v1/media/{media_id}"))

    def delete_media(self, media_id: str, token: str = TOKEN) -> None:
        """Remove an unattached upload, as the instance's cleanup does a day after it was made."""
        answer = self._http.delete(f"{self.url}/api/v1/media/{media_id}", timeout=10,
                                   headers={"Authorization": f"Bearer {token}"})
        answer.raise_for_status()

    def delete(self, status_id: str, token: str = TOKEN) -> None:
        answer = self._http.delete(f"{self.url}/api/v1/statuses/{status_id}", timeout=10,
                                   headers={"Authorization": f"Bearer {token}"})
        answer.raise_for_status()

    def post_as(self, token: str, status: str, **fields: Any) -> dict[str, Any]:
        """Post a status directly (as another client of the account would)."""
        answer = self._http.post(f"{self.url}/api/v1/statuses", data={"status": status, **fields}, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"})
        answer.raise_for_status()
        return dict(answer.json())


# ---------------------------------------------------------------------------- answers lost on the way


class AnswerLossProxy(FaultProxy):
    """A loopback proxy in front of :class:`MastodonMock` (GET and POST pass through unchanged).

    ``lose_next_create()`` makes the next ``POST /api/v1/statuses`` go through to the server (which
    makes the status) and then cuts the connection without a byte of answer: "posted, answer lost",
    which the stand-in alone cannot do (its latency fault is applied before the status is made).
    """

    STATUSES = "/api/v1/statuses"

    def lose_next_create(self, *, times: int = 1) -> None:
        self.drop_next(self.STATUSES, times=times)

    def fail_next_create(self, status: int, body: dict[str, Any] | None = None, *, times: int = 1) -> None:
        """Answer the next create here with ``status`` (never forwarded: nothing is posted)."""
        self.respond_next(self.STATUSES, status, body or {"error": f"injected by the test proxy ({status})"},
                          times=times)
