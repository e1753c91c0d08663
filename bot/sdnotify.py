"""systemd's notify protocol (``sd_notify``) with the standard library: a datagram to ``$NOTIFY_SOCKET``.

``run`` tells systemd it is ready (``READY=1``) once it has started, feeds the watchdog
(``WATCHDOG=1``) from its loop at least every half of ``$WATCHDOG_USEC``, and says ``STOPPING=1`` on
shutdown. Without ``$NOTIFY_SOCKET`` (not started by systemd as ``Type=notify``) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends state lines to systemd; a no-op when the process was not started with a notify socket."""

    def __init__(self, environ: Mapping[str, str] | None = None, monotonic: Callable[[], float] = time.monotonic):
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written "@name"; its address starts with a NUL byte.
        self.address = "\0" + path[1:] if path.startswith("@") else path
        self.watchdog: float | None = None
        """Seconds between two feeds of the watchdog (half of ``$WATCHDOG_USEC``), or ``None``."""
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog = int(usec) / 1e6 / 2
        self._monotonic = monotonic
        self._last_feed: float | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, state: str) -> bool:
        """Send one state (``READY=1``, ``WATCHDOG=1``, ``STATUS=...``); ``False`` when it could not."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(state.encode())
        except OSError as exc:
            log.warning("cannot notify systemd at NOTIFY_SOCKET (%s): %s", state.split("=")[0], exc.strerror or exc)
            return False
        return True

    def ready(self, status: str = "") -> None:
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))
        self._last_feed = self._monotonic()

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def feed(self) -> None:
        """Feed the watchdog when half its interval has passed since the last feed."""
        if self.watchdog is None or not self.address:
            return
        now = self._monotonic()
        if self._last_feed is None or now - self._last_feed >= self.watchdog:
            self.notify("WATCHDOG=1")
            self._last_feed = now

    def wait_limit(self, idle: float | None) -> float | None:
        """How long the loop may sleep: ``idle``, capped so it wakes in time for the next feed."""
        if self.watchdog is None or not self.address:
            return idle
        last = self._last_feed if self._last_feed is not None else self._monotonic()
        until_feed = max(0.0, last + self.watchdog - self._monotonic())
        return until_feed if idle is None else min(idle, until_feed)
