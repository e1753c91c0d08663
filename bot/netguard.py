"""Which addresses the bot may ask for a URL a third party gave it (a story's picture, a story's link).

Only public ones, unless the operator allows a network: a URL (and each redirect it leads to) naming a
loopback, private or link-local address, or a host that resolves to one, is refused before anything is
sent, so a feed or a site cannot make the bot reach into the network it runs in. The host is resolved
once and the request made to the address checked (:func:`pin`), so a name that resolves differently a
moment later (DNS rebinding) cannot slip a private address in between.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

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
