"""Who may read and change on-call data.

Admins and managers (Can.manage_teams) change every schedule and escalation policy; a team's managers (team
role `manager`) change those of their team. A responder may add or remove an override putting *themselves* on
call on a schedule of a team they belong to: taking a shift for a colleague is routine and should not need a
manager, while putting somebody else on call must. Reading needs Can.read_all (responders, viewers, managers,
admins).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth import service as auth
from tocsin.auth.models import TeamRole
from tocsin.auth.permissions import Actor, Can
from tocsin.errors import Forbidden


def require_read(actor: Actor) -> None:
    if not actor.can(Can.read_all):
        raise Forbidden(f"your role ({actor.role}) may not read on-call schedules or escalation policies")


async def manages_team(*, session: AsyncSession, actor: Actor, team_id: int | None) -> bool:
    """Whether the actor may change on-call data belonging to `team_id` (None: no team)."""
    if actor.can(Can.manage_teams):
        return True
    if team_id is None or actor.user_id is None or team_id not in actor.team_ids:
        return False
    members = (await auth.members(session=session, team_ids=[team_id]))[team_id]
    return any(m.user_id == actor.user_id and m.team_role == TeamRole.manager for m in members)


async def require_write(*, session: AsyncSession, actor: Actor, team_id: int | None, what: str) -> None:
    if not await manages_team(session=session, actor=actor, team_id=team_id):
        raise Forbidden(f"only admins, managers and the owning team's managers may change {what}")


async def require_override(*, session: AsyncSession, actor: Actor, team_id: int | None, user_id: int) -> None:
    """Writers may set any override; a responder only one for themselves on their own team's schedule."""
    if await manages_team(session=session, actor=actor, team_id=team_id):
        return
    own = actor.user_id == user_id and actor.can(Can.work_incidents)
    if not own or team_id is None or team_id not in actor.team_ids:
        raise Forbidden(
            "a responder may only add or remove overrides for themselves, on a schedule of their own "
            "team; ask a manager for anything else"
        )
