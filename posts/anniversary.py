"""Pure anniversary rules: when a story's root post and its follow-up are due."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from zoneinfo import ZoneInfo

UTC = dt.UTC

LEAP_DAY_RULES = ("feb28", "mar1")
"""What 29 February becomes in a year that has none."""


def shift_years(day: dt.date, years: int, leap_day: str = "feb28") -> dt.date:
    """The same calendar date ``years`` later; 29 February follows ``leap_day`` when it is missing."""
    if leap_day not in LEAP_DAY_RULES:
        raise ValueError(f"leap_day must be one of {', '.join(LEAP_DAY_RULES)}, not {leap_day!r}")
    year = day.year + years
    if day.month == 2 and day.day == 29 and not calendar.isleap(year):
        return dt.date(year, 2, 28) if leap_day == "feb28" else dt.date(year, 3, 1)
    return day.replace(year=year)


def localize(wall: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """Attach ``tz`` to a naive wall-clock time, resolving DST the bot's way.

    A time that does not exist (a DST gap) moves forward by the length of the gap
    (02:30 in a skipped hour becomes 03:30); a time that happens twice takes the first.
    """
    if wall.tzinfo is not None:
        raise ValueError("localize() takes a naive wall-clock time")
    # fold=0 picks the first of two (overlap) and, for a gap, the offset from before it,
    # which lands exactly "gap length" later once normalised through UTC.
    first = wall.replace(tzinfo=tz, fold=0)
    return first.astimezone(UTC).astimezone(tz)


def parse_window(text: str) -> tuple[dt.time, dt.time]:
    """Parse a daily posting window such as ``09:00-21:00``."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text or "")
    if not match:
        raise ValueError(f"posting window {text!r} is not of the form HH:MM-HH:MM (e.g. 09:00-21:00)")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        start, end = dt.time(h1, m1), (dt.time(h2, m2) if (h2, m2) != (24, 0) else dt.time.max)
    except ValueError as exc:
        raise ValueError(f"posting window {text!r}: {exc}") from None
    if start >= end:
        raise ValueError(f"posting window {text!r} must start before it ends, within one day")
    return start, end


def timed_root_due(
    when: dt.datetime, *, story_tz: str | None, bot_tz: str, years: int = 1, leap_day: str = "feb28"
) -> dt.datetime:
    """The root post's due time (UTC) for a story that has a time of day.

    The same local wall-clock time on the same calendar date ``years`` later, in the story's
    time zone, else in the zone of the offset the story gave, else the bot's.
    """
    if story_tz:
        zone: dt.tzinfo = ZoneInfo(story_tz)
        wall = when.astimezone(zone).replace(tzinfo=None) if when.tzinfo else when
    elif when.tzinfo is not None:
        zone, wall = when.tzinfo, when.replace(tzinfo=None)
    else:
        zone, wall = ZoneInfo(bot_tz), when
    day = shift_years(wall.date(), years, leap_day)
    return localize(dt.datetime.combine(day, wall.time()), zone).astimezone(UTC)


def anniversary_day(day: dt.date, *, years: int = 1, leap_day: str = "feb28") -> dt.date:
    """The calendar day a date-only story's anniversary falls on."""
    return shift_years(day, years, leap_day)


def window_slots(day: dt.date, count: int, *, window: tuple[dt.time, dt.time], bot_tz: str) -> list[dt.datetime]:
    """The due times (UTC) of ``count`` date-only stories on ``day``, in load order.

    The window is cut into ``count`` equal slots and each story takes the middle of its slot,
    rounded down to the minute, so the day is spread evenly and the result never depends on
    anything but load order. The slots are cut from the real (elapsed) time between the window's
    start and end, so on a day when the clocks change inside the window the due times still
    increase with the index (cutting wall-clock time would put two slots on one instant, or
    one before its predecessor, when a slot fell into the skipped hour).
    """
    start, end = _window_bounds(day, window, bot_tz)
    return [_slot(start, end, index, count) for index in range(count)]


def _window_bounds(day: dt.date, window: tuple[dt.time, dt.time], bot_tz: str) -> tuple[dt.datetime, dt.datetime]:
    zone = ZoneInfo(bot_tz)
    start = localize(dt.datetime.combine(day, window[0]), zone).astimezone(UTC)
    # parse_window() stores an end of 24:00 as time.max (23:59:59.999999); use the real midnight so
    # the microsecond short does not round every slot of a whole-day window down a minute.
    end_wall = (dt.datetime.combine(day + dt.timedelta(days=1), dt.time()) if window[1] == dt.time.max
                else dt.datetime.combine(day, window[1]))
    return start, localize(end_wall, zone).astimezone(UTC)


def _slot(start: dt.datetime, end: dt.datetime, index: int, count: int) -> dt.datetime:
    offset = (end - start) * (2 * index + 1) / (2 * count)
    return (start + offset).replace(second=0, microsecond=0)


def followup_due(root_due: dt.datetime, delay: dt.timedelta) -> dt.datetime:
    """The follow-up's due time: ``delay`` after its root is due."""
    return root_due + delay
