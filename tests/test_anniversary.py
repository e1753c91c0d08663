"""Table tests of the pure anniversary rules in :mod:`posts.anniversary` and the durations of :mod:`posts.durations`."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posts.anniversary import (
    LEAP_DAY_RULES,
    anniversary_day,
    followup_due,
    localize,
    parse_window,
    shift_years,
    timed_root_due,
    window_slots,
)
from posts.durations import format_duration, parse_duration

UTC = dt.UTC
D = dt.date
T = dt.datetime


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def offset(hours: float) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=hours))


def case(*values: object, id: str):
    return pytest.param(*values, id=id)


# --------------------------------------------------------------------------------------------
# shift_years
# --------------------------------------------------------------------------------------------

ORDINARY_SHIFTS = [
    case(D(2024, 1, 12), 1, D(2025, 1, 12), id="ordinary-date"),
    case(D(2024, 7, 4), 1, D(2025, 7, 4), id="mid-year"),
    case(D(2024, 1, 1), 1, D(2025, 1, 1), id="new-years-day"),
    case(D(2024, 1, 31), 1, D(2025, 1, 31), id="31-jan"),
    case(D(2024, 4, 30), 1, D(2025, 4, 30), id="30-apr"),
    case(D(2024, 12, 31), 1, D(2025, 12, 31), id="31-dec"),
    case(D(2024, 2, 28), 1, D(2025, 2, 28), id="28-feb-out-of-a-leap-year"),
    case(D(2023, 2, 28), 1, D(2024, 2, 28), id="28-feb-into-a-leap-year-stays-28"),
    case(D(2024, 3, 1), 1, D(2025, 3, 1), id="1-mar-after-a-leap-day"),
    case(D(2024, 7, 4), 2, D(2026, 7, 4), id="two-years"),
    case(D(2024, 7, 4), 3, D(2027, 7, 4), id="three-years"),
    case(D(2024, 7, 4), 4, D(2028, 7, 4), id="four-years"),
    case(D(2024, 7, 4), 10, D(2034, 7, 4), id="ten-years"),
    case(D(2025, 6, 15), 0, D(2025, 6, 15), id="zero-years-is-the-same-day"),
    case(D(2025, 6, 15), -1, D(2024, 6, 15), id="negative-years-go-back"),
]


@pytest.mark.parametrize(("day", "years", "expected"), ORDINARY_SHIFTS)
@pytest.mark.parametrize("leap_day", LEAP_DAY_RULES)
def test_shift_years_keeps_the_calendar_date(day, years, expected, leap_day):
    assert shift_years(day, years, leap_day) == expected


LEAP_DAY_SHIFTS = [
    case(D(2024, 2, 29), 1, "feb28", D(2025, 2, 28), id="feb28-one-year"),
    case(D(2024, 2, 29), 1, "mar1", D(2025, 3, 1), id="mar1-one-year"),
    case(D(2024, 2, 29), 2, "feb28", D(2026, 2, 28), id="feb28-two-years"),
    case(D(2024, 2, 29), 2, "mar1", D(2026, 3, 1), id="mar1-two-years"),
    case(D(2024, 2, 29), 3, "feb28", D(2027, 2, 28), id="feb28-three-years"),
    case(D(2024, 2, 29), 3, "mar1", D(2027, 3, 1), id="mar1-three-years"),
    case(D(2024, 2, 29), 4, "feb28", D(2028, 2, 29), id="feb28-four-years-stays-29"),
    case(D(2024, 2, 29), 4, "mar1", D(2028, 2, 29), id="mar1-four-years-stays-29"),
    case(D(2024, 2, 29), 10, "feb28", D(2034, 2, 28), id="feb28-ten-years"),
    case(D(2024, 2, 29), 10, "mar1", D(2034, 3, 1), id="mar1-ten-years"),
    case(D(1996, 2, 29), 4, "feb28", D(2000, 2, 29), id="2000-is-a-leap-year"),
    case(D(2096, 2, 29), 4, "feb28", D(2100, 2, 28), id="2100-is-not-a-leap-year"),
    case(D(2096, 2, 29), 4, "mar1", D(2100, 3, 1), id="2100-is-not-a-leap-year-mar1"),
]


@pytest.mark.parametrize(("day", "years", "leap_day", "expected"), LEAP_DAY_SHIFTS)
def test_leap_day_follows_the_leap_day_rule(day, years, leap_day, expected):
    assert shift_years(day, years, leap_day) == expected


def test_leap_day_moves_to_feb28_by_default():
    assert shift_years(D(2024, 2, 29), 1) == D(2025, 2, 28)


@pytest.mark.parametrize("day", [D(2024, 2, 29), D(2024, 5, 5)], ids=["leap-day", "ordinary-day"])
@pytest.mark.parametrize("rule", ["feb29", "", "FEB28", "march1", "mar01"])
def test_an_unknown_leap_day_rule_is_refused(day, rule):
    with pytest.raises(ValueError, match=r"leap_day must be one of feb28, mar1"):
        shift_years(day, 1, rule)


@pytest.mark.parametrize(("day", "years", "leap_day"), [
    case(D(2024, 2, 29), 1, "feb28", id="leap-day-feb28"),
    case(D(2024, 2, 29), 1, "mar1", id="leap-day-mar1"),
    case(D(2024, 12, 31), 2, "feb28", id="month-end"),
])
def test_anniversary_day_is_shift_years(day, years, leap_day):
    assert anniversary_day(day, years=years, leap_day=leap_day) == shift_years(day, years, leap_day)


# --------------------------------------------------------------------------------------------
# localize
# --------------------------------------------------------------------------------------------

LOCALIZE = [
    # DST gaps: the time moves forward by the length of the gap
    case(T(2025, 3, 9, 2, 30), "America/New_York", "2025-03-09T03:30:00-04:00", id="new-york-gap"),
    case(T(2025, 3, 9, 2, 0), "America/New_York", "2025-03-09T03:00:00-04:00", id="new-york-gap-start"),
    case(T(2025, 3, 9, 2, 59), "America/New_York", "2025-03-09T03:59:00-04:00", id="new-york-gap-end"),
    case(T(2025, 3, 9, 1, 59), "America/New_York", "2025-03-09T01:59:00-05:00", id="new-york-before-gap"),
    case(T(2025, 3, 9, 3, 0), "America/New_York", "2025-03-09T03:00:00-04:00", id="new-york-after-gap"),
    case(T(2025, 3, 30, 1, 30), "Europe/London", "2025-03-30T02:30:00+01:00", id="london-gap"),
    case(T(2025, 3, 30, 2, 30), "Europe/Berlin", "2025-03-30T03:30:00+02:00", id="berlin-gap"),
    case(T(2025, 10, 5, 2, 15), "Australia/Lord_Howe", "2025-10-05T02:45:00+11:00",
         id="lord-howe-30-minute-gap"),
    case(T(2025, 10, 5, 2, 30), "Australia/Sydney", "2025-10-05T03:30:00+11:00", id="sydney-gap"),
    case(T(2025, 9, 7, 0, 30), "America/Santiago", "2025-09-07T01:30:00-03:00", id="santiago-midnight-gap"),
    # DST overlaps: the first of the two
    case(T(2025, 11, 2, 1, 30), "America/New_York", "2025-11-02T01:30:00-04:00", id="new-york-overlap"),
    case(T(2025, 10, 26, 2, 30), "Europe/Berlin", "2025-10-26T02:30:00+02:00", id="berlin-overlap"),
    case(T(2025, 10, 26, 1, 30), "Europe/London", "2025-10-26T01:30:00+01:00", id="london-overlap"),
    case(T(2025, 4, 6, 2, 30), "Australia/Sydney", "2025-04-06T02:30:00+11:00", id="sydney-overlap"),
    case(T(2025, 4, 6, 1, 45), "Australia/Lord_Howe", "2025-04-06T01:45:00+11:00",
         id="lord-howe-30-minute-overlap"),
    case(T(2025, 4, 5, 23, 30), "America/Santiago", "2025-04-05T23:30:00-03:00", id="santiago-overlap"),
    # ordinary times are unchanged
    case(T(2025, 7, 1, 12, 0), "America/New_York", "2025-07-01T12:00:00-04:00", id="new-york-summer"),
    case(T(2025, 1, 15, 12, 0), "America/New_York", "2025-01-15T12:00:00-05:00", id="new-york-winter"),
    case(T(2025, 1, 15, 9, 0), "Europe/Berlin", "2025-01-15T09:00:00+01:00", id="berlin-winter"),
    case(T(2025, 1, 15, 9, 0), "Australia/Sydney", "2025-01-15T09:00:00+11:00", id="sydney-summer"),
    case(T(2025, 7, 15, 9, 0), "Australia/Sydney", "2025-07-15T09:00:00+10:00", id="sydney-winter"),
    case(T(2025, 7, 15, 9, 0), "America/Santiago", "2025-07-15T09:00:00-04:00", id="santiago-winter"),
    case(T(2025, 6, 1, 9, 0), "Asia/Kolkata", "2025-06-01T09:00:00+05:30", id="kolkata-half-hour"),
    case(T(2025, 6, 1, 9, 0), "Asia/Kathmandu", "2025-06-01T09:00:00+05:45", id="kathmandu-quarter-hour"),
    case(T(2025, 3, 9, 2, 30), "UTC", "2025-03-09T02:30:00+00:00", id="utc-has-no-gap"),
]


@pytest.mark.parametrize(("wall", "zone", "expected"), LOCALIZE)
def test_localize_resolves_gaps_forward_and_overlaps_to_the_first(wall, zone, expected):
    result = localize(wall, ZoneInfo(zone))
    assert result.isoformat() == expected
    assert result.tzinfo is not None


@pytest.mark.parametrize("tz", [offset(2), offset(-5.5), UTC], ids=["plus-2", "minus-5h30", "utc"])
def test_localize_with_a_fixed_offset_keeps_the_wall_clock(tz):
    wall = T(2025, 3, 9, 2, 30)
    result = localize(wall, tz)
    assert result.replace(tzinfo=None) == wall
    assert result.utcoffset() == tz.utcoffset(None)


@pytest.mark.parametrize("aware", [utc(2025, 1, 1, 12), T(2025, 1, 1, 12, tzinfo=ZoneInfo("Europe/Berlin"))],
                         ids=["utc", "zoneinfo"])
def test_localize_refuses_an_aware_datetime(aware):
    with pytest.raises(ValueError, match="naive"):
        localize(aware, ZoneInfo("Europe/Berlin"))


ZONES = ["America/New_York", "Europe/London", "Europe/Berlin", "Australia/Lord_Howe", "Australia/Sydney",
         "America/Santiago", "Asia/Kolkata", "UTC"]


@given(
    wall=st.datetimes(min_value=T(2020, 1, 1), max_value=T(2030, 12, 31)),
    zone=st.sampled_from(ZONES),
)
def test_localize_never_moves_a_time_back_and_at_most_by_one_gap(wall, zone):
    result = localize(wall, ZoneInfo(zone))
    moved = result.replace(tzinfo=None) - wall
    assert dt.timedelta(0) <= moved <= dt.timedelta(hours=1)
    # the result is a real instant: localizing its own wall clock gives it back
    assert localize(result.replace(tzinfo=None), ZoneInfo(zone)) == result


# --------------------------------------------------------------------------------------------
# timed_root_due
# --------------------------------------------------------------------------------------------

TIMED = [
    # the story's time zone
    case(T(2024, 1, 21, 16, 30), "America/New_York", "UTC", 1, "feb28", utc(2025, 1, 21, 21, 30),
         id="story-zone-winter"),
    case(T(2024, 7, 4, 9, 0), "America/New_York", "UTC", 1, "feb28", utc(2025, 7, 4, 13, 0),
         id="story-zone-summer"),
    case(T(2024, 1, 21, 16, 30), "America/New_York", "Europe/Berlin", 1, "feb28", utc(2025, 1, 21, 21, 30),
         id="story-zone-wins-over-bot-zone"),
    # an offset without a zone keeps its offset (no DST to follow)
    case(T(2024, 6, 1, 14, 30, tzinfo=offset(2)), None, "America/New_York", 1, "feb28",
         utc(2025, 6, 1, 12, 30), id="offset-plus-2"),
    case(T(2024, 6, 1, 14, 30, tzinfo=UTC), None, "Asia/Tokyo", 1, "feb28", utc(2025, 6, 1, 14, 30),
         id="offset-z"),
    case(T(2024, 7, 15, 9, 0, tzinfo=offset(-5)), None, "America/New_York", 1, "feb28",
         utc(2025, 7, 15, 14, 0), id="offset-minus-5-ignores-summer-time"),
    case(T(2024, 3, 9, 2, 30, tzinfo=offset(-5)), None, "America/New_York", 1, "feb28",
         utc(2025, 3, 9, 7, 30), id="offset-has-no-gap"),
    # naive without a zone: the bot's zone
    case(T(2024, 7, 1, 9, 0), None, "Europe/Berlin", 1, "feb28", utc(2025, 7, 1, 7, 0),
         id="naive-bot-zone-summer"),
    case(T(2024, 1, 10, 9, 0), None, "Europe/Berlin", 1, "feb28", utc(2025, 1, 10, 8, 0),
         id="naive-bot-zone-winter"),
    case(T(2024, 1, 10, 9, 0), None, "UTC", 1, "feb28", utc(2025, 1, 10, 9, 0), id="naive-bot-utc"),
    # an aware time with a different story zone is converted first: the local date counts
    case(T(2024, 6, 1, 12, 0, tzinfo=offset(2)), "America/New_York", "UTC", 1, "feb28",
         utc(2025, 6, 1, 10, 0), id="aware-converted-to-story-zone"),
    case(T(2024, 2, 29, 20, 0, tzinfo=UTC), "Asia/Tokyo", "UTC", 1, "feb28", utc(2025, 2, 28, 20, 0),
         id="utc-leap-day-evening-is-1-march-in-tokyo"),
    case(T(2024, 3, 1, 1, 0, tzinfo=UTC), "America/Los_Angeles", "UTC", 1, "feb28", utc(2025, 3, 1, 1, 0),
         id="utc-1-march-is-leap-day-in-los-angeles-feb28"),
    case(T(2024, 3, 1, 1, 0, tzinfo=UTC), "America/Los_Angeles", "UTC", 1, "mar1", utc(2025, 3, 2, 1, 0),
         id="utc-1-march-is-leap-day-in-los-angeles-mar1"),
    # years and leap day
    case(T(2024, 5, 5, 10, 0), None, "UTC", 2, "feb28", utc(2026, 5, 5, 10, 0), id="two-years"),
    case(T(2024, 5, 5, 10, 0), None, "UTC", 3, "feb28", utc(2027, 5, 5, 10, 0), id="three-years"),
    case(T(2024, 5, 5, 10, 0), None, "UTC", 10, "feb28", utc(2034, 5, 5, 10, 0), id="ten-years"),
    case(T(2024, 2, 29, 12, 0), "Europe/London", "UTC", 1, "feb28", utc(2025, 2, 28, 12, 0),
         id="leap-day-feb28"),
    case(T(2024, 2, 29, 12, 0), "Europe/London", "UTC", 1, "mar1", utc(2025, 3, 1, 12, 0),
         id="leap-day-mar1"),
    case(T(2024, 2, 29, 12, 0), "Europe/London", "UTC", 4, "feb28", utc(2028, 2, 29, 12, 0),
         id="leap-day-four-years"),
    case(T(2024, 12, 31, 23, 59), "Pacific/Auckland", "UTC", 1, "feb28", utc(2025, 12, 31, 10, 59),
         id="new-years-eve-in-auckland"),
    # DST on the anniversary
    case(T(2024, 3, 9, 2, 30), "America/New_York", "UTC", 1, "feb28", utc(2025, 3, 9, 7, 30),
         id="valid-last-year-in-a-gap-this-year"),
    case(T(2024, 3, 30, 2, 30), "Europe/Berlin", "UTC", 1, "feb28", utc(2025, 3, 30, 1, 30),
         id="berlin-gap-on-the-anniversary"),
    case(T(2024, 3, 31, 2, 30), "Europe/Berlin", "UTC", 1, "feb28", utc(2025, 3, 31, 0, 30),
         id="in-a-gap-last-year-valid-this-year"),
    case(T(2024, 3, 30, 1, 30), None, "Europe/London", 1, "feb28", utc(2025, 3, 30, 1, 30),
         id="gap-in-the-bot-zone"),
    case(T(2024, 10, 5, 2, 15), "Australia/Lord_Howe", "UTC", 1, "feb28", utc(2025, 10, 4, 15, 45),
         id="lord-howe-30-minute-gap"),
    case(T(2024, 11, 2, 1, 30), "America/New_York", "UTC", 1, "feb28", utc(2025, 11, 2, 5, 30),
         id="overlap-on-the-anniversary-takes-the-first"),
    case(T(2024, 9, 7, 0, 30), "America/Santiago", "UTC", 1, "feb28", utc(2025, 9, 7, 4, 30),
         id="santiago-midnight-gap"),
]


@pytest.mark.parametrize(("when", "story_tz", "bot_tz", "years", "leap_day", "expected"), TIMED)
def test_timed_root_is_due_at_the_same_local_time_on_the_anniversary(
    when, story_tz, bot_tz, years, leap_day, expected
):
    due = timed_root_due(when, story_tz=story_tz, bot_tz=bot_tz, years=years, leap_day=leap_day)
    assert due == expected
    assert due.utcoffset() == dt.timedelta(0)


def test_timed_root_due_defaults_to_one_year_and_feb28():
    assert timed_root_due(T(2024, 2, 29, 8, 0), story_tz=None, bot_tz="UTC") == utc(2025, 2, 28, 8, 0)


def test_timed_root_due_refuses_an_unknown_leap_day_rule():
    with pytest.raises(ValueError, match="leap_day"):
        timed_root_due(T(2024, 2, 29, 8, 0), story_tz=None, bot_tz="UTC", leap_day="feb29")


@pytest.mark.parametrize(("root", "delay", "expected"), [
    case(utc(2025, 1, 1, 12), dt.timedelta(hours=6), utc(2025, 1, 1, 18), id="six-hours"),
    case(utc(2025, 1, 1, 22), dt.timedelta(minutes=90), utc(2025, 1, 1, 23, 30), id="ninety-minutes"),
    case(utc(2025, 12, 31, 20), dt.timedelta(days=1), utc(2026, 1, 1, 20), id="across-the-year"),
])
def test_followup_is_due_its_delay_after_the_root(root, delay, expected):
    assert followup_due(root, delay) == expected


# --------------------------------------------------------------------------------------------
# window_slots and parse_window
# --------------------------------------------------------------------------------------------

SUMMER = D(2025, 6, 1)

SLOTS_UTC = [
    case("09:00-21:00", 1, ["15:00"], id="one-story-in-the-middle"),
    case("09:00-21:00", 2, ["12:00", "18:00"], id="two-stories"),
    case("09:00-21:00", 3, ["11:00", "15:00", "19:00"], id="three-stories"),
    case("09:00-21:00", 4, ["10:30", "13:30", "16:30", "19:30"], id="four-stories"),
    case("09:00-21:00", 7, ["09:51", "11:34", "13:17", "15:00", "16:42", "18:25", "20:08"],
         id="seven-stories-round-down-to-the-minute"),
    case("08:00-08:05", 2, ["08:01", "08:03"], id="short-window-rounds-down"),
    case("00:00-24:00", 1, ["12:00"], id="whole-day-one-story-at-noon"),
    case("00:00-24:00", 2, ["06:00", "18:00"], id="whole-day-two-stories"),
    case("00:00-24:00", 4, ["03:00", "09:00", "15:00", "21:00"], id="whole-day-four-stories"),
    case("18:00-24:00", 3, ["19:00", "21:00", "23:00"], id="evening-to-midnight"),
]


@pytest.mark.parametrize(("window", "count", "expected"), SLOTS_UTC)
def test_date_only_stories_are_spread_evenly_over_the_window(window, count, expected):
    times = window_slots(SUMMER, count, window=parse_window(window), bot_tz="UTC")
    assert [t.strftime("%H:%M") for t in times] == expected
    assert all(t.date() == SUMMER and t.utcoffset() == dt.timedelta(0) for t in times)
    assert all(t.second == 0 and t.microsecond == 0 for t in times)


SLOTS_ZONED = [
    case(D(2025, 1, 15), "Europe/Berlin", "09:00-21:00", 1, [utc(2025, 1, 15, 14, 0)], id="berlin-winter"),
    case(D(2025, 7, 15), "Europe/Berlin", "09:00-21:00", 1, [utc(2025, 7, 15, 13, 0)], id="berlin-summer"),
    case(D(2025, 6, 1), "Asia/Kathmandu", "09:00-21:00", 1, [utc(2025, 6, 1, 9, 15)], id="kathmandu"),
    case(D(2025, 6, 1), "Pacific/Auckland", "09:00-21:00", 2, [utc(2025, 6, 1, 0, 0), utc(2025, 6, 1, 6, 0)],
         id="auckland-noon-is-midnight-utc"),
    case(D(2025, 6, 1), "Pacific/Auckland", "09:00-11:00", 1, [utc(2025, 5, 31, 22, 0)],
         id="auckland-morning-is-the-day-before-in-utc"),
    # DST days: the window is cut in real time
    case(D(2025, 3, 30), "Europe/Berlin", "09:00-21:00", 2, [utc(2025, 3, 30, 10, 0), utc(2025, 3, 30, 16, 0)],
         id="berlin-spring-forward-day-window-after-the-gap"),
    case(D(2025, 3, 9), "America/New_York", "00:00-04:00", 4,
         [utc(2025, 3, 9, 5, 22), utc(2025, 3, 9, 6, 7), utc(2025, 3, 9, 6, 52), utc(2025, 3, 9, 7, 37)],
         id="new-york-window-across-the-gap"),
    case(D(2025, 3, 9), "America/New_York", "02:30-06:00", 1, [utc(2025, 3, 9, 8, 45)],
         id="new-york-window-starting-in-the-gap"),
    case(D(2025, 11, 2), "America/New_York", "00:00-24:00", 2, [utc(2025, 11, 2, 10, 15), utc(2025, 11, 2, 22, 45)],
         id="new-york-25-hour-day"),
    case(D(2025, 10, 5), "Australia/Lord_Howe", "00:00-06:00", 1, [utc(2025, 10, 4, 16, 15)],
         id="lord-howe-half-hour-gap"),
]


@pytest.mark.parametrize(("day", "bot_tz", "window", "count", "expected"), SLOTS_ZONED)
def test_window_slots_are_in_the_bots_time_zone(day, bot_tz, window, count, expected):
    times = window_slots(day, count, window=parse_window(window), bot_tz=bot_tz)
    assert times == expected


@pytest.mark.parametrize(("day", "bot_tz"), [
    case(D(2025, 3, 9), "America/New_York", id="new-york-spring-forward"),
    case(D(2025, 11, 2), "America/New_York", id="new-york-fall-back"),
    case(D(2025, 3, 30), "Europe/London", id="london-spring-forward"),
    case(D(2025, 10, 5), "Australia/Lord_Howe", id="lord-howe-spring-forward"),
    case(D(2025, 9, 7), "America/Santiago", id="santiago-midnight-gap"),
    case(D(2025, 6, 1), "UTC", id="ordinary-day"),
])
@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 13, 24, 48])
def test_window_slots_increase_in_load_order_even_on_a_dst_day(day, bot_tz, count):
    window = parse_window("00:00-24:00")
    zone = ZoneInfo(bot_tz)
    times = window_slots(day, count, window=window, bot_tz=bot_tz)
    assert times == sorted(set(times)), "every slot is strictly after the one before"
    start = localize(T.combine(day, dt.time()), zone)
    end = localize(T.combine(day + dt.timedelta(days=1), dt.time()), zone)
    assert all(start <= t < end for t in times)
    gaps = {b - a for a, b in zip(times, times[1:], strict=False)}
    assert max(gaps, default=dt.timedelta(0)) - min(gaps, default=dt.timedelta(0)) <= dt.timedelta(minutes=1)


@pytest.mark.parametrize(("day", "bot_tz", "window", "count", "expected"), SLOTS_ZONED)
def test_all_slots_of_a_day_at_once_match_the_slots_one_by_one(day, bot_tz, window, count, expected):
    # the loader resolves a day's window once for all its stories; the result must not change
    assert window_slots(day, count, window=parse_window(window), bot_tz=bot_tz) == expected
    assert window_slots(day, 0, window=parse_window(window), bot_tz=bot_tz) == []


@pytest.mark.parametrize(("text", "expected"), [
    case("09:00-21:00", (dt.time(9), dt.time(21)), id="default"),
    case("9:00-21:00", (dt.time(9), dt.time(21)), id="one-digit-hour"),
    case(" 08:30 - 17:45 ", (dt.time(8, 30), dt.time(17, 45)), id="spaces"),
    case("00:00-23:59", (dt.time(0), dt.time(23, 59)), id="nearly-whole-day"),
    case("00:00-24:00", (dt.time(0), dt.time.max), id="24-00-is-the-end-of-the-day"),
    case("23:00-24:00", (dt.time(23), dt.time.max), id="last-hour"),
])
def test_parse_window_reads_hh_mm_ranges(text, expected):
    assert parse_window(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    case("", "not of the form HH:MM-HH:MM", id="empty"),
    case(None, "not of the form HH:MM-HH:MM", id="none"),
    case("09:00", "not of the form HH:MM-HH:MM", id="no-end"),
    case("9-21", "not of the form HH:MM-HH:MM", id="hours-only"),
    case("09:00-21", "not of the form HH:MM-HH:MM", id="end-without-minutes"),
    case("0900-2100", "not of the form HH:MM-HH:MM", id="no-colons"),
    case("09:00\u201321:00", "not of the form HH:MM-HH:MM", id="en-dash"),
    case("9am-9pm", "not of the form HH:MM-HH:MM", id="am-pm"),
    case("25:00-26:00", "hour must be in 0..23", id="hour-25"),
    case("09:60-21:00", "minute must be in 0..59", id="minute-60"),
    case("24:00-24:00", "hour must be in 0..23", id="start-at-24"),
    case("09:00-24:30", "hour must be in 0..23", id="end-after-24"),
    case("21:00-09:00", "must start before it ends", id="start-after-end"),
    case("09:00-09:00", "must start before it ends", id="empty-window"),
])
def test_parse_window_explains_a_bad_window(text, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_window(text)
    assert "posting window" in str(info.value)
    if text:
        assert repr(text) in str(info.value), "the message quotes what was given"


# --------------------------------------------------------------------------------------------
# parse_duration and format_duration
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    case("90m", dt.timedelta(minutes=90), id="minutes"),
    case("6h", dt.timedelta(hours=6), id="hours"),
    case("1h30m", dt.timedelta(minutes=90), id="hours-and-minutes"),
    case("2d", dt.timedelta(days=2), id="days"),
    case("45s", dt.timedelta(seconds=45), id="seconds"),
    case("1d2h3m4s", dt.timedelta(days=1, hours=2, minutes=3, seconds=4), id="every-unit"),
    case("90", dt.timedelta(minutes=90), id="bare-number-is-minutes"),
    case("0", dt.timedelta(0), id="bare-zero"),
    case(" 1h 30m ", dt.timedelta(minutes=90), id="spaces"),
    case("1H30M", dt.timedelta(minutes=90), id="upper-case"),
    case("1.5h", dt.timedelta(minutes=90), id="decimal-hours"),
    case(90, dt.timedelta(minutes=90), id="an-int-is-minutes"),
])
def test_parse_duration_reads_delays(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", [
    case("", id="empty"),
    case("   ", id="blank"),
    case("abc", id="words"),
    case("h", id="unit-only"),
    case("1x", id="unknown-unit"),
    case("1h30", id="trailing-number"),
    case("-5m", id="negative"),
    case("5m-", id="trailing-junk"),
    case("1.5", id="bare-decimal"),
    case("m30", id="unit-first"),
    case("1h-30m", id="minus-in-the-middle"),
    case("1 hour", id="unit-word"),
])
def test_parse_duration_refuses_what_is_not_a_delay(text):
    with pytest.raises(ValueError, match=r"is not a duration like 90m, 6h, 1h30m or 2d"):
        parse_duration(text)


@pytest.mark.parametrize("text", [
    case("99999999999d", id="too-many-days"),
    case("99999999999999999999", id="too-many-minutes"),
    case("1e400h", id="exponent-is-not-a-number"),
])
def test_parse_duration_refuses_a_huge_delay_with_a_value_error(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(("delta", "expected"), [
    case(dt.timedelta(seconds=5400), "1h30m", id="ninety-minutes"),
    case(dt.timedelta(hours=6), "6h", id="six-hours"),
    case(dt.timedelta(days=2), "2d", id="two-days"),
    case(dt.timedelta(seconds=45), "45s", id="seconds"),
    case(dt.timedelta(days=1, hours=2, minutes=3, seconds=4), "1d2h3m4s", id="every-unit"),
    case(dt.timedelta(days=1, seconds=4), "1d4s", id="skips-zero-units"),
    case(dt.timedelta(0), "0s", id="zero"),
    case(dt.timedelta(seconds=59.9), "59s", id="drops-fractions"),
])
def test_format_duration_writes_the_shortest_form(delta, expected):
    assert format_duration(delta) == expected


@given(st.integers(min_value=0, max_value=10**9))
def test_format_then_parse_duration_round_trips(seconds):
    delta = dt.timedelta(seconds=seconds)
    text = format_duration(delta)
    assert parse_duration(text) == delta
    assert format_duration(parse_duration(text)) == text


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=10_000), st.sampled_from("dhms")),
                min_size=1, max_size=4))
def test_parse_duration_adds_up_its_parts(parts):
    sizes = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    text = "".join(f"{value}{unit}" for value, unit in parts)
    assert parse_duration(text) == dt.timedelta(seconds=sum(value * sizes[unit] for value, unit in parts))


def test_human_duration_rounds_for_messages_and_format_duration_is_exact():
    from posts.durations import format_duration, human_duration

    cases = {dt.timedelta(seconds=89): "89s", dt.timedelta(minutes=2): "2m", dt.timedelta(minutes=89): "89m",
             dt.timedelta(hours=6): "6.0h", dt.timedelta(hours=1, minutes=30): "1.5h", dt.timedelta(days=3): "3.0d"}
    for delta, shown in cases.items():
        assert human_duration(delta) == shown
    assert format_duration(dt.timedelta(hours=1, minutes=30)) == "1h30m"
