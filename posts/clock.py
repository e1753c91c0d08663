"""The clock: the one place the real time is read.

Every layer takes the time through a ``clock`` callable that defaults to :func:`utcnow`, so that
tests and replays can hand in a clock of their own.
"""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC: the one place the real clock is read."""
    return dt.datetime.now(dt.UTC)
