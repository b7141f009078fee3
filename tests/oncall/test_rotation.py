"""Rotation math: hand-offs across DST in both directions, restrictions, overrides, layers, and properties."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tocsin.oncall.rotation import (
    NOBODY,
    Answer,
    Layer,
    Override,
    Schedule,
    Shift,
    ShiftUnit,
    Source,
    SourceKind,
    Window,
    on_call_at,
    participants,
    shifts,
    shifts_of,
    to_wall,
    wall_to_utc,
)

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
ALICE, BOB, CAROL, DAVE = 1, 2, 3, 4
WEEKDAYS = frozenset(range(5))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def inside(start: datetime, end: datetime, fraction: float) -> datetime:
    """The instant `fraction` of the way through [start, end), never rounded up onto `end`."""
    return min(start + (end - start) * fraction, end - timedelta(microseconds=1))


def handoffs(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    return [s.start for s in shifts(schedule, start, end)[1:]]


# --- daily and weekly hand-offs keep their wall-clock time across DST ------------------------------------


def test_a_daily_0900_paris_handoff_stays_at_0900_when_clocks_spring_forward() -> None:
    # Europe/Paris springs forward on Sunday 2025-03-30 at 02:00 -> 03:00.
    daily = Schedule((Layer((ALICE, BOB), datetime(2025, 3, 24, 9), PARIS),))
    segments = shifts(daily, local(PARIS, 2025, 3, 29, 9), local(PARIS, 2025, 4, 1, 9))
    assert [to_wall(s.start, PARIS).hour for s in segments] == [9, 9, 9]
    assert [s.duration for s in segments] == [timedelta(hours=23), timedelta(hours=24), timedelta(hours=24)]
    assert [s.user_id for s in segments] == [BOB, ALICE, BOB]
    assert on_call_at(daily, local(PARIS, 2025, 3, 30, 8, 59)).user_id == BOB
    assert on_call_at(daily, local(PARIS, 2025, 3, 30, 9, 0)).user_id == ALICE


def test_a_daily_0900_paris_handoff_stays_at_0900_when_clocks_fall_back() -> None:
    # Europe/Paris falls back on Sunday 2025-10-26 at 03:00 -> 02:00.
    daily = Schedule((Layer((ALICE, BOB), datetime(2025, 10, 20, 9), PARIS),))
    segments = shifts(daily, local(PARIS, 2025, 10, 25, 9), local(PARIS, 2025, 10, 27, 9))
    assert [s.duration for s in segments] == [timedelta(hours=25), timedelta(hours=24)]
    assert segments[1].start == utc(2025, 10, 26, 8)  # 09:00 CET
    assert on_call_at(daily, utc(2025, 10, 26, 7, 30)).user_id == segments[0].user_id  # 08:30 CET


def test_a_weekly_monday_new_york_handoff_keeps_its_wall_clock_time_in_both_directions() -> None:
    # America/New_York springs forward on 2025-03-09 and falls back on 2025-11-02.
    weekly = Schedule((Layer((ALICE, BOB, CAROL), datetime(2025, 1, 6, 10), NEW_YORK, 1, ShiftUnit.weeks),))
    spring = shifts(weekly, local(NEW_YORK, 2025, 3, 3, 10), local(NEW_YORK, 2025, 3, 17, 10))
    assert [s.duration for s in spring] == [timedelta(hours=167), timedelta(hours=168)]
    assert spring[1].start == utc(2025, 3, 10, 14)  # Monday 10:00 EDT
    fall = shifts(weekly, local(NEW_YORK, 2025, 10, 27, 10), local(NEW_YORK, 2025, 11, 10, 10))
    assert [s.duration for s in fall] == [timedelta(hours=169), timedelta(hours=168)]
    assert fall[1].start == utc(2025, 11, 3, 15)  # Monday 10:00 EST
    assert all(to_wall(s.start, NEW_YORK).weekday() == 0 for s in spring + fall)


def test_a_daily_new_york_rotation_runs_23_then_25_hours_across_the_changes() -> None:
    daily = Schedule((Layer((ALICE, BOB), datetime(2025, 1, 1, 18), NEW_YORK),))
    spring = shifts(daily, local(NEW_YORK, 2025, 3, 8, 18), local(NEW_YORK, 2025, 3, 9, 18))
    fall = shifts(daily, local(NEW_YORK, 2025, 11, 1, 18), local(NEW_YORK, 2025, 11, 2, 18))
    assert [s.duration for s in spring + fall] == [timedelta(hours=23), timedelta(hours=25)]


def test_twelve_hour_shifts_are_wall_clock_so_0800_and_2000_stay_put() -> None:
    # Decision: hour-based rotations are wall-clock too; the night shift across a change is 11 or 13 hours.
    twelve = Schedule((Layer((ALICE, BOB), datetime(2025, 3, 1, 8), PARIS, 12, ShiftUnit.hours),))
    spring = shifts(twelve, local(PARIS, 2025, 3, 29, 8), local(PARIS, 2025, 3, 31, 8))
    assert [to_wall(s.start, PARIS).hour for s in spring] == [8, 20, 8, 20]
    assert [s.duration.total_seconds() / 3600 for s in spring] == [12, 11, 12, 12]
    fall = shifts(twelve, local(PARIS, 2025, 10, 25, 20), local(PARIS, 2025, 10, 26, 20))
    assert [s.duration.total_seconds() / 3600 for s in fall] == [13, 12]
    assert [to_wall(s.start, PARIS).hour for s in fall] == [20, 8]


def test_a_handoff_inside_the_skipped_hour_happens_when_the_clocks_jump() -> None:
    at_0230 = Schedule((Layer((ALICE, BOB), datetime(2025, 3, 24, 2, 30), PARIS),))
    assert handoffs(at_0230, utc(2025, 3, 29, 12), utc(2025, 3, 30, 12)) == [
        utc(2025, 3, 30, 1)
    ]  # 03:00 CEST
    assert wall_to_utc(datetime(2025, 3, 30, 2, 30), PARIS) == utc(2025, 3, 30, 1)


def test_a_handoff_in_the_repeated_hour_happens_at_its_first_occurrence() -> None:
    at_0230 = Schedule((Layer((ALICE, BOB), datetime(2025, 10, 20, 2, 30), PARIS),))
    assert handoffs(at_0230, utc(2025, 10, 25, 12), utc(2025, 10, 26, 12)) == [utc(2025, 10, 26, 0, 30)]


def test_hourly_turns_stay_in_order_across_a_two_hour_jump() -> None:
    # Antarctica/Troll jumps from +00 to +02: two one-hour turns vanish, the rotation order does not shift.
    troll = ZoneInfo("Antarctica/Troll")
    hourly = Schedule((Layer((ALICE, BOB, CAROL), datetime(2025, 3, 29, 0), troll, 1, ShiftUnit.hours),))
    segments = shifts(hourly, utc(2025, 3, 29, 22), utc(2025, 3, 30, 3))
    assert all(a.end == b.start and a.start < a.end for a, b in pairwise(segments))
    assert (
        on_call_at(hourly, utc(2025, 3, 30, 1)).user_id == [ALICE, BOB, CAROL][27 % 3]
    )  # 03:00 local = turn 27


# --- layers, restrictions, overrides -----------------------------------------------------------------

BUSINESS_HOURS = (Window(WEEKDAYS, time(9), time(17)),)


def business_over_24x7() -> Schedule:
    always = Layer((ALICE, BOB), datetime(2025, 1, 6, 9), PARIS, 1, ShiftUnit.weeks, name="24x7")
    office = Layer((CAROL,), datetime(2025, 1, 6, 0), PARIS, restrictions=BUSINESS_HOURS, name="office")
    return Schedule((always, office))


def test_a_business_hours_layer_wins_on_weekdays_9_to_17_and_the_24x7_layer_covers_the_rest() -> None:
    schedule = business_over_24x7()
    monday_10 = on_call_at(schedule, local(PARIS, 2025, 3, 31, 10))
    assert monday_10.user_id == CAROL and monday_10.source is not None and monday_10.source.name == "office"
    assert on_call_at(schedule, local(PARIS, 2025, 3, 31, 17)).source == Source(SourceKind.layer, 0, "24x7")
    assert on_call_at(schedule, local(PARIS, 2025, 3, 31, 8, 59)).user_id in (ALICE, BOB)
    assert on_call_at(schedule, local(PARIS, 2025, 4, 5, 10)).user_id in (ALICE, BOB)  # Saturday
    week = shifts(schedule, local(PARIS, 2025, 3, 31, 0), local(PARIS, 2025, 4, 7, 0))
    office = [s for s in week if s.user_id == CAROL]
    assert len(office) == 5
    assert all(to_wall(s.start, PARIS).hour == 9 and to_wall(s.end, PARIS).hour == 17 for s in office)


def test_a_restricted_layer_alone_leaves_gaps_with_nobody_on_call() -> None:
    nights = Layer((DAVE,), datetime(2025, 1, 1), PARIS, restrictions=(Window(start=time(22), end=time(6)),))
    schedule = Schedule((nights,))
    assert on_call_at(schedule, local(PARIS, 2025, 3, 4, 23)).user_id == DAVE
    assert on_call_at(schedule, local(PARIS, 2025, 3, 5, 5, 59)).user_id == DAVE
    assert on_call_at(schedule, local(PARIS, 2025, 3, 5, 6)) == NOBODY
    day = shifts(schedule, local(PARIS, 2025, 3, 5, 0), local(PARIS, 2025, 3, 6, 0))
    assert [(s.user_id, to_wall(s.start, PARIS).hour) for s in day] == [(DAVE, 0), (None, 6), (DAVE, 22)]


def test_overrides_beat_every_layer_and_the_newest_override_wins() -> None:
    base = business_over_24x7()
    first = Override(DAVE, local(PARIS, 2025, 3, 31, 8), local(PARIS, 2025, 3, 31, 12), id=70)
    second = Override(BOB, local(PARIS, 2025, 3, 31, 11), local(PARIS, 2025, 3, 31, 13), id=71)
    schedule = Schedule(base.layers, (first, second))
    assert on_call_at(schedule, local(PARIS, 2025, 3, 31, 10)) == Answer(
        DAVE, Source(SourceKind.override, 70, "override")
    )
    assert on_call_at(schedule, local(PARIS, 2025, 3, 31, 11, 30)).user_id == BOB
    assert on_call_at(schedule, local(PARIS, 2025, 3, 31, 13)).user_id == CAROL
    day = shifts(schedule, local(PARIS, 2025, 3, 31, 8), local(PARIS, 2025, 3, 31, 18))
    assert [(s.user_id, str(s.source)) for s in day] == [
        (DAVE, "override:70"),
        (BOB, "override:71"),
        (CAROL, "layer:1"),
        (day[-1].user_id, "layer:0"),
    ]


def test_a_layer_yields_nobody_before_its_start_and_layers_without_ids_are_named_by_position() -> None:
    later = Schedule((Layer((ALICE,), datetime(2025, 6, 1, 9), PARIS),))
    assert on_call_at(later, local(PARIS, 2025, 6, 1, 8, 59)) == NOBODY
    assert on_call_at(later, local(PARIS, 2025, 6, 1, 9)) == Answer(
        ALICE, Source(SourceKind.layer, 0, "layer 1")
    )


def test_consecutive_turns_of_the_same_person_merge_into_one_shift() -> None:
    solo = Schedule((Layer((ALICE,), datetime(2025, 1, 1, 9), PARIS, id=5, name="solo"),))
    start, end = utc(2025, 3, 1), utc(2025, 3, 20)
    assert shifts(solo, start, end) == [Shift(ALICE, start, end, Source(SourceKind.layer, 5, "solo"))]
    assert shifts_of(solo, BOB, start, end) == []
    assert shifts(solo, end, start) == []


def test_participants_lists_everyone_once_in_first_seen_order() -> None:
    base = business_over_24x7()
    schedule = Schedule(base.layers, (Override(DAVE, utc(2025, 1, 1), utc(2025, 1, 2)),))
    assert participants(schedule) == [ALICE, BOB, CAROL, DAVE]


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="without an offset"):
        Layer((ALICE,), datetime(2025, 1, 1, tzinfo=UTC), PARIS)
    with pytest.raises(ValueError, match="at least 1"):
        Layer((ALICE,), datetime(2025, 1, 1), PARIS, shift_length=0)
    with pytest.raises(ValueError, match="end after"):
        Override(ALICE, utc(2025, 1, 2), utc(2025, 1, 1))
    with pytest.raises(ValueError, match="weekday"):
        Window(days=frozenset())
    with pytest.raises(ValueError, match="timezone-aware"):
        on_call_at(Schedule(), datetime(2025, 1, 1))


def test_windows_round_trip_through_json() -> None:
    window = Window(frozenset({0, 2, 6}), time(22, 30), time(6))
    assert window.to_json() == {"days": ["mon", "wed", "sun"], "start": "22:30", "end": "06:00"}
    assert Window.from_json(window.to_json()) == window


def test_the_answer_never_depends_on_the_wall_clock_of_the_machine() -> None:
    schedule = business_over_24x7()
    at = local(PARIS, 2025, 3, 31, 10)
    answers = set()
    for now in (utc(2020, 1, 1), utc(2025, 3, 31, 8), utc(2031, 7, 4)):
        with time_machine.travel(now, tick=False):
            answers.add(on_call_at(schedule, at))
    assert len(answers) == 1


# --- properties --------------------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "Antarctica/Troll",
    "Asia/Kolkata",
    "Pacific/Apia",
    "America/Sao_Paulo",
]
SPAN_FLOOR, SPAN_CEILING = datetime(2024, 1, 1), datetime(2026, 12, 31)

quarter_hours = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
windows = st.builds(Window, st.frozensets(st.integers(0, 6), min_size=1), quarter_hours, quarter_hours)


@st.composite
def layers(draw: st.DrawFn, zone: ZoneInfo, around: datetime, restricted: bool | None = None) -> Layer:
    unit = draw(st.sampled_from(list(ShiftUnit)))
    length = draw(st.integers(1, {ShiftUnit.hours: 36, ShiftUnit.days: 10, ShiftUnit.weeks: 2}[unit]))
    start = around + draw(st.timedeltas(timedelta(days=-30), timedelta(days=10)))
    if restricted is None:
        restrictions = draw(st.lists(windows, max_size=2))
    else:
        restrictions = draw(st.lists(windows, min_size=1, max_size=2)) if restricted else []
    return Layer(
        tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))),
        start.replace(microsecond=0),
        zone,
        length,
        unit,
        tuple(restrictions),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Schedule, datetime, datetime]:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    start = draw(st.datetimes(SPAN_FLOOR, SPAN_CEILING, timezones=st.just(UTC)))
    end = start + draw(st.timedeltas(timedelta(minutes=1), timedelta(days=21)))
    around = to_wall(start, zone)
    stack = tuple(draw(st.lists(layers(zone, around), min_size=0, max_size=3)))
    overrides = []
    for _ in range(draw(st.integers(0, 3))):
        begin = start + draw(st.timedeltas(timedelta(days=-2), timedelta(days=21)))
        overrides.append(
            Override(
                draw(st.integers(1, 5)),
                begin,
                begin + draw(st.timedeltas(timedelta(minutes=1), timedelta(days=3))),
            )
        )
    return Schedule(stack, tuple(overrides)), start, end


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(scenarios())
def test_shifts_tile_the_span_without_gaps_or_overlaps(scenario: tuple[Schedule, datetime, datetime]) -> None:
    schedule, start, end = scenario
    segments = shifts(schedule, start, end)
    assert segments[0].start == start and segments[-1].end == end
    for a, b in pairwise(segments):
        assert a.end == b.start
        assert (a.user_id, a.source) != (b.user_id, b.source), "neighbours with the same answer must merge"
    assert all(s.start < s.end for s in segments)


@PROPERTY
@given(scenarios(), st.lists(st.floats(0, 1, exclude_max=True), max_size=20))
def test_on_call_at_agrees_with_shifts_everywhere(
    scenario: tuple[Schedule, datetime, datetime], fractions: list[float]
) -> None:
    schedule, start, end = scenario
    segments = shifts(schedule, start, end)
    instants = [inside(start, end, f) for f in fractions]
    instants += [s.start for s in segments] + [s.end - timedelta(microseconds=1) for s in segments]
    for at in instants:
        segment = next(s for s in segments if s.start <= at < s.end)
        assert on_call_at(schedule, at) == Answer(segment.user_id, segment.source), at


@PROPERTY
@given(scenarios(), st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=10))
def test_overrides_always_win_inside_their_span(
    scenario: tuple[Schedule, datetime, datetime], fractions: list[float]
) -> None:
    schedule, _, _ = scenario
    for index, override in enumerate(schedule.overrides):
        for f in fractions:
            at = inside(override.start, override.end, f)
            newest = max(j for j, o in enumerate(schedule.overrides) if o.start <= at < o.end)
            assert newest >= index
            assert on_call_at(schedule, at) == Answer(
                schedule.overrides[newest].user_id, Source(SourceKind.override, newest, "override")
            )


def naive_active(window: Window, wall: datetime) -> bool:
    t, day = wall.time(), wall.weekday()
    if window.end > window.start:
        return day in window.days and window.start <= t < window.end
    return (day in window.days and t >= window.start) or ((day - 1) % 7 in window.days and t < window.end)


@st.composite
def restricted_layers(draw: st.DrawFn) -> tuple[Layer, datetime, datetime]:
    zone = ZoneInfo(draw(st.sampled_from(ZONES)))
    start = draw(st.datetimes(SPAN_FLOOR, SPAN_CEILING, timezones=st.just(UTC)))
    return draw(layers(zone, to_wall(start, zone), restricted=True)), start, start + timedelta(days=8)


@PROPERTY
@given(restricted_layers(), st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=30))
def test_restrictions_never_yield_anyone_outside_their_windows(
    case: tuple[Layer, datetime, datetime], fractions: list[float]
) -> None:
    layer, start, end = case
    schedule = Schedule((layer,))
    segments = shifts(schedule, start, end)
    instants = [inside(start, end, f) for f in fractions] + [s.start for s in segments if s.user_id]
    for at in instants:
        # Away from an offset change, the wall clock reads plainly; across one, the examples above rule.
        day = timedelta(hours=26)
        if (at - day).astimezone(layer.zone).utcoffset() != (at + day).astimezone(layer.zone).utcoffset():
            continue
        within = any(naive_active(w, to_wall(at, layer.zone)) for w in layer.restrictions)
        started = at >= wall_to_utc(layer.start, layer.zone)
        assert (on_call_at(schedule, at).user_id is not None) == (within and started), at
