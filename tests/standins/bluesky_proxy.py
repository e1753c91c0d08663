"""Provide FaultProxy: a loopback HTTP proxy in front of the real local PDS that injects faults.

The PDS itself is the Bluesky stand-in (tests/pds_harness.py); this proxy sits between the
adapter and it so that tests (and issue 5's chaos test, from another process) can make a given
XRPC method fail in ways a healthy server never does::

    proxy = FaultProxy(pds.url).serve()               # http://127.0.0.1:<port>
    proxy.respond_next("com.atproto.repo.createRecord", 503)   # answered here, never forwarded
    proxy.drop_next("com.atproto.repo.createRecord")  # forwarded (applied), then the connection is cut
    proxy.delay_next("com.atproto.repo.createRecord", 2.0)     # forwarded after 2 s
    proxy.counts["com.atproto.server.createSession"]  # requests seen per method
    proxy.stop()

Faults are one-shot and queue per method (``times=`` repeats one). Only loopback is contacted.
"""

from __future__ import annotations

import collections
import dataclasses
import http.client
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from bot.web.security import is_loopback

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailers", "transfer-encoding", "upgrade", "host", "content-length",
                         "accept-encoding"})


@dataclasses.dataclass
class Fault:
    """What to do with the next request to one method."""

    kind: str
    """``respond`` (answer here), ``drop`` (forward, then cut the connection), ``cut`` (cut at once),
    or ``delay`` (wait ``seconds``, then forward)."""
    status: int = 503
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0


class FaultProxy:
    """A threaded loopback proxy to ``upstream`` (a loopback URL) with per-method fault injection."""

    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        if not is_loopback(parts.hostname or ""):
            raise ValueError(f"the proxy forwards to loopback only, not {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.counts: collections.Counter[str] = collections.Counter()
        self.log: list[tuple[str, str, int | str]] = []
        """``(method, nsid, outcome)`` per request: the status sent, or ``dropped`` / ``cut``."""
        self._faults: dict[str, collections.deque[Fault]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- faults -------------------------------------------------------------------------

    def respond_next(self, nsid: str, status: int, body: bytes | dict[str, Any] | None = None,
                     headers: dict[str, str] | None = None, *, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``nsid`` here with ``status``, never forwarding them."""
        if body is None:
            body = {"error": http.client.responses.get(status, "Error").replace(" ", ""),
                    "message": f"injected by the test proxy ({status})"}
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self._add(nsid, Fault("respond", status, body, dict(headers or {})), times)

    def drop_next(self, nsid: str, *, times: int = 1) -> None:
        """Forward the next request to ``nsid`` (the server applies it), then cut the connection."""
        self._add(nsid, Fault("drop"), times)

    def cut_next(self, nsid: str, *, times: int = 1) -> None:
        """Cut the connection of the next request to ``nsid`` without forwarding it."""
        self._add(nsid, Fault("cut"), times)

    def delay_next(self, nsid: str, seconds: float, *, times: int = 1) -> None:
        """Hold the next request to ``nsid`` for ``seconds``, then forward it."""
        self._add(nsid, Fault("delay", seconds=seconds), times)

    def answer_here(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes] | None:
        """An answer made here instead of forwarding the request (``None``: forward it); for subclasses that
        serve methods the PDS does not (:class:`tests.standins.bluesky_appview.AppViewStandin`)."""
        return None

    def pending(self) -> int:
        """How many injected faults have not fired yet."""
        with self._lock:
            return sum(len(q) for q in self._faults.values())

    def _add(self, nsid: str, fault: Fault, times: int) -> None:
        with self._lock:
            self._faults[nsid].extend(dataclasses.replace(fault) for _ in range(times))

    def _take(self, nsid: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get(nsid)
            self.counts[nsid] += 1
            return queue.popleft() if queue else None

    # -- lifecycle ------------------------------------------------------------------------

    def serve(self) -> FaultProxy:
        """Start listening on a free port of 127.0.0.1; ``url`` is then the proxy's base URL."""
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="bluesky-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and wait for the serving thread. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.serve()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        nsid = urlsplit(self.path).path.removeprefix("/xrpc/")
        fault = self.owner._take(nsid)
        if fault is not None and fault.kind == "respond":
            self._answer(fault.status, fault.headers, fault.body)
            self.owner.log.append((self.command, nsid, fault.status))
            return
        if fault is not None and fault.kind == "cut":
            self.owner.log.append((self.command, nsid, "cut"))
            self._cut()
            return
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        status, headers, payload = self._forward(body)
        if fault is not None and fault.kind == "drop":
            self.owner.log.append((self.command, nsid, "dropped"))
            self._cut()
            return
        self.owner.log.append((self.command, nsid, status))
        self._answer(status, headers, payload)

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        here = self.owner.answer_here(self.command, self.path, dict(self.headers.items()))
        if here is not None:
            return here
        conn = http.client.HTTPConnection(self.owner.upstream_host, self.owner.upstream_port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(self.command, self.path, body=body if body or self.command == "POST" else None,
                         headers=headers)
            answer = conn.getresponse()
            payload = answer.read()
            kept = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP_BY_HOP}
            return answer.status, kept, payload
        finally:
            conn.close()

    def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a delay fault)
            self.close_connection = True

    def _cut(self) -> None:
        """Close the connection without a byte of answer (a response lost on the way)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
