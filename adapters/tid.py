"""Provide atproto TIDs: sortable 13-character record keys, unique per process and clock id."""

from __future__ import annotations

import random
import threading
import time

ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_lock = threading.Lock()
_last_us = 0
_clock_id = random.SystemRandom().randrange(1024)


def encode(timestamp_us: int, clock_id: int) -> str:
    """The TID of a microsecond timestamp and a 10-bit clock id."""
    if not 0 <= timestamp_us < 2**53 or not 0 <= clock_id < 1024:
        raise ValueError("TID needs 0 <= timestamp_us < 2**53 and 0 <= clock_id < 1024")
    value = (timestamp_us << 10) | clock_id
    return "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def next_tid() -> str:
    """A fresh TID, strictly increasing within this process."""
    global _last_us
    with _lock:
        now = time.time_ns() // 1000
        _last_us = max(now, _last_us + 1)
        return encode(_last_us, _clock_id)
