"""What people do to an incident's escalation: see where it stands, escalate it now, reassign it.

Acting needs the right to work the incident (the incidents domain decides: NotFound when it is hidden from
the actor, Forbidden when they may only read it); reading needs only to see it. Each action is recorded on
the incident's timeline under the actor's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import Actor
from tocsin.db import utcnow
from tocsin.engine import service as engine
from tocsin.errors import Conflict, Invalid, NotFound
from tocsin.incidents import service as incidents
from tocsin.incidents.models import Incident, IncidentState
from tocsin.oncall import access, checks, progression, runs, steps
from tocsin.oncall.models import (
    EscalationPolicy,
    EscalationRun,
    RunSource,
    RunStatus,
    TargetKind,
    UrgencyMode,
)
from tocsin.oncall.policies import get_policy
from tocsin.oncall.progression import Position
from tocsin.oncall.runs import Follow
from tocsin.oncall.schedules import load_schedule

_REASSIGNABLE = (IncidentState.new, IncidentState.acknowledged)


@dataclass(frozen=True)
class EscalationState:
    """An incident's escalation as people see it; `status` is "none" when it never escalated."""

    incident_id: int
    status: str
    policy_id: int | None = None
    policy_name: str | None = None
    target_kind: TargetKind | None = None
    target_id: int | None = None
    source: RunSource | None = None
    source_id: int | None = None
    generation: int = 0
    round: int | None = None  # the next step to fire, counted from 0
    step: int | None = None
    next_step_at: datetime | None = None
    ack_timeout_at: datetime | None = None
    note: str = ""
    started_at: datetime | None = None
    paged: list[dict[str, Any]] = field(default_factory=list)


async def escalation_state(*, session: AsyncSession, actor: Actor, ref: str | int) -> EscalationState:
    """Where the incident's escalation stands: what it follows, the next step and when, whom it paged.
    For those who read on-call data (not reporters), on incidents they can see."""
    incident = await incidents.get_incident(session=session, actor=actor, ref=ref)
    access.require_read(actor)
    return await state_of(session, incident.id)


async def state_of(session: AsyncSession, incident_id: int) -> EscalationState:
    """The escalation state of an incident the caller may see (no permission check)."""
    subject = runs.subject(incident_id)
    ack = await engine.pending(session=session, kind=runs.ACK_TIMEOUT, subject=subject)
    ack_at = ack[0].due_at if ack else None
    run = await session.get(EscalationRun, incident_id)
    if run is None:
        return EscalationState(incident_id, "none", ack_timeout_at=ack_at)
    step = await engine.pending(session=session, kind=runs.STEP, subject=subject)
    policy = None if run.policy_id is None else await session.get(EscalationPolicy, run.policy_id)
    running = run.status == RunStatus.running
    return EscalationState(
        incident_id=incident_id,
        status=str(run.status),
        policy_id=run.policy_id,
        policy_name=None if policy is None else policy.name,
        target_kind=run.target_kind,
        target_id=run.target_id,
        source=run.source,
        source_id=run.source_id,
        generation=run.generation,
        round=run.round if running else None,
        step=run.step if running else None,
        next_step_at=step[0].due_at if step and running else None,
        ack_timeout_at=ack_at,
        note=run.note,
        started_at=run.started_at,
        paged=list(run.paged),
    )


def _unacknowledged(incident: Incident, what: str) -> None:
    if incident.state != IncidentState.new:
        raise Conflict(
            f"{incident.ref} is {str(incident.state).replace('_', ' ')}; {what} only unacknowledged incidents"
        )


async def escalate_now(
    *, session: AsyncSession, actor: Actor, ref: str | int, now: datetime | None = None
) -> EscalationState:
    """Fire the next step at once instead of waiting out the current one's delay; an escalation that is
    over (or never began) starts again from its first step."""
    now = now or utcnow()
    incident = await incidents.get_incident_to_work(session=session, actor=actor, ref=ref)
    _unacknowledged(incident, "escalate now pages")
    run = await runs.locked_run(session, incident.id)
    course = None if run is None else await steps.course_of(session, run)
    if run is not None and course is not None and run.status == RunStatus.running:
        position = progression.normalize(
            Position(run.round, run.step), steps=len(course.steps), repeat_count=course.repeat_count
        )
        if not progression.is_end(position, repeat_count=course.repeat_count):
            run.due_at, run.updated_at = now, now
            await engine.schedule(
                session=session,
                kind=runs.STEP,
                subject=runs.subject(incident.id),
                due_at=now,
                payload=runs.plan(run),
            )
            label = progression.step_label(position, policy=course.label, repeat_count=course.repeat_count)
            await runs.record(
                session, incident.id, f"Escalated now: {label} fires at once", now=now, actor=actor
            )
            return await state_of(session, incident.id)
    if run is not None and course is not None:
        follow = Follow.again(run)
    else:
        choice = await runs.choice_for(session, incident)
        if choice is None:
            raise Conflict(
                f"no escalation policy applies to {incident.ref}; "
                "reassign it to a policy, a person or a schedule"
            )
        follow = Follow.of(choice)
    await runs.start(session=session, incident_id=incident.id, follow=follow, now=now)
    await runs.record(
        session,
        incident.id,
        "Escalated now: escalation starts again from its first step",
        now=now,
        actor=actor,
    )
    return await state_of(session, incident.id)


async def _target(
    session: AsyncSession, actor: Actor, policy_id: int | None, user_id: int | None, schedule_id: int | None
) -> tuple[int | None, TargetKind | None, int | None, str]:
    """(policy id, direct target kind, direct target id, label) for what a reassignment names."""
    named = [
        (k, v)
        for k, v in (("policy_id", policy_id), ("user_id", user_id), ("schedule_id", schedule_id))
        if v is not None
    ]
    if len(named) != 1:
        raise Invalid("give exactly one of policy_id, user_id and schedule_id")
    if policy_id is not None:
        try:
            policy = await get_policy(session=session, actor=actor, policy_id=policy_id)
        except NotFound as exc:
            raise Invalid(f"policy_id: {exc.detail}") from None
        return policy.id, None, None, f"policy '{policy.name}'"
    if user_id is not None:
        user = await checks.user(session, "user_id", user_id)
        return None, TargetKind.user, user.id, user.name
    assert schedule_id is not None
    try:
        schedule = await load_schedule(session=session, schedule_id=schedule_id)
    except NotFound as exc:
        raise Invalid(f"schedule_id: {exc.detail}") from None
    return None, TargetKind.schedule, schedule.id, f"whoever is on call for {schedule.name}"


async def reassign(
    *,
    session: AsyncSession,
    actor: Actor,
    ref: str | int,
    policy_id: int | None = None,
    user_id: int | None = None,
    schedule_id: int | None = None,
    now: datetime | None = None,
) -> EscalationState:
    """Escalate toward another policy, person or schedule from the first step, withdrawing what the old one
    still had waiting. An acknowledged incident is handed on: its acknowledgement is withdrawn."""
    now = now or utcnow()
    incident = await incidents.get_incident_to_work(session=session, actor=actor, ref=ref)
    if incident.state not in _REASSIGNABLE:
        raise Conflict(
            f"{incident.ref} is {str(incident.state).replace('_', ' ')}; only new or acknowledged incidents "
            "can be reassigned for paging"
        )
    policy, kind, target, label = await _target(session, actor, policy_id, user_id, schedule_id)
    run = await runs.locked_run(session, incident.id)
    if run is not None:
        await runs.halt(session=session, run=run, note="reassigned", now=now)
        mode = run.urgency_mode
    else:
        choice = await runs.choice_for(session, incident)
        mode = choice.urgency_mode if choice is not None else UrgencyMode.by_priority
    follow = Follow(policy, kind, target, RunSource.manual, actor.user_id, mode)
    await runs.start(session=session, incident_id=incident.id, follow=follow, now=now)
    data = {"policy_id": policy, "target_kind": kind, "target_id": target}
    await runs.record(
        session, incident.id, f"Escalation reassigned to {label}", now=now, data=data, actor=actor
    )
    if incident.state == IncidentState.acknowledged:  # hand it on; the run just started stands
        await incidents.transition(
            session=session,
            actor=actor,
            ref=incident.id,
            target=IncidentState.new,
            reason=f"reassigned to {label}",
            now=now,
        )
    return await state_of(session, incident.id)
