"""The one deadline of every fetch of a third party's URL (feeds, link checks, pictures): bot.netguard."""

from __future__ import annotations

import http.server
import time

import httpcore
import httpx
import pytest

from bot import netguard
from tests.local_site import LocalSite


class Dripping(LocalSite):
    """``/headers``: its headers a byte every 0.1 s (4 s in all); ``/body``: its body so; ``/ok``: at once."""

    def route(self, h: http.server.BaseHTTPRequestHandler, *, head: bool) -> None:
        if h.path == "/ok":
            self.send(h, 200, b"fine")
            return
        if h.path == "/headers":
            h.wfile.write(b"HTTP/1.1 200 OK\r\n")
            slow = b"X-Pad: " + b"a" * 33 + b"\r\nContent-Length: 2\r\n\r\n"
            rest = b"ok"
        else:
            h.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n")
            slow, rest = b"a" * 40, b""
        h.wfile.flush()
        for byte in slow:
            if self.stop.wait(0.1):
                return
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
        h.wfile.write(rest)


@pytest.fixture
def site():
    running = Dripping().start()
    try:
        yield running
    finally:
        running.close()


@pytest.mark.parametrize("path", ["/headers", "/body"])
def test_httpx_over_the_deadline_transport_gives_up_at_the_deadline_however_the_server_drips(site, path):
    """Each byte comes well within httpx's own (per read) timeout; only the overall deadline ends it."""
    began = time.monotonic()
    with httpx.Client(transport=netguard.deadline_transport(began + 1.0), timeout=httpx.Timeout(3.0)) as client:
        with pytest.raises(httpx.TimeoutException):
            client.get(site.url(path)).read()
    assert time.monotonic() - began < 2.0


@pytest.mark.parametrize("path", ["/headers", "/body"])
def test_httpcore_over_the_deadline_backend_gives_up_at_the_deadline(site, path):
    began = time.monotonic()
    with httpcore.ConnectionPool(network_backend=netguard.DeadlineBackend(began + 1.0)) as pool:
        with pytest.raises(httpcore.TimeoutException):
            pool.request("GET", site.url(path), extensions={"timeout": {"read": 3.0}})
    assert time.monotonic() - began < 2.0


def test_the_deadline_transport_answers_as_httpx_does(site):
    with httpx.Client(transport=netguard.deadline_transport(time.monotonic() + 5)) as client:
        answer = client.get(site.url("/ok"))
    assert (answer.status_code, answer.text) == (200, "fine")


def test_the_transport_replaces_httpx_s_own_pool():
    """httpx has no public way to pass a network backend: if it renames its pool, this fails (not the deadline)."""
    plain = httpx.HTTPTransport()
    assert isinstance(plain._pool, httpcore.ConnectionPool)
    ours = netguard.deadline_transport(time.monotonic() + 5)
    assert isinstance(ours._pool._network_backend, netguard.DeadlineBackend)
