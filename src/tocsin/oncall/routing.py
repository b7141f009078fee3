"""Which escalation policy an incident runs: a setting per service, and a default per team.

An incident runs the policy of its first affected service (lowest id) that has one, else its team's default.
A service's setting may be changed by catalog managers (Can.manage_catalog) and by managers of the service's
owning team; a team's by admins, managers and the team's own managers (see `access`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin import config_cache
from tocsin.audit import service as audit
from tocsin.auth import service as auth
from tocsin.auth.permissions import Actor, Can
from tocsin.catalog import service as catalog
from tocsin.db import utcnow
from tocsin.errors import Forbidden, Invalid, NotFound
from tocsin.oncall import access
from tocsin.oncall.models import (
    EscalationPolicy,
    RunSource,
    ServiceEscalation,
    TeamEscalation,
    UrgencyMode,
)

MAX_ACK_TIMEOUT_MINUTES = 7 * 24 * 60
Setting = ServiceEscalation | TeamEscalation


@dataclass(frozen=True)
class Choice:
    """The policy an incident runs, and the setting it comes from."""

    policy_id: int
    source: RunSource  # service or team
    source_id: int
    ack_timeout_minutes: int | None
    urgency_mode: UrgencyMode


def _choice(row: Setting) -> Choice:
    if isinstance(row, ServiceEscalation):
        return Choice(
            row.policy_id, RunSource.service, row.service_id, row.ack_timeout_minutes, row.urgency_mode
        )
    return Choice(row.policy_id, RunSource.team, row.team_id, row.ack_timeout_minutes, row.urgency_mode)


@dataclass(frozen=True)
class _Routes:
    by_service: Mapping[int, Choice]
    by_team: Mapping[int, Choice]


async def _load_routes(session: AsyncSession) -> _Routes:
    services = await session.scalars(select(ServiceEscalation))
    teams = await session.scalars(select(TeamEscalation))
    return _Routes(
        MappingProxyType({row.service_id: _choice(row) for row in services}),
        MappingProxyType({row.team_id: _choice(row) for row in teams}),
    )


async def choose(*, session: AsyncSession, service_ids: Sequence[int], team_id: int | None) -> Choice | None:
    """The escalation an incident with these services and team runs, or None when nothing applies."""
    routes = await config_cache.cached(session, "escalation_routes", _load_routes)
    for service_id in sorted(set(service_ids)):
        if service_id in routes.by_service:
            return routes.by_service[service_id]
    return routes.by_team.get(team_id) if team_id is not None else None


def _view(row: Setting) -> dict[str, object]:
    return {
        "policy_id": row.policy_id,
        "ack_timeout_minutes": row.ack_timeout_minutes,
        "urgency_mode": str(row.urgency_mode),
    }


async def _check(session: AsyncSession, policy_id: int, ack_timeout_minutes: int | None) -> None:
    if await session.get(EscalationPolicy, policy_id) is None:
        raise Invalid(f"policy_id: no escalation policy with id {policy_id}; pick an existing one")
    if ack_timeout_minutes is not None and not 1 <= ack_timeout_minutes <= MAX_ACK_TIMEOUT_MINUTES:
        raise Invalid(
            f"ack_timeout_minutes: give 1 to {MAX_ACK_TIMEOUT_MINUTES} minutes, or null for no timeout"
        )


async def _require_service_write(session: AsyncSession, actor: Actor, owner_team_id: int | None) -> None:
    if actor.can(Can.manage_catalog) or await access.manages_team(
        session=session, actor=actor, team_id=owner_team_id
    ):
        return
    raise Forbidden(
        "only catalog managers and managers of the service's owning team may change its escalation"
    )


def _audit(
    session: AsyncSession,
    actor: Actor,
    entity: str,
    entity_id: int,
    before: dict[str, object] | None,
    after: Setting | None,
) -> None:
    config_cache.changed(session)
    audit.record(
        session=session,
        actor=actor.ref,
        action=f"{entity}.escalation." + ("delete" if after is None else "set"),
        entity_type=entity,
        entity_id=entity_id,
        before=before,
        after=None if after is None else _view(after),
    )


# --- services --------------------------------------------------------------------------------------


async def get_service_escalation(
    *, session: AsyncSession, actor: Actor, service_key: int | str
) -> ServiceEscalation:
    """The service's escalation setting; NotFound when it has none (its team's default may still apply)."""
    access.require_read(actor)
    service = await catalog.get_service(session=session, key=service_key)
    row = await session.get(ServiceEscalation, service.id)
    if row is None:
        raise NotFound(f"service {service.slug!r} has no escalation policy of its own")
    return row


async def set_service_escalation(
    *,
    session: AsyncSession,
    actor: Actor,
    service_key: int | str,
    policy_id: int,
    ack_timeout_minutes: int | None = None,
    urgency_mode: UrgencyMode = UrgencyMode.by_priority,
) -> ServiceEscalation:
    """Create or replace the service's setting; incidents opened from now on run it."""
    service = await catalog.get_service(session=session, key=service_key)
    await _require_service_write(session, actor, service.owner_team_id)
    await _check(session, policy_id, ack_timeout_minutes)
    row = await session.get(ServiceEscalation, service.id)
    before = None if row is None else _view(row)
    if row is None:
        row = ServiceEscalation(service_id=service.id)
        session.add(row)
    row.policy_id, row.ack_timeout_minutes = policy_id, ack_timeout_minutes
    row.urgency_mode, row.updated_at = UrgencyMode(urgency_mode), utcnow()
    await session.flush()
    _audit(session, actor, "service", service.id, before, row)
    return row


async def delete_service_escalation(*, session: AsyncSession, actor: Actor, service_key: int | str) -> None:
    service = await catalog.get_service(session=session, key=service_key)
    await _require_service_write(session, actor, service.owner_team_id)
    row = await session.get(ServiceEscalation, service.id)
    if row is None:
        raise NotFound(f"service {service.slug!r} has no escalation policy of its own")
    _audit(session, actor, "service", service.id, _view(row), None)
    await session.delete(row)
    await session.flush()


# --- teams -----------------------------------------------------------------------------------------


async def get_team_escalation(*, session: AsyncSession, actor: Actor, team_id: int) -> TeamEscalation:
    """The team's default escalation setting; NotFound when it has none."""
    access.require_read(actor)
    team = await auth.get_team(session=session, team_id=team_id)
    row = await session.get(TeamEscalation, team.id)
    if row is None:
        raise NotFound(f"team {team.slug!r} has no default escalation policy")
    return row


async def set_team_escalation(
    *,
    session: AsyncSession,
    actor: Actor,
    team_id: int,
    policy_id: int,
    ack_timeout_minutes: int | None = None,
    urgency_mode: UrgencyMode = UrgencyMode.by_priority,
) -> TeamEscalation:
    """Create or replace the team's default, run by its incidents that no service routes."""
    team = await auth.get_team(session=session, team_id=team_id)
    await access.require_write(session=session, actor=actor, team_id=team.id, what="this team's escalation")
    await _check(session, policy_id, ack_timeout_minutes)
    row = await session.get(TeamEscalation, team.id)
    before = None if row is None else _view(row)
    if row is None:
        row = TeamEscalation(team_id=team.id)
        session.add(row)
    row.policy_id, row.ack_timeout_minutes = policy_id, ack_timeout_minutes
    row.urgency_mode, row.updated_at = UrgencyMode(urgency_mode), utcnow()
    await session.flush()
    _audit(session, actor, "team", team.id, before, row)
    return row


async def delete_team_escalation(*, session: AsyncSession, actor: Actor, team_id: int) -> None:
    team = await auth.get_team(session=session, team_id=team_id)
    await access.require_write(session=session, actor=actor, team_id=team.id, what="this team's escalation")
    row = await session.get(TeamEscalation, team.id)
    if row is None:
        raise NotFound(f"team {team.slug!r} has no default escalation policy")
    _audit(session, actor, "team", team.id, _view(row), None)
    await session.delete(row)
    await session.flush()
