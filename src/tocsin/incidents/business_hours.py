"""Business-hours arithmetic: adding and measuring working time in a calendar's own zone, DST-correct. Pure.

A calendar is an IANA zone, weekly working windows in local wall-clock time (Mon-Fri 09:00-17:00) and
holiday dates. Working time is real elapsed time inside those windows: a window 00:00-04:00 on the night
the clocks go forward holds three hours, on the night they go back five. A wall-clock time that does not
exist (inside a spring-forward gap) is read with the offset before the change, i.e. shifted forward by the
gap, the way most calendar software does; periods are never counted twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_ZERO = timedelta(0)


@dataclass(frozen=True, order=True)
class Window:
    """Working time on one weekday (0 = Monday), in minutes after local midnight; `end` may be 1440."""

    weekday: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday {self.weekday} is not 0 (Monday) .. 6 (Sunday)")
        if not 0 <= self.start < self.end <= DAY_MINUTES:
            raise ValueError(
                f"a window runs from {format_clock(self.start)} to a later time up to 24:00, "
                f"not to {format_clock(self.end)}"
            )

    @classmethod
    def parse(cls, day: str, start: str, end: str) -> Window:
        """From ("mon", "09:00", "17:30"); "24:00" ends a window at midnight."""
        key = day.strip().lower()[:3]
        if key not in WEEKDAYS:
            raise ValueError(f"day {day!r} is not one of {', '.join(WEEKDAYS)}")
        return cls(WEEKDAYS.index(key), parse_clock(start), parse_clock(end))

    def as_dict(self) -> dict[str, str]:
        return {
            "day": WEEKDAYS[self.weekday],
            "start": format_clock(self.start),
            "end": format_clock(self.end),
        }


def parse_clock(text: str) -> int:
    """Minutes after midnight of "HH:MM" (00:00 .. 24:00)."""
    m = _CLOCK.match(text.strip())
    minutes = int(m.group(1)) * 60 + int(m.group(2)) if m else -1
    if not 0 <= minutes <= DAY_MINUTES:
        raise ValueError(f"time {text!r} is not HH:MM between 00:00 and 24:00")
    return minutes


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def zone(name: str) -> ZoneInfo:
    """The IANA zone, or ValueError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as Europe/London") from None


@dataclass(frozen=True)
class Calendar:
    """Working windows in a zone, minus holidays (local dates on which no window applies)."""

    zone: ZoneInfo
    windows: tuple[Window, ...]
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.windows:
            raise ValueError("a business calendar needs at least one working window")

    @classmethod
    def build(cls, zone_name: str, windows: Iterable[Window], holidays: Iterable[date] = ()) -> Calendar:
        return cls(zone(zone_name), tuple(sorted(set(windows))), frozenset(holidays))


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


def _at(cal: Calendar, day: date, minute: int) -> datetime:
    """The instant of local wall-clock `minute` on `day` (1440 is the next midnight)."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    return wall.replace(tzinfo=cal.zone).astimezone(UTC)


def _merged(windows: Iterable[Window]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for w in sorted(windows):
        if spans and w.start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], w.end))
        else:
            spans.append((w.start, w.end))
    return spans


def _day_periods(cal: Calendar, day: date) -> list[tuple[datetime, datetime]]:
    if day in cal.holidays:
        return []
    spans = _merged(w for w in cal.windows if w.weekday == day.weekday())
    return [(_at(cal, day, s), _at(cal, day, e)) for s, e in spans]


def _periods(cal: Calendar, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Working periods from `start` on, in order, non-overlapping, the first clipped to begin at `start`.

    Endless: callers stop. Each week has a window and holidays are finite, so time always comes.
    """
    day = start.astimezone(cal.zone).date() - timedelta(days=1)
    cursor = start
    while True:
        for s, e in _day_periods(cal, day):
            s = max(s, cursor)
            if e > s:
                yield s, e
                cursor = e
        day += timedelta(days=1)


def add_business_time(cal: Calendar, start: datetime, duration: timedelta) -> datetime:
    """The earliest instant by which `duration` of working time has passed since `start` (UTC).

    A zero duration is `start` itself; a duration that ends exactly at a window's close is that close.
    """
    start = _aware(start, "start")
    if duration < _ZERO:
        raise ValueError("duration must not be negative")
    if duration == _ZERO:
        return start
    remaining = duration
    for s, e in _periods(cal, start):
        if e - s >= remaining:
            return s + remaining
        remaining -= e - s
    raise AssertionError("unreachable: _periods is endless")


def business_time_between(cal: Calendar, a: datetime, b: datetime) -> timedelta:
    """Working time from `a` to `b`; negative when `b` is before `a`."""
    a, b = _aware(a, "a"), _aware(b, "b")
    if b < a:
        return -business_time_between(cal, b, a)
    total = _ZERO
    for s, e in _periods(cal, a):
        if s >= b:
            break
        total += min(e, b) - s
    return total


def is_business_time(cal: Calendar, at: datetime) -> bool:
    """Whether `at` falls inside a working window (start included, end excluded)."""
    at = _aware(at, "at")
    s, _ = next(_periods(cal, at))
    return s == at


__all__ = [
    "WEEKDAYS",
    "Calendar",
    "Window",
    "add_business_time",
    "business_time_between",
    "format_clock",
    "is_business_time",
    "parse_clock",
    "zone",
]
