"""Business-hours arithmetic: adding and measuring working time, across DST changes and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin.incidents.business_hours import (
    Calendar,
    Window,
    add_business_time,
    business_time_between,
    is_business_time,
)

LONDON, NEW_YORK = "Europe/London", "America/New_York"
H = timedelta(hours=1)


def office(zone: str = LONDON, holidays: tuple[date, ...] = ()) -> Calendar:
    """Mon-Fri 09:00-17:00."""
    return Calendar.build(zone, [Window(d, 9 * 60, 17 * 60) for d in range(5)], holidays)


def always(zone: str) -> Calendar:
    return Calendar.build(zone, [Window(d, 0, 24 * 60) for d in range(7)])


def local(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


# --- worked examples -------------------------------------------------------------------------------


def test_time_left_on_friday_afternoon_carries_over_the_weekend() -> None:
    cal = office()
    friday_4pm = local(LONDON, 2024, 6, 7, 16, 0)
    assert add_business_time(cal, friday_4pm, 2 * H) == local(LONDON, 2024, 6, 10, 10, 0)
    assert business_time_between(cal, friday_4pm, local(LONDON, 2024, 6, 10, 10, 0)) == 2 * H


def test_new_york_business_hours_follow_the_clocks_going_forward() -> None:
    # Fri 8 Mar 2024 16:00 EST (21:00 UTC); DST starts Sun 10 Mar; Mon 10:00 EDT is 14:00 UTC.
    cal = office(NEW_YORK)
    start = local(NEW_YORK, 2024, 3, 8, 16, 0)
    assert start == datetime(2024, 3, 8, 21, 0, tzinfo=UTC)
    assert add_business_time(cal, start, 2 * H) == datetime(2024, 3, 11, 14, 0, tzinfo=UTC)


def test_london_business_hours_follow_the_clocks_going_back() -> None:
    # Fri 25 Oct 2024 16:30 BST (15:30 UTC); DST ends Sun 27 Oct; Mon 09:30 GMT is 09:30 UTC.
    cal = office()
    start = local(LONDON, 2024, 10, 25, 16, 30)
    assert add_business_time(cal, start, H) == datetime(2024, 10, 28, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "saturday", "hours"),
    [
        (LONDON, date(2024, 3, 30), 47),  # clocks forward: a weekend an hour short
        (LONDON, date(2024, 10, 26), 49),  # clocks back: an hour long
        (NEW_YORK, date(2024, 3, 9), 47),
        (NEW_YORK, date(2024, 11, 2), 49),
    ],
)
def test_round_the_clock_calendars_measure_real_elapsed_time_over_dst_weekends(
    zone: str, saturday: date, hours: int
) -> None:
    cal = always(zone)
    start = local(zone, saturday.year, saturday.month, saturday.day)
    monday = saturday + timedelta(days=2)
    end = local(zone, monday.year, monday.month, monday.day)
    assert business_time_between(cal, start, end) == hours * H
    assert add_business_time(cal, start, hours * H) == end


def test_a_night_window_on_the_spring_forward_night_holds_three_hours_and_on_the_fall_back_night_five() -> (
    None
):
    nights = Calendar.build(LONDON, [Window(6, 0, 4 * 60)])  # Sundays 00:00-04:00
    spring, autumn = date(2024, 3, 31), date(2024, 10, 27)
    for day, hours in ((spring, 3), (autumn, 5)):
        start = local(LONDON, day.year, day.month, day.day)
        assert business_time_between(nights, start, start + timedelta(hours=12)) == hours * H


def test_holidays_are_skipped() -> None:
    cal = office(holidays=(date(2024, 12, 25), date(2024, 12, 26)))
    christmas_eve_4pm = local(LONDON, 2024, 12, 24, 16, 0)
    assert add_business_time(cal, christmas_eve_4pm, 2 * H) == local(LONDON, 2024, 12, 27, 10, 0)
    whole_holiday = (local(LONDON, 2024, 12, 25), local(LONDON, 2024, 12, 27))
    assert business_time_between(cal, *whole_holiday) == timedelta(0)


def test_overlapping_windows_count_once_and_are_business_time_inside_only() -> None:
    cal = Calendar.build("UTC", [Window(0, 9 * 60, 12 * 60), Window(0, 11 * 60, 13 * 60)])
    monday = datetime(2024, 6, 3, tzinfo=UTC)
    assert business_time_between(cal, monday, monday + timedelta(days=1)) == 4 * H
    assert is_business_time(cal, monday + 9 * H)
    assert not is_business_time(cal, monday + 13 * H), "a window's end is outside it"


def test_nonsense_is_refused_with_what_to_change() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        Calendar.build("Mars/Olympus", [Window(0, 0, 60)])
    with pytest.raises(ValueError, match="at least one working window"):
        Calendar.build("UTC", [])
    with pytest.raises(ValueError, match="to a later time"):
        Window.parse("mon", "17:00", "09:00")
    with pytest.raises(ValueError, match="not one of"):
        Window.parse("funday", "09:00", "17:00")
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(office(), datetime(2024, 1, 1), H)
    with pytest.raises(ValueError, match="negative"):
        add_business_time(office(), datetime(2024, 1, 1, tzinfo=UTC), -H)


# --- properties ------------------------------------------------------------------------------------

ZONES = [LONDON, NEW_YORK, "UTC", "Australia/Lord_Howe", "Asia/Kolkata"]  # Lord Howe shifts by 30 min


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    windows = []
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, 24 * 60 - 15))
        end = draw(st.integers(start + 1, 24 * 60))
        windows.append(Window(draw(st.integers(0, 6)), start, end))
    holidays = draw(st.lists(st.dates(date(2024, 1, 1), date(2025, 12, 31)), max_size=8))
    return Calendar.build(draw(st.sampled_from(ZONES)), windows, holidays)


instants = st.datetimes(datetime(2024, 1, 1), datetime(2025, 6, 30), timezones=st.just(UTC))
durations = st.timedeltas(timedelta(0), timedelta(hours=120))


@settings(max_examples=150, deadline=None)
@given(cal=calendars(), start=instants, duration=durations)
def test_adding_then_measuring_gives_the_duration_back(
    cal: Calendar, start: datetime, duration: timedelta
) -> None:
    end = add_business_time(cal, start, duration)
    assert end >= start
    assert business_time_between(cal, start, end) == duration


@settings(max_examples=150, deadline=None)
@given(cal=calendars(), start=instants, a=durations, b=durations)
def test_adding_is_monotonic(cal: Calendar, start: datetime, a: timedelta, b: timedelta) -> None:
    short, long = sorted((a, b))
    assert add_business_time(cal, start, short) <= add_business_time(cal, start, long)


@settings(max_examples=150, deadline=None)
@given(cal=calendars(), points=st.lists(instants, min_size=3, max_size=3))
def test_measuring_adds_up_over_consecutive_spans_and_never_exceeds_elapsed_time(
    cal: Calendar, points: list[datetime]
) -> None:
    a, b, c = sorted(points)
    ab, bc = business_time_between(cal, a, b), business_time_between(cal, b, c)
    assert ab + bc == business_time_between(cal, a, c)
    assert timedelta(0) <= ab <= b - a
    assert business_time_between(cal, b, a) == -ab


@settings(max_examples=150, deadline=None)
@given(cal=calendars(), start=instants, end=instants)
def test_measuring_then_adding_lands_no_later_than_the_end_with_nothing_between(
    cal: Calendar, start: datetime, end: datetime
) -> None:
    start, end = sorted((start, end))
    landed = add_business_time(cal, start, business_time_between(cal, start, end))
    assert landed <= end
    assert business_time_between(cal, landed, end) == timedelta(0)


@settings(max_examples=150, deadline=None)
@given(
    cal=calendars(),
    holiday=st.dates(date(2024, 1, 2), date(2025, 6, 29)),
    points=st.lists(instants, min_size=2, max_size=2),
)
def test_a_holiday_contributes_nothing(cal: Calendar, holiday: date, points: list[datetime]) -> None:
    off = Calendar(cal.zone, cal.windows, cal.holidays | {holiday})
    day_start = datetime(holiday.year, holiday.month, holiday.day, tzinfo=cal.zone)
    assert business_time_between(off, day_start, day_start + timedelta(days=1)) == timedelta(0)
    a, b = sorted(points)
    assert business_time_between(off, a, b) <= business_time_between(cal, a, b)


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), a=instants, b=instants)
def test_a_round_the_clock_calendar_is_calendar_time(zone: str, a: datetime, b: datetime) -> None:
    assert business_time_between(always(zone), a, b) == b - a
