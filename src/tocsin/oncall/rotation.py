"""Rotation math: who a schedule puts on call at an instant, and the shifts it yields over a span. Pure.

The conventions every caller relies on:

* **Layers rotate on the wall clock of their IANA zone, for every unit (hours, days, weeks).** Hand-off k is
  at `start + k * length` read on the zone's clock. A daily 09:00 hand-off stays at 09:00 across DST (that
  shift lasts 23 or 25 hours), a weekly Monday 10:00 one stays on Monday 10:00 (167 or 169 hours), and a
  12-hour 08:00/20:00 rotation keeps its posted times (the night shift across a change lasts 11 or 13 hours).
  Elapsed-time hours were rejected: they drift an hour away from the posted hand-off times at every change,
  twice a year.
* **A wall-clock time the clocks skip** (spring forward) happens at the instant of the jump; **one that occurs
  twice** (fall back) happens at its first occurrence. Hand-offs therefore stay in order for any shift length,
  and a turn lying wholly inside a skipped hour is empty without disturbing the rotation order.
* **A layer takes effect at its start**; before it, the layer yields nobody.
* **Restriction windows** are wall-clock intervals on the listed weekdays (the day the window opens); `end <=
  start` runs past midnight into the next day and `end == start` is 24 hours. Outside every window the layer
  yields nobody; the rotation still turns at its hand-offs (restrictions mask a layer, they do not pause it).
* **Precedence**: overrides first (the last one listed wins where they overlap), then layers from last to
  first; the first that yields somebody decides.
* Spans are half-open `[start, end)`, instants are timezone-aware, and results are in UTC. Nothing here reads
  the clock: callers pass `at` and spans in.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from math import ceil
from typing import Any
from zoneinfo import ZoneInfo


class ShiftUnit(StrEnum):
    hours = "hours"
    days = "days"
    weeks = "weeks"


class Weekday(StrEnum):
    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"
    sat = "sat"
    sun = "sun"

    @property
    def number(self) -> int:
        """Monday is 0, as in `date.weekday()`."""
        return list(Weekday).index(self)


class SourceKind(StrEnum):
    layer = "layer"
    override = "override"


_UNIT_HOURS = {ShiftUnit.hours: 1, ShiftUnit.days: 24, ShiftUnit.weeks: 24 * 7}


@dataclass(frozen=True)
class Window:
    """A wall-clock window opening at `start` on each of `days` (0 = Monday) and closing at `end`."""

    days: frozenset[int] = frozenset(range(7))
    start: time = time(0)
    end: time = time(0)

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(7)):
            raise ValueError("a restriction window needs at least one weekday, numbered 0 (Monday) to 6")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("restriction times are wall-clock times in the layer's zone: give no offset")

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        """The wall-clock start and end of the window opening on `day` (whether or not `day` is listed)."""
        closes_on = day if self.end > self.start else day + timedelta(days=1)
        return datetime.combine(day, self.start), datetime.combine(closes_on, self.end)

    def to_json(self) -> dict[str, Any]:
        weekdays = list(Weekday)
        return {
            "days": [weekdays[d].value for d in sorted(self.days)],
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Window:
        return cls(
            days=frozenset(Weekday(d).number for d in data["days"]),
            start=time.fromisoformat(data["start"]),
            end=time.fromisoformat(data["end"]),
        )


@dataclass(frozen=True)
class Layer:
    """A rotation of `participants` (user ids, in order) handing off every `shift_length` `unit`s from
    `start`, a naive wall-clock time in `zone`."""

    participants: tuple[int, ...]
    start: datetime
    zone: ZoneInfo
    shift_length: int = 1
    unit: ShiftUnit = ShiftUnit.days
    restrictions: tuple[Window, ...] = ()
    name: str = ""
    id: int | None = None

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None:
            raise ValueError("a layer's start is a wall-clock time in its zone: give it without an offset")
        if self.shift_length < 1:
            raise ValueError("shift_length must be at least 1")

    @property
    def turn(self) -> timedelta:
        """The wall-clock length of one turn."""
        return timedelta(hours=self.shift_length * _UNIT_HOURS[self.unit])


@dataclass(frozen=True)
class Override:
    """`user_id` covers the whole schedule over [start, end), ahead of every layer."""

    user_id: int
    start: datetime
    end: datetime
    id: int | None = None

    def __post_init__(self) -> None:
        _require_aware(self.start, self.end)
        if self.end <= self.start:
            raise ValueError("an override must end after it starts")


@dataclass(frozen=True)
class Schedule:
    """Layers in precedence order (later ones win) and overrides (later ones win)."""

    layers: tuple[Layer, ...] = ()
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class Source:
    """What put someone on call: a layer or an override, named by its id (or its index when it has none)."""

    kind: SourceKind
    key: int
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


@dataclass(frozen=True)
class Answer:
    user_id: int | None
    source: Source | None


@dataclass(frozen=True)
class Shift:
    """A stretch of time over which one person (or nobody: `user_id` None) is on call, from one source."""

    user_id: int | None
    start: datetime
    end: datetime
    source: Source | None

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


NOBODY = Answer(None, None)


def _require_aware(*instants: datetime) -> None:
    for instant in instants:
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError("instants must be timezone-aware (give an offset such as Z or +02:00)")


def to_wall(at: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock reading of `zone` at the instant `at`."""
    return at.astimezone(zone).replace(tzinfo=None)


def wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant at which `zone`'s clock reaches `wall` (see the module docstring for skipped and
    repeated times). Monotonic: a later wall-clock time never maps to an earlier instant."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if to_wall(first, zone) == wall:
        return first
    # `wall` lies in a gap: fold=1 reads it with the later offset (an instant before the jump), fold=0 with
    # the earlier one (after it). Transitions fall on whole seconds, so search for the jump second by second.
    lo = int(wall.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    hi = ceil(first.timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if to_wall(datetime.fromtimestamp(mid, UTC), zone) >= wall:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _handoff(layer: Layer, k: int) -> datetime:
    return wall_to_utc(layer.start + k * layer.turn, layer.zone)


def _turn_at(layer: Layer, at: datetime) -> int | None:
    """The index of the turn running at `at`, or None before the layer starts."""
    if at < _handoff(layer, 0):
        return None
    k = max(0, (to_wall(at, layer.zone) - layer.start) // layer.turn)
    while k > 0 and _handoff(layer, k) > at:
        k -= 1
    while _handoff(layer, k + 1) <= at:
        k += 1
    return k


def _window_spans(layer: Layer, first_day: date, last_day: date) -> list[tuple[datetime, datetime]]:
    """The layer's windows opening between two local dates (inclusive), as sorted, merged UTC spans."""
    spans: list[tuple[datetime, datetime]] = []
    day = first_day
    while day <= last_day:
        for window in layer.restrictions:
            if day.weekday() in window.days:
                begin, finish = window.bounds(day)
                start, end = wall_to_utc(begin, layer.zone), wall_to_utc(finish, layer.zone)
                if start < end:
                    spans.append((start, end))
        day += timedelta(days=1)
    spans.sort()
    merged: list[tuple[datetime, datetime]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _days_around(layer: Layer, start: datetime, end: datetime) -> tuple[date, date]:
    # Two days of margin: a window opening the day before reaches into today, and zones have moved whole days.
    return (
        to_wall(start, layer.zone).date() - timedelta(days=2),
        to_wall(end, layer.zone).date() + timedelta(days=1),
    )


def _in_windows(layer: Layer, at: datetime) -> bool:
    return any(s <= at < e for s, e in _window_spans(layer, *_days_around(layer, at, at)))


def _layer_user_at(layer: Layer, at: datetime) -> int | None:
    if not layer.participants:
        return None
    k = _turn_at(layer, at)
    if k is None or (layer.restrictions and not _in_windows(layer, at)):
        return None
    return layer.participants[k % len(layer.participants)]


def _layer_source(layer: Layer, index: int) -> Source:
    return Source(
        SourceKind.layer, layer.id if layer.id is not None else index, layer.name or f"layer {index + 1}"
    )


def _override_source(override: Override, index: int) -> Source:
    return Source(SourceKind.override, override.id if override.id is not None else index, "override")


def on_call_at(schedule: Schedule, at: datetime) -> Answer:
    """Who the schedule puts on call at the instant `at`, and which override or layer put them there."""
    _require_aware(at)
    at = at.astimezone(UTC)
    for j in range(len(schedule.overrides) - 1, -1, -1):
        override = schedule.overrides[j]
        if override.start <= at < override.end:
            return Answer(override.user_id, _override_source(override, j))
    for i in range(len(schedule.layers) - 1, -1, -1):
        user = _layer_user_at(schedule.layers[i], at)
        if user is not None:
            return Answer(user, _layer_source(schedule.layers[i], i))
    return NOBODY


@dataclass(frozen=True)
class _Piece:
    start: datetime
    end: datetime
    user_id: int


def _clip(pieces: list[_Piece], spans: list[tuple[datetime, datetime]]) -> list[_Piece]:
    """Intersect sorted, disjoint pieces with sorted, disjoint spans."""
    out: list[_Piece] = []
    i = j = 0
    while i < len(pieces) and j < len(spans):
        start, end = max(pieces[i].start, spans[j][0]), min(pieces[i].end, spans[j][1])
        if start < end:
            out.append(_Piece(start, end, pieces[i].user_id))
        if pieces[i].end <= spans[j][1]:
            i += 1
        else:
            j += 1
    return out


def _layer_pieces(layer: Layer, start: datetime, end: datetime) -> list[_Piece]:
    """Where, within [start, end), the layer yields somebody; sorted and disjoint."""
    if not layer.participants:
        return []
    k = _turn_at(layer, start) or 0
    pieces: list[_Piece] = []
    begin = _handoff(layer, k)
    while begin < end:
        finish = _handoff(layer, k + 1)
        lo, hi = max(begin, start), min(finish, end)
        if lo < hi:
            pieces.append(_Piece(lo, hi, layer.participants[k % len(layer.participants)]))
        k, begin = k + 1, finish
    if layer.restrictions:
        pieces = _clip(pieces, _window_spans(layer, *_days_around(layer, start, end)))
    return pieces


def shifts(schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """The final on-call segments tiling [start, end): consecutive, non-overlapping, each a maximal stretch of
    one person from one source; stretches with nobody on call have `user_id` None."""
    _require_aware(start, end)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return []
    layers = [_layer_pieces(layer, start, end) for layer in schedule.layers]
    layer_starts = [[p.start for p in pieces] for pieces in layers]
    cuts = {start, end}
    for pieces in layers:
        cuts.update(edge for p in pieces for edge in (p.start, p.end))
    for override in schedule.overrides:
        cuts.update(edge for edge in (override.start, override.end) if start < edge < end)

    def winner(at: datetime) -> Answer:
        for j in range(len(schedule.overrides) - 1, -1, -1):
            override = schedule.overrides[j]
            if override.start <= at < override.end:
                return Answer(override.user_id, _override_source(override, j))
        for i in range(len(layers) - 1, -1, -1):
            n = bisect_right(layer_starts[i], at) - 1
            if n >= 0 and at < layers[i][n].end:
                return Answer(layers[i][n].user_id, _layer_source(schedule.layers[i], i))
        return NOBODY

    out: list[Shift] = []
    for a, b in pairwise(sorted(cuts)):
        answer = winner(a)
        if out and out[-1].user_id == answer.user_id and out[-1].source == answer.source:
            out[-1] = replace(out[-1], end=b)
        else:
            out.append(Shift(answer.user_id, a, b, answer.source))
    return out


def shifts_of(schedule: Schedule, user_id: int, start: datetime, end: datetime) -> list[Shift]:
    """The segments of `shifts()` in which `user_id` is on call."""
    return [s for s in shifts(schedule, start, end) if s.user_id == user_id]


def participants(schedule: Schedule) -> list[int]:
    """Everyone a layer rotates through or an override names, in first-seen order."""
    seen: dict[int, None] = {}
    for layer in schedule.layers:
        seen.update(dict.fromkeys(layer.participants))
    seen.update(dict.fromkeys(o.user_id for o in schedule.overrides))
    return list(seen)


__all__: Sequence[str] = [
    "NOBODY",
    "Answer",
    "Layer",
    "Override",
    "Schedule",
    "Shift",
    "ShiftUnit",
    "Source",
    "SourceKind",
    "Weekday",
    "Window",
    "on_call_at",
    "participants",
    "shifts",
    "shifts_of",
    "to_wall",
    "wall_to_utc",
]
