"""Who is on call: at an instant, now on every schedule, shift by shift, and whom a schedule can page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth import service as auth
from tocsin.auth.permissions import Actor
from tocsin.db import utcnow
from tocsin.errors import Invalid
from tocsin.oncall import access, rotation
from tocsin.oncall.models import Schedule as ScheduleRow
from tocsin.oncall.rotation import Answer, Shift, Source
from tocsin.oncall.schedules import load_schedule, overrides_between, to_rotation

MAX_SHIFT_SPAN = timedelta(days=90)
# How far ahead `OnCall.until` looks for the end of the current stretch.
LOOKAHEAD = timedelta(days=31)
_INSTANT = timedelta(microseconds=1)


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    email: str


@dataclass(frozen=True)
class OnCall:
    """Who a schedule puts on call at `at`, what put them there, and until when (None: beyond LOOKAHEAD)."""

    schedule_id: int
    schedule_name: str
    at: datetime
    user: Person | None
    source: Source | None
    until: datetime | None


def _aware(**instants: datetime) -> None:
    for name, value in instants.items():
        if value.tzinfo is None or value.utcoffset() is None:
            raise Invalid(f"{name} needs a UTC offset (e.g. 2025-03-03T09:00:00Z)")


async def who_is_on_call(*, session: AsyncSession, schedule_id: int, at: datetime) -> Answer:
    """Who `schedule_id` puts on call at `at` (user None: nobody), for escalation; no permission check."""
    _aware(at=at)
    schedule = await load_schedule(session=session, schedule_id=schedule_id)
    overrides = await overrides_between(
        session=session, schedule_ids=[schedule_id], start=at, end=at + _INSTANT
    )
    return rotation.on_call_at(to_rotation(schedule, overrides[schedule_id]), at)


async def _describe(session: AsyncSession, schedules: Sequence[ScheduleRow], at: datetime) -> list[OnCall]:
    horizon = at + LOOKAHEAD
    overrides = await overrides_between(
        session=session, schedule_ids=[s.id for s in schedules], start=at, end=horizon
    )
    people: dict[int, Person] = {}
    out: list[OnCall] = []
    for schedule in schedules:
        first = rotation.shifts(to_rotation(schedule, overrides[schedule.id]), at, horizon)[0]
        person = None
        if first.user_id is not None:
            if first.user_id not in people:
                user = await auth.get_user(session=session, user_id=first.user_id)
                people[user.id] = Person(user.id, user.name, user.email)
            person = people[first.user_id]
        out.append(
            OnCall(
                schedule.id,
                schedule.name,
                at,
                person,
                first.source,
                first.end if first.end < horizon else None,
            )
        )
    return out


async def on_call(
    *, session: AsyncSession, actor: Actor, schedule_id: int, at: datetime | None = None
) -> OnCall:
    """Who is on call on one schedule at `at` (default now), with their name and until when."""
    access.require_read(actor)
    at = at or utcnow()
    _aware(at=at)
    return (await _describe(session, [await load_schedule(session=session, schedule_id=schedule_id)], at))[0]


async def on_call_now(*, session: AsyncSession, actor: Actor, at: datetime | None = None) -> list[OnCall]:
    """Everyone on call at `at` (default now), one entry per schedule by name, nobody included."""
    access.require_read(actor)
    at = at or utcnow()
    _aware(at=at)
    schedules = list(await session.scalars(select(ScheduleRow).order_by(ScheduleRow.name)))
    return await _describe(session, schedules, at)


async def schedule_shifts(
    *, session: AsyncSession, schedule: ScheduleRow, start: datetime, end: datetime
) -> list[Shift]:
    """The segments tiling [start, end) for a loaded schedule; no cap and no permission check (feeds)."""
    overrides = await overrides_between(session=session, schedule_ids=[schedule.id], start=start, end=end)
    return rotation.shifts(to_rotation(schedule, overrides[schedule.id]), start, end)


async def shifts(
    *, session: AsyncSession, actor: Actor, schedule_id: int, start: datetime, end: datetime
) -> list[Shift]:
    """Who is on call over [start, end), as consecutive segments (user None where nobody is); at most
    MAX_SHIFT_SPAN long."""
    access.require_read(actor)
    _aware(start=start, end=end)
    if end <= start:
        raise Invalid("end must be after start")
    if end - start > MAX_SHIFT_SPAN:
        raise Invalid(f"ask for at most {MAX_SHIFT_SPAN.days} days of shifts at a time; narrow start..end")
    schedule = await load_schedule(session=session, schedule_id=schedule_id)
    return await schedule_shifts(session=session, schedule=schedule, start=start, end=end)


async def participants_of(
    *, session: AsyncSession, schedule_id: int, at: datetime | None = None
) -> list[int]:
    """Every user the schedule can put on call from `at` (default now): its layers' participants and the users
    of overrides not yet over, in first-seen order. For checks such as "has a way to be notified"."""
    at = at or utcnow()
    schedule = await load_schedule(session=session, schedule_id=schedule_id)
    overrides = await overrides_between(
        session=session, schedule_ids=[schedule_id], start=at, end=datetime.max.replace(tzinfo=UTC)
    )
    return rotation.participants(to_rotation(schedule, overrides[schedule_id]))
