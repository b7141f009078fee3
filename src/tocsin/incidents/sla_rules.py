"""SLA arithmetic and policy choice: due times, warning points and elapsed time of a clock. Pure.

A clock measures either calendar time (no business calendar) or working time in a business calendar. Its
elapsed time is the measure from its start to now (or to the start of an open pause) minus the measure of
its closed pauses, so a pause over a weekend costs nothing in business time, and a re-target or a change of
calendar is computed exactly from the start rather than patched onto a stored due time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from tocsin.incidents.business_hours import Calendar, add_business_time, business_time_between

_ZERO = timedelta(0)
Pause = tuple[datetime, datetime]


def advance(calendar: Calendar | None, start: datetime, duration: timedelta) -> datetime:
    """`start` plus `duration` of calendar time, or of working time in `calendar`."""
    return start + duration if calendar is None else add_business_time(calendar, start, duration)


def measure(calendar: Calendar | None, a: datetime, b: datetime) -> timedelta:
    """Calendar time from `a` to `b`, or working time in `calendar`."""
    return b - a if calendar is None else business_time_between(calendar, a, b)


@dataclass(frozen=True)
class Span:
    """The timing of one clock: when it started, its target, its pauses, and the measure it uses."""

    started_at: datetime
    target: timedelta
    calendar: Calendar | None = None
    pauses: tuple[Pause, ...] = ()
    paused_at: datetime | None = None  # an open pause

    def paused_total(self, now: datetime | None = None) -> timedelta:
        """The measure of the closed pauses, plus the open one up to `now` when given."""
        total = sum((measure(self.calendar, s, e) for s, e in self.pauses), _ZERO)
        if now is not None and self.paused_at is not None and now > self.paused_at:
            total += measure(self.calendar, self.paused_at, now)
        return total

    def point(self, share: timedelta) -> datetime | None:
        """When `share` of the target has elapsed, if the clock keeps running (None while paused)."""
        if self.paused_at is not None:
            return None
        return advance(self.calendar, self.started_at, share + self.paused_total())

    def due_at(self) -> datetime | None:
        return self.point(self.target)

    def warn_at(self, percent: int | None) -> datetime | None:
        return None if percent is None else self.point(self.target * percent // 100)

    def elapsed(self, now: datetime) -> timedelta:
        """Time counted against the target by `now` (frozen while paused)."""
        end = now if self.paused_at is None else min(now, self.paused_at)
        return measure(self.calendar, self.started_at, end) - self.paused_total()

    def remaining(self, now: datetime) -> timedelta:
        """Target minus elapsed: negative once overdue."""
        return self.target - self.elapsed(now)


def describe_target(minutes: int, *, business: bool = False) -> str:
    """ "15 min", "4 h", "90 min", "8 h business time"."""
    text = f"{minutes // 60} h" if minutes >= 60 and minutes % 60 == 0 else f"{minutes} min"
    return text + (" business time" if business else "")


class PolicyLike(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def type_key(self) -> str | None: ...
    @property
    def service_id(self) -> int | None: ...
    @property
    def response_minutes(self) -> int | None: ...
    @property
    def resolution_minutes(self) -> int | None: ...
    @property
    def active(self) -> bool: ...


P = TypeVar("P", bound=PolicyLike)


def specificity(policy: PolicyLike) -> int:
    """A service narrows more than a type; both together most."""
    return (2 if policy.service_id is not None else 0) + (1 if policy.type_key is not None else 0)


def applies(policy: PolicyLike, *, priority: int, type_key: str, service_ids: Iterable[int]) -> bool:
    return (
        policy.active
        and policy.priority == priority
        and policy.type_key in (None, type_key)
        and (policy.service_id is None or policy.service_id in set(service_ids))
    )


def choose(policies: Iterable[P], *, priority: int, type_key: str, service_ids: Sequence[int]) -> P | None:
    """The policy for an incident: the most specific that applies; among equals the strictest (shortest
    resolution, then response target), then the oldest."""
    big = 10**9
    candidates = [
        p for p in policies if applies(p, priority=priority, type_key=type_key, service_ids=service_ids)
    ]
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda p: (
            -specificity(p),
            p.resolution_minutes if p.resolution_minutes is not None else big,
            p.response_minutes if p.response_minutes is not None else big,
            p.id,
        ),
    )


__all__ = ["Pause", "PolicyLike", "Span", "advance", "applies", "choose", "describe_target", "measure"]
