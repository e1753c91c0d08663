"""A web site on 127.0.0.1 for tests of code that fetches URLs (pictures, feeds, link checks).

Subclasses answer in :meth:`LocalSite.route`; the base serves (HTTP/1.1, a thread per connection), records
every request, and keeps quiet about the clients that hang up on purpose (too big, too slow).
"""

from __future__ import annotations

import http.server
import sys
import threading
from typing import Any


class _Quiet(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client under test hangs up on purpose; a reset seen while the handler waits for the next
        # request on a kept-alive connection is not an error either.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class LocalSite:
    """A loopback HTTP server: ``requests`` holds ``(method, path)`` of each request, ``hosts`` its Host header.

    ``stop`` is set on :meth:`close`: a slow route waits on it rather than sleeping, so closing never hangs.
    ``address`` is the loopback address it listens on (another one than 127.0.0.1 stands for a host that
    code under test must not reach).
    """

    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address = address
        self.requests: list[tuple[str, str]] = []
        self.hosts: list[str] = []
        self.stop = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_HEAD(self) -> None:
                owner._handle(self, "HEAD")

            def do_GET(self) -> None:
                owner._handle(self, "GET")

        self.httpd = _Quiet((address, 0), Handler)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> LocalSite:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str, host: str = "") -> str:
        return f"http://{host or self.address}:{self.port}{path}"

    @property
    def paths(self) -> list[str]:
        """The paths requested, in order."""
        return [path for _, path in self.requests]

    def _handle(self, h: http.server.BaseHTTPRequestHandler, method: str) -> None:
        self.requests.append((method, h.path))
        self.hosts.append(h.headers.get("Host", ""))
        try:
            self.route(h, head=method == "HEAD")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route(self, h: http.server.BaseHTTPRequestHandler, *, head: bool) -> None:
        """Answer one request (``h.path`` is the path and query)."""
        raise NotImplementedError

    @staticmethod
    def send(h: http.server.BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None,
             *, head: bool = False) -> None:
        h.send_response(status)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)
