"""Warnings about a schedule: people it can put on call whom a page would not reach."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth import service as auth
from tocsin.auth.permissions import Actor
from tocsin.errors import NotFound
from tocsin.notify import service as notify
from tocsin.oncall import access
from tocsin.oncall.models import Schedule as ScheduleRow
from tocsin.oncall.queries import participants_of
from tocsin.oncall.schedules import get_schedule, load_schedule


@dataclass(frozen=True)
class ScheduleWarning:
    user_id: int
    name: str
    problem: str


async def schedule_warnings(
    *, session: AsyncSession, actor: Actor, schedule_id: int, at: datetime | None = None
) -> list[ScheduleWarning]:
    """Everyone the schedule can put on call from `at` (default now) whom a high-urgency page cannot reach:
    deactivated, or without a working contact method for high urgency (notify decides what works)."""
    access.require_read(actor)
    await load_schedule(session=session, schedule_id=schedule_id)
    participants = await participants_of(session=session, schedule_id=schedule_id, at=at)
    unreachable = set(await notify.users_without_contact(session=session, user_ids=participants))
    out: list[ScheduleWarning] = []
    for user_id in participants:
        if user_id not in unreachable:
            continue
        try:
            user = await auth.get_user(session=session, user_id=user_id)
        except NotFound:
            continue
        problem = (
            "is deactivated: pages skip them while they are on call"
            if not user.active
            else "has no working contact method for high-urgency pages (add one, or fix the failing one)"
        )
        out.append(ScheduleWarning(user.id, user.name, problem))
    return out


async def schedule_detail(
    *, session: AsyncSession, actor: Actor, schedule_id: int
) -> tuple[ScheduleRow, list[ScheduleWarning]]:
    """The schedule with its warnings, for its page."""
    schedule = await get_schedule(session=session, actor=actor, schedule_id=schedule_id)
    return schedule, await schedule_warnings(session=session, actor=actor, schedule_id=schedule_id)
