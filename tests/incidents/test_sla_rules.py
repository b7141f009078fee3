"""SLA arithmetic and policy choice, as pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin.incidents.business_hours import Calendar, Window
from tocsin.incidents.sla_rules import Span, choose, describe_target

T0 = datetime(2024, 6, 7, 15, 0, tzinfo=UTC)  # a Friday
M = timedelta(minutes=1)


@dataclass(frozen=True)
class P:
    id: int
    priority: int = 1
    type_key: str | None = None
    service_id: int | None = None
    response_minutes: int | None = 15
    resolution_minutes: int | None = 60
    active: bool = True


def test_the_most_specific_policy_wins_service_over_type_over_priority_alone() -> None:
    generic, by_type, by_service = P(1), P(2, type_key="security"), P(3, service_id=7)
    both = P(4, type_key="security", service_id=7)
    policies = [generic, by_type, by_service, both]

    def pick(type_key: str, services: list[int]) -> P | None:
        return choose(policies, priority=1, type_key=type_key, service_ids=services)

    assert pick("it_service", []) == generic
    assert pick("security", []) == by_type
    assert pick("it_service", [7]) == by_service
    assert pick("security", [3, 7]) == both


def test_inactive_and_other_priority_policies_never_apply_and_equals_go_to_the_strictest() -> None:
    policies = [
        P(1, active=False),
        P(2, priority=2),
        P(3, service_id=1, resolution_minutes=120),
        P(4, service_id=2),
    ]
    assert choose(policies, priority=1, type_key="it_service", service_ids=[]) is None
    assert choose(policies, priority=1, type_key="it_service", service_ids=[1, 2]) == P(4, service_id=2)


def test_targets_read_like_people_say_them() -> None:
    assert [describe_target(m) for m in (15, 60, 90, 240)] == ["15 min", "1 h", "90 min", "4 h"]
    assert describe_target(480, business=True) == "8 h business time"


def test_a_pause_moves_the_due_time_by_its_length_in_calendar_time() -> None:
    span = Span(T0, 60 * M, pauses=((T0 + 10 * M, T0 + 40 * M),))
    assert span.due_at() == T0 + 90 * M
    assert span.warn_at(75) == T0 + 75 * M
    assert span.elapsed(T0 + 50 * M) == 20 * M
    paused = Span(T0, 60 * M, paused_at=T0 + 10 * M)
    assert paused.due_at() is None
    assert paused.remaining(T0 + 5 * 60 * M) == 50 * M, "time stands still while paused"


def test_a_pause_over_a_weekend_costs_nothing_in_business_time() -> None:
    office = Calendar.build("UTC", [Window(d, 9 * 60, 17 * 60) for d in range(5)])
    monday_9 = T0 + timedelta(days=2, hours=18)
    plain = Span(T0, 240 * M, calendar=office)
    weekend = Span(T0, 240 * M, calendar=office, pauses=((T0 + 2 * 60 * M, monday_9),))
    assert plain.due_at() == monday_9 + 2 * 60 * M
    assert weekend.due_at() == plain.due_at()


@settings(max_examples=100, deadline=None)
@given(
    target=st.integers(1, 600),
    pauses=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), max_size=4),
    percent=st.integers(1, 99),
)
def test_warning_comes_before_the_due_time_and_both_shift_by_the_pauses(
    target: int, pauses: list[tuple[int, int]], percent: int
) -> None:
    at, closed = T0, []
    for gap, length in pauses:
        start = at + gap * M
        closed.append((start, start + length * M))
        at = start + length * M
    span = Span(T0, target * M, pauses=tuple(closed))
    paused = sum((e - s for s, e in closed), timedelta(0))
    due, warn = span.due_at(), span.warn_at(percent)
    assert due == T0 + target * M + paused
    assert warn is not None and due is not None and warn <= due
    assert span.remaining(due) == timedelta(0)
