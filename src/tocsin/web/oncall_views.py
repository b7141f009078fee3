"""What the on-call pages show: who is on call now, a schedule's shifts laid out as a week or a month.

`calendar` is pure (shifts in, days out) so the week and month views are tested without a database; the
page loaders gather the rest from the on-call and auth services.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth import service as auth
from tocsin.auth.models import Team, User
from tocsin.auth.permissions import Actor
from tocsin.errors import Invalid
from tocsin.oncall import service as oncall
from tocsin.oncall.models import EscalationPolicy, Override, TargetKind
from tocsin.oncall.models import Schedule as ScheduleRow
from tocsin.oncall.rotation import Shift, SourceKind
from tocsin.oncall.service import StepSpec, Target


class View(StrEnum):
    week = "week"
    month = "month"


@dataclass(frozen=True)
class Segment:
    """Part of a shift within one day, in the schedule's zone."""

    user_id: int | None
    start: datetime
    end: datetime
    override: bool


@dataclass(frozen=True)
class Day:
    day: date
    segments: list[Segment]
    in_month: bool
    today: bool


def span(view: View, anchor: date) -> tuple[date, date]:
    """The first day shown and the day after the last: a Monday-to-Sunday week, or the weeks of a month."""
    if view == View.week:
        first = anchor - timedelta(days=anchor.weekday())
        return first, first + timedelta(days=7)
    month_start = anchor.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    first = month_start - timedelta(days=month_start.weekday())
    last = next_month + timedelta(days=(7 - next_month.weekday()) % 7)
    return first, last


def step(view: View, anchor: date, forward: bool) -> date:
    """The anchor of the next (or previous) week or month."""
    if view == View.week:
        return anchor + timedelta(days=7 if forward else -7)
    month_start = anchor.replace(day=1)
    if forward:
        return (month_start + timedelta(days=32)).replace(day=1)
    return (month_start - timedelta(days=1)).replace(day=1)


def calendar(
    shifts: list[Shift], zone: ZoneInfo, first: date, end: date, *, month: int | None, today: date
) -> list[Day]:
    """Each day from `first` up to `end` with the pieces of shifts falling on it (local wall-clock times)."""
    days = []
    current = first
    while current < end:
        day_start = datetime.combine(current, time(0), zone)
        day_end = datetime.combine(current + timedelta(days=1), time(0), zone)
        segments = [
            Segment(
                s.user_id,
                max(s.start, day_start).astimezone(zone),
                min(s.end, day_end).astimezone(zone),
                s.source is not None and s.source.kind == SourceKind.override,
            )
            for s in shifts
            if s.start < day_end and s.end > day_start
        ]
        days.append(Day(current, segments, month is None or current.month == month, current == today))
        current += timedelta(days=1)
    return days


@dataclass(frozen=True)
class SchedulePage:
    schedule: ScheduleRow
    zone: ZoneInfo
    days: list[Day]
    overrides: list[Override]
    users: dict[int, User]
    teams: dict[int, Team]


async def schedule_page(
    *, session: AsyncSession, actor: Actor, schedule_id: int, view: View, anchor: date, now: datetime
) -> SchedulePage:
    schedule = await oncall.get_schedule(session=session, actor=actor, schedule_id=schedule_id)
    zone = ZoneInfo(schedule.time_zone)
    first, end = span(view, anchor)
    start_at = datetime.combine(first, time(0), zone).astimezone(UTC)
    end_at = datetime.combine(end, time(0), zone).astimezone(UTC)
    shifts = await oncall.shifts(
        session=session, actor=actor, schedule_id=schedule_id, start=start_at, end=end_at
    )
    month = anchor.month if view == View.month else None
    days = calendar(shifts, zone, first, end, month=month, today=now.astimezone(zone).date())
    overrides = await oncall.list_overrides(session=session, actor=actor, schedule_id=schedule_id)
    users = {u.id: u for u in await auth.list_users(session=session)}
    teams = {t.id: t for t in await auth.list_teams(session=session)}
    return SchedulePage(schedule, zone, days, overrides, users, teams)


@dataclass(frozen=True)
class Overview:
    now: list[oncall.OnCall]
    schedules: list[ScheduleRow]
    policies: list[EscalationPolicy]
    teams: dict[int, Team]
    users: dict[int, User]


async def overview(*, session: AsyncSession, actor: Actor) -> Overview:
    """Who is on call now on every schedule, and the schedules and escalation policies."""
    return Overview(
        now=await oncall.on_call_now(session=session, actor=actor),
        schedules=await oncall.list_schedules(session=session, actor=actor),
        policies=await oncall.list_policies(session=session, actor=actor),
        teams={t.id: t for t in await auth.list_teams(session=session)},
        users={u.id: u for u in await auth.list_users(session=session)},
    )


def local_instant(text: str, zone: ZoneInfo, what: str) -> datetime:
    """A `datetime-local` form value (wall-clock time in the schedule's zone) as an aware instant."""
    try:
        wall = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{what}: {text!r} is not a date and time like 2025-03-03T09:00") from None
    if wall.tzinfo is not None:
        return wall
    return wall.replace(tzinfo=zone)


async def add_override(
    *,
    session: AsyncSession,
    actor: Actor,
    schedule_id: int,
    user_id: int | None,
    starts: str,
    ends: str,
    reason: str,
) -> Override:
    """An override whose times were typed as wall-clock times in the schedule's zone."""
    schedule = await oncall.get_schedule(session=session, actor=actor, schedule_id=schedule_id)
    zone = ZoneInfo(schedule.time_zone)
    return await oncall.create_override(
        session=session,
        actor=actor,
        schedule_id=schedule_id,
        user_id=user_id,
        starts_at=local_instant(starts, zone, "starts"),
        ends_at=local_instant(ends, zone, "ends"),
        reason=reason,
    )


def steps_of(policy: EscalationPolicy) -> list[StepSpec]:
    return [
        StepSpec(s.delay_minutes, [Target(TargetKind(t.kind), t.target_id) for t in s.targets])
        for s in policy.steps
    ]


def parse_target(text: str) -> Target:
    """A target from a select value like "schedule:3", "user:7" or "team:2"."""
    kind, _, raw = text.partition(":")
    if kind not in set(TargetKind) or not raw.isdigit() or len(raw) > 18:
        raise Invalid(f"target: {text!r} is not a user, schedule or team")
    return Target(TargetKind(kind), int(raw))


async def edit_steps(
    *,
    session: AsyncSession,
    actor: Actor,
    policy_id: int,
    add: StepSpec | None = None,
    remove: int | None = None,
) -> EscalationPolicy:
    """Add a step at the end of a policy, or remove the step at index `remove`."""
    policy = await oncall.get_policy(session=session, actor=actor, policy_id=policy_id)
    steps = steps_of(policy)
    if remove is not None:
        if not 0 <= remove < len(steps):
            raise Invalid(f"the policy has no step {remove + 1}")
        del steps[remove]
    if add is not None:
        steps.append(add)
    return await oncall.update_policy(session=session, actor=actor, policy_id=policy_id, steps=steps)
