"""Overrides: someone covers a schedule over a span, ahead of every layer; past overrides are history."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit import service as audit
from tocsin.auth.permissions import Actor
from tocsin.db import utcnow
from tocsin.errors import Conflict, Invalid, NotFound
from tocsin.oncall import access, checks
from tocsin.oncall.models import Override
from tocsin.oncall.schedules import load_schedule, overrides_between


def override_view(o: Override) -> dict[str, object]:
    return {
        "schedule_id": o.schedule_id,
        "user_id": o.user_id,
        "starts_at": o.starts_at,
        "ends_at": o.ends_at,
        "reason": o.reason,
    }


async def create_override(
    *,
    session: AsyncSession,
    actor: Actor,
    schedule_id: int,
    starts_at: datetime,
    ends_at: datetime,
    user_id: int | None = None,
    reason: str = "",
) -> Override:
    """Put `user_id` (default: the caller) on call over [starts_at, ends_at), ahead of every layer."""
    schedule = await load_schedule(session=session, schedule_id=schedule_id)
    who = user_id if user_id is not None else actor.user_id
    if who is None:
        raise Invalid("user_id is required when the system creates an override")
    await access.require_override(session=session, actor=actor, team_id=schedule.team_id, user_id=who)
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise Invalid("starts_at and ends_at need a UTC offset (e.g. 2025-03-03T09:00:00+01:00)")
    if ends_at <= starts_at:
        raise Invalid("ends_at must be after starts_at")
    if ends_at <= utcnow():
        raise Invalid("this override would already be over; past on-call history is not rewritten")
    await checks.user(session, "user_id", who)
    override = Override(
        schedule_id=schedule.id,
        user_id=who,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by=actor.user_id,
        created_at=utcnow(),
    )
    session.add(override)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="schedule.override.create",
        entity_type="schedule",
        entity_id=schedule.id,
        after={"override_id": override.id, **override_view(override)},
    )
    return override


async def list_overrides(
    *,
    session: AsyncSession,
    actor: Actor,
    schedule_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Override]:
    """The schedule's overrides overlapping [start, end): by default those not yet over."""
    access.require_read(actor)
    await load_schedule(session=session, schedule_id=schedule_id)
    start = start or utcnow()
    end = end or start + timedelta(days=3660)
    found = await overrides_between(session=session, schedule_ids=[schedule_id], start=start, end=end)
    return sorted(found[schedule_id], key=lambda o: (o.starts_at, o.id))


async def delete_override(*, session: AsyncSession, actor: Actor, schedule_id: int, override_id: int) -> None:
    """Remove an override that is not over yet (past ones are history and stay)."""
    schedule = await load_schedule(session=session, schedule_id=schedule_id)
    override = await session.get(Override, override_id)
    if override is None or override.schedule_id != schedule_id:
        raise NotFound(f"schedule {schedule_id} has no override with id {override_id}")
    await access.require_override(
        session=session, actor=actor, team_id=schedule.team_id, user_id=override.user_id
    )
    if override.ends_at <= utcnow():
        raise Conflict("this override is over and is part of the on-call history; it cannot be removed")
    audit.record(
        session=session,
        actor=actor.ref,
        action="schedule.override.delete",
        entity_type="schedule",
        entity_id=schedule.id,
        before={"override_id": override.id, **override_view(override)},
    )
    await session.delete(override)
    await session.flush()
