"""Durations as written in settings and story files: ``90m``, ``6h``, ``1h30m``, ``45s``, ``2d``."""

from __future__ import annotations

import datetime as dt
import re

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)")


def parse_duration(text: str) -> dt.timedelta:
    """Parse a delay such as ``90m``, ``6h``, ``1h30m``, ``45s`` or ``2d`` (a bare number is minutes)."""
    raw = str(text).strip().lower().replace(" ", "")
    try:
        if re.fullmatch(r"\d+", raw):
            return dt.timedelta(minutes=int(raw))
        pos, total = 0, dt.timedelta()
        for match in _DURATION_RE.finditer(raw):
            if match.start() != pos:
                break
            value, unit = float(match.group(1)), match.group(2)
            total += {"d": dt.timedelta(days=value), "h": dt.timedelta(hours=value),
                      "m": dt.timedelta(minutes=value), "s": dt.timedelta(seconds=value)}[unit]
            pos = match.end()
    except OverflowError:
        # A number too large for a timedelta: a ValueError like every other bad duration.
        raise ValueError(f"{text!r} is too long a duration") from None
    if not raw or pos != len(raw):
        raise ValueError(f"{text!r} is not a duration like 90m, 6h, 1h30m or 2d")
    return total


def format_duration(delta: dt.timedelta) -> str:
    """The inverse of :func:`parse_duration` for whole seconds (``5400`` seconds -> ``1h30m``)."""
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def human_duration(delta: dt.timedelta) -> str:
    """``delta`` rounded for a message: whole seconds under 90 s, whole minutes under 90 minutes,
    then tenths of hours up to two days, then tenths of days (``6h`` -> ``6.0h``)."""
    seconds = int(delta.total_seconds())
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 5400:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
