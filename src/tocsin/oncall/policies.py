"""Escalation policies: ordered steps naming the users, schedules and teams to page.

Each step waits `delay_minutes`, unanswered, before the next; the whole list repeats `repeat_count` more
times. Data only: running a policy is the engine's job, which reads it with `get_policy` and asks
`who_is_on_call` for schedule targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit import service as audit
from tocsin.auth import service as auth
from tocsin.auth.permissions import Actor
from tocsin.catalog import service as catalog
from tocsin.db import utcnow
from tocsin.errors import Conflict, Invalid, NotFound
from tocsin.oncall import access, checks
from tocsin.oncall.checks import UNSET, Unset
from tocsin.oncall.models import (
    EscalationPolicy,
    EscalationStep,
    EscalationTarget,
    ServiceEscalation,
    TargetKind,
    TeamEscalation,
)
from tocsin.oncall.schedules import load_schedule

MAX_STEPS = 20
MAX_TARGETS = 20
MAX_DELAY_MINUTES = 7 * 24 * 60
MAX_REPEAT = 9


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    id: int


@dataclass(frozen=True)
class StepSpec:
    delay_minutes: int
    targets: Sequence[Target]


def policy_view(p: EscalationPolicy) -> dict[str, object]:
    return {
        "name": p.name,
        "team_id": p.team_id,
        "repeat_count": p.repeat_count,
        "description": p.description,
        "steps": [
            {
                "delay_minutes": s.delay_minutes,
                "targets": [{"kind": t.kind, "id": t.target_id} for t in s.targets],
            }
            for s in p.steps
        ],
    }


async def _check_target(session: AsyncSession, field: str, target: Target) -> None:
    if target.kind == TargetKind.user:
        await checks.user(session, field, target.id)
    elif target.kind == TargetKind.team:
        await checks.team(session, field, target.id)
    else:
        try:
            await load_schedule(session=session, schedule_id=target.id)
        except NotFound as exc:
            raise Invalid(f"{field}: no on-call schedule with id {target.id}; pick an existing one") from exc


async def _build_steps(session: AsyncSession, steps: Sequence[StepSpec]) -> list[EscalationStep]:
    if not 1 <= len(steps) <= MAX_STEPS:
        raise Invalid(f"steps: give between 1 and {MAX_STEPS} steps")
    built: list[EscalationStep] = []
    for i, step in enumerate(steps):
        if not 0 <= step.delay_minutes <= MAX_DELAY_MINUTES:
            raise Invalid(f"steps.{i}.delay_minutes: give 0 to {MAX_DELAY_MINUTES} minutes")
        if not 1 <= len(step.targets) <= MAX_TARGETS:
            raise Invalid(f"steps.{i}.targets: give between 1 and {MAX_TARGETS} targets")
        if len(set(step.targets)) != len(step.targets):
            raise Invalid(f"steps.{i}.targets: a target is listed twice; list each once")
        for j, target in enumerate(step.targets):
            await _check_target(session, f"steps.{i}.targets.{j}", target)
        built.append(
            EscalationStep(
                position=i,
                delay_minutes=step.delay_minutes,
                targets=[
                    EscalationTarget(position=j, kind=t.kind, **{f"{t.kind}_id": t.id})
                    for j, t in enumerate(step.targets)
                ],
            )
        )
    return built


def _repeat(repeat_count: int) -> int:
    if not 0 <= repeat_count <= MAX_REPEAT:
        raise Invalid(f"repeat_count: give 0 to {MAX_REPEAT} repetitions")
    return repeat_count


async def _name_free(session: AsyncSession, name: str, policy_id: int | None = None) -> None:
    other = await session.scalar(select(EscalationPolicy.id).where(EscalationPolicy.name == name))
    if other is not None and other != policy_id:
        raise Conflict(f"an escalation policy named {name!r} already exists; choose another name")


async def create_policy(
    *,
    session: AsyncSession,
    actor: Actor,
    name: str,
    steps: Sequence[StepSpec],
    team_id: int | None = None,
    repeat_count: int = 0,
    description: str = "",
) -> EscalationPolicy:
    await access.require_write(
        session=session, actor=actor, team_id=team_id, what="this team's escalation policies"
    )
    await checks.team(session, "team_id", team_id)
    await _name_free(session, name)
    policy = EscalationPolicy(
        name=name,
        team_id=team_id,
        repeat_count=_repeat(repeat_count),
        description=description,
        created_at=utcnow(),
        steps=await _build_steps(session, steps),
    )
    session.add(policy)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="escalation_policy.create",
        entity_type="escalation_policy",
        entity_id=policy.id,
        after=policy_view(policy),
    )
    return policy


async def get_policy(*, session: AsyncSession, actor: Actor, policy_id: int) -> EscalationPolicy:
    """The policy with its steps in order and each step's targets (the engine passes SYSTEM as actor)."""
    access.require_read(actor)
    policy = await session.get(EscalationPolicy, policy_id)
    if policy is None:
        raise NotFound(f"no escalation policy with id {policy_id}")
    return policy


async def list_policies(
    *, session: AsyncSession, actor: Actor, team_id: int | None = None
) -> list[EscalationPolicy]:
    access.require_read(actor)
    stmt = select(EscalationPolicy).order_by(EscalationPolicy.name)
    if team_id is not None:
        stmt = stmt.where(EscalationPolicy.team_id == team_id)
    return list(await session.scalars(stmt))


async def update_policy(
    *,
    session: AsyncSession,
    actor: Actor,
    policy_id: int,
    name: str | None = None,
    team_id: int | Unset | None = UNSET,
    repeat_count: int | None = None,
    description: str | None = None,
    steps: Sequence[StepSpec] | None = None,
) -> EscalationPolicy:
    """Change a policy; `steps`, when given, replaces the whole list."""
    policy = await get_policy(session=session, actor=actor, policy_id=policy_id)
    await access.require_write(
        session=session, actor=actor, team_id=policy.team_id, what="this escalation policy"
    )
    before = policy_view(policy)
    if not isinstance(team_id, Unset) and team_id != policy.team_id:
        await access.require_write(
            session=session,
            actor=actor,
            team_id=team_id,
            what="escalation policies of the team you are moving it to",
        )
        await checks.team(session, "team_id", team_id)
        policy.team_id = team_id
    if name is not None:
        await _name_free(session, name, policy.id)
        policy.name = name
    if repeat_count is not None:
        policy.repeat_count = _repeat(repeat_count)
    if description is not None:
        policy.description = description
    if steps is not None:
        built = await _build_steps(session, steps)
        policy.steps.clear()
        await session.flush()
        policy.steps.extend(built)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="escalation_policy.update",
        entity_type="escalation_policy",
        entity_id=policy.id,
        before=before,
        after=policy_view(policy),
    )
    return policy


async def _users_of(session: AsyncSession, policy_id: int) -> list[str]:
    """Who runs the policy: "service 'platform'", "team 'sre'"."""
    service_ids = await session.scalars(
        select(ServiceEscalation.service_id).where(ServiceEscalation.policy_id == policy_id)
    )
    services = await catalog.services_by_id(session=session, ids=list(service_ids))
    teams = await session.scalars(select(TeamEscalation.team_id).where(TeamEscalation.policy_id == policy_id))
    named = [f"service {s.slug!r}" for s in sorted(services.values(), key=lambda s: s.slug)]
    return named + [f"team {(await auth.get_team(session=session, team_id=i)).slug!r}" for i in teams]


async def delete_policy(*, session: AsyncSession, actor: Actor, policy_id: int) -> None:
    """Delete a policy nothing runs; incidents escalating along it stop at their next step."""
    policy = await get_policy(session=session, actor=actor, policy_id=policy_id)
    await access.require_write(
        session=session, actor=actor, team_id=policy.team_id, what="this escalation policy"
    )
    users = await _users_of(session, policy.id)
    if users:
        raise Conflict(
            f"escalation policy {policy.name!r} is run by {', '.join(users)}; "
            "point them at another policy first"
        )
    audit.record(
        session=session,
        actor=actor.ref,
        action="escalation_policy.delete",
        entity_type="escalation_policy",
        entity_id=policy.id,
        before=policy_view(policy),
    )
    try:
        async with session.begin_nested():  # a refused delete must leave the unit of work usable
            await session.delete(policy)
    except IntegrityError as exc:  # another domain (a routing rule) still points at it
        raise Conflict(
            f"escalation policy {policy.name!r} is still in use; point its users at another policy first"
        ) from exc
