"""Which addresses the bot may ask for a URL a third party gave it (a story's picture, a story's link).

Only public ones, unless the operator allows a network: a URL (and each redirect it leads to) naming a
loopback, private or link-local address, or a host that resolves to one, is refused before anything is
sent, so a feed or a site cannot make the bot reach into the network it runs in. The host is resolved
once and the request made to the address checked (:func:`pin`), so a name that resolves differently a
moment later (DNS rebinding) cannot slip a private address in between.

Every fetch of such a URL (a feed, a link check, a picture) also ends by one deadline, whatever the
server does: :class:`DeadlineBackend` bounds every wait of a connection (connect, TLS, each read and
write) by what is left of it, which the per-operation timeouts of httpx and httpcore cannot do for a
server that drips its answer a byte at a time.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpcore

if TYPE_CHECKING:
    import httpx

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[Address]]
"""``(host, port)`` -> every address of the host (tests give one that names local test hosts)."""

UNPARSABLE, SCHEME, NO_HOST, UNRESOLVED, NO_ADDRESS, PRIVATE = (
    "unparsable", "scheme", "no host", "unresolved", "no address", "private")


class Unfit(Exception):
    """Why a URL is not asked for: ``reason`` (one of the constants above), with the scheme, host or
    address concerned; each caller words it for its own reader (and decides what it may show)."""

    def __init__(self, reason: str, *, scheme: str = "", host: str = "", address: Address | None = None):
        super().__init__(reason)
        self.reason = reason
        self.scheme = scheme
        self.host = host
        self.address = address


@dataclasses.dataclass(frozen=True)
class Pinned:
    """A URL to request: ``target`` has the host replaced by the checked ``address``; ``host_header`` is
    what the Host header says, ``sni`` the TLS server name (the host; empty for plain http)."""

    target: str
    host_header: str
    sni: str
    address: Address


def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to (an address literal is itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    found: list[Address] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def allowed(address: Address, allow_private: tuple[Network, ...] = ()) -> bool:
    """Whether ``address`` may be asked: a public one, or one in a network the operator allows."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allow_private):
        return True
    return address.is_global and not address.is_multicast


def pin(url: str, resolve: Resolver = resolve, allow_private: tuple[Network, ...] = ()) -> Pinned:
    """``url`` with its host checked and replaced by its first address, every address of the host allowed.

    Raises:
        Unfit: not an http(s) URL with a host, a host that cannot be resolved, or an address not allowed.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Unfit(UNPARSABLE) from None
    if parts.scheme not in ("http", "https"):
        raise Unfit(SCHEME, scheme=parts.scheme)
    if not host:
        raise Unfit(NO_HOST)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):  # UnicodeError: a label the IDNA codec refuses (over 63 characters, say)
        raise Unfit(UNRESOLVED, host=host) from None
    if not addresses:
        raise Unfit(NO_ADDRESS, host=host)
    for address in addresses:
        if not allowed(address, allow_private):
            raise Unfit(PRIVATE, host=host, address=address)
    address = addresses[0]
    netloc = f"[{address}]" if address.version == 6 else str(address)
    if port != (443 if parts.scheme == "https" else 80):
        netloc += f":{port}"
    target = f"{parts.scheme}://{netloc}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    return Pinned(target, parts.netloc.rpartition("@")[2], host if parts.scheme == "https" else "", address)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore connections whose every wait (connect, TLS, each read and write) ends by ``deadline``
    (:func:`time.monotonic`); past it, the wait raises httpcore's timeout of its kind (which httpx
    raises as its own), so a server dripping its headers or body cannot hold a fetch past its time."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.backend = httpcore.SyncBackend()

    def left(self, timeout: float | None, late: type[Exception]) -> float:
        """How long the next wait may last (``late`` raised once the deadline has passed)."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise late("the fetch's deadline has passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        stream = self.backend.connect_tcp(host, port, self.left(timeout, httpcore.ConnectTimeout), local_address,
                                          socket_options)
        return _DeadlineStream(stream, self)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        stream = self.backend.connect_unix_socket(path, self.left(timeout, httpcore.ConnectTimeout), socket_options)
        return _DeadlineStream(stream, self)

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(min(seconds, max(0.0, self.deadline - time.monotonic())))


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, owner: DeadlineBackend) -> None:
        self.stream = stream
        self.owner = owner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, self.owner.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, self.owner.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        stream = self.stream.start_tls(ssl_context, server_hostname, self.owner.left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(stream, self.owner)

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


def deadline_transport(deadline: float) -> httpx.HTTPTransport:
    """An httpx transport over :class:`DeadlineBackend` connections, environment ignored (no proxy).

    httpx has no public way to give its transport a network backend, so the transport's pool is
    replaced by an equal one over ours (``tests/test_netguard.py`` fails should httpx rename it).
    """
    import httpx

    transport = httpx.HTTPTransport(trust_env=False)
    transport._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(trust_env=False),
                                              network_backend=DeadlineBackend(deadline))
    return transport
