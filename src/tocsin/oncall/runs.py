"""An incident's escalation run: starting, restarting and stopping it, and doing so on incident events.

Everything here runs inside the caller's unit of work (an incident change, a handler, a route). A run is one
`escalation_runs` row plus one `escalation.step` timer with subject `inc:<incident id>`; every page it sends
has an idempotency key under `esc:<incident id>:`, so stopping the run withdraws the pages still waiting
(personal notification rules with a delay). Lock order, to stay deadlock-free on PostgreSQL: the incident row
first (incident services lock it for a change, handlers through `get_incident_to_work`), then the run row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import SYSTEM, Actor
from tocsin.engine import service as engine
from tocsin.errors import Conflict, NotFound
from tocsin.incidents import service as incidents
from tocsin.incidents.events import IncidentEvent
from tocsin.incidents.models import EntryKind, Incident, IncidentState
from tocsin.notify import service as notify
from tocsin.oncall import routing
from tocsin.oncall.models import (
    EscalationPolicy,
    EscalationRun,
    RunSource,
    RunStatus,
    TargetKind,
    UrgencyMode,
)
from tocsin.oncall.routing import Choice

STEP = "escalation.step"
ACK_TIMEOUT = "escalation.ack_timeout"
_SUBJECT = "inc:"
_STATES = frozenset(str(s) for s in IncidentState)
_STARTED = "tocsin_escalation_started"  # session.info: incidents whose run (re)started in this unit of work


def subject(incident_id: int) -> str:
    return f"{_SUBJECT}{incident_id}"


def incident_of(timer_subject: str) -> int | None:
    """The incident id in an `inc:<id>` timer subject, or None for a malformed one."""
    tail = timer_subject.removeprefix(_SUBJECT)
    return int(tail) if timer_subject.startswith(_SUBJECT) and tail.isdigit() else None


def key_prefix(incident_id: int) -> str:
    """The idempotency-key prefix of every page an incident's escalation sends (the colon ends the id)."""
    return f"esc:{incident_id}:"


@dataclass(frozen=True)
class Follow:
    """What a run follows: a policy, or a direct target (a user or a schedule) after a reassignment."""

    policy_id: int | None
    target_kind: TargetKind | None
    target_id: int | None
    source: RunSource
    source_id: int | None
    urgency_mode: UrgencyMode

    @classmethod
    def of(cls, choice: Choice) -> Follow:
        return cls(choice.policy_id, None, None, choice.source, choice.source_id, choice.urgency_mode)

    @classmethod
    def again(cls, run: EscalationRun) -> Follow:
        """What the run followed, to follow it once more."""
        return cls(run.policy_id, run.target_kind, run.target_id, run.source, run.source_id, run.urgency_mode)


def plan(run: EscalationRun) -> dict[str, Any]:
    """The step timer's payload: the position the run will fire next."""
    return {"policy_id": run.policy_id, "round": run.round, "step": run.step, "run": run.generation}


async def locked_run(session: AsyncSession, incident_id: int) -> EscalationRun | None:
    """The incident's run, locked until commit (on PostgreSQL) and read afresh."""
    return await session.scalar(
        select(EscalationRun)
        .where(EscalationRun.incident_id == incident_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def record(
    session: AsyncSession,
    incident_id: int,
    text: str,
    *,
    now: datetime,
    data: dict[str, Any] | None = None,
    actor: Actor = SYSTEM,
) -> None:
    """An escalation entry on the incident's timeline (and in the audit log)."""
    await incidents.add_system_entry(
        session=session,
        incident_id=incident_id,
        kind=EntryKind.escalation,
        text=text,
        data=data,
        actor=actor,
        now=now,
    )


async def start(*, session: AsyncSession, incident_id: int, follow: Follow, now: datetime) -> EscalationRun:
    """(Re)start the incident's escalation from its first step, due now; a new generation of pages."""
    run = await locked_run(session, incident_id)
    if run is None:
        run = EscalationRun(incident_id=incident_id, generation=0, paged=[], note="", started_at=now)
        session.add(run)
    run.policy_id, run.target_kind, run.target_id = follow.policy_id, follow.target_kind, follow.target_id
    run.source, run.source_id, run.urgency_mode = follow.source, follow.source_id, follow.urgency_mode
    run.generation += 1
    run.round, run.step, run.status, run.due_at = 0, 0, RunStatus.running, now
    run.note, run.started_at, run.updated_at = "", now, now
    await session.flush()
    await engine.schedule(
        session=session, kind=STEP, subject=subject(incident_id), due_at=now, payload=plan(run)
    )
    session.info.setdefault(_STARTED, set()).add(incident_id)
    return run


async def halt(*, session: AsyncSession, run: EscalationRun, note: str, now: datetime) -> int:
    """Stop a run: no further step, and its pages still waiting are withdrawn; returns how many were."""
    await engine.cancel(session=session, kind=STEP, subject=subject(run.incident_id))
    session.info.get(_STARTED, set()).discard(run.incident_id)
    withdrawn = await notify.cancel(session=session, idempotency_prefix=key_prefix(run.incident_id))
    if run.status == RunStatus.running:
        run.status, run.due_at, run.note, run.updated_at = RunStatus.stopped, None, note, now
    return withdrawn


async def _incident(session: AsyncSession, incident_id: int) -> Incident:
    return await incidents.get_incident(session=session, actor=SYSTEM, ref=incident_id)


async def choice_for(session: AsyncSession, incident: Incident) -> Choice | None:
    """The escalation the incident's current services and team give it."""
    [view] = await incidents.views(session=session, incidents=[incident], roles={incident.id: []})
    return await routing.choose(session=session, service_ids=view.service_ids, team_id=incident.team_id)


async def policy_name(session: AsyncSession, policy_id: int | None) -> str:
    policy = None if policy_id is None else await session.get(EscalationPolicy, policy_id)
    return f"'{policy.name}'" if policy is not None else "a deleted policy"


# --- reacting to incident changes ------------------------------------------------------------------


async def on_incident_event(session: AsyncSession, event: IncidentEvent) -> None:
    """The incidents listener: start on create, restart when an acknowledgement is withdrawn, stop when
    somebody takes the incident on, and follow a new policy when an unacknowledged incident is re-routed."""
    action = event.action
    if action == "create":
        after = event.after or {}
        choice = await routing.choose(
            session=session, service_ids=after.get("service_ids") or [], team_id=after.get("team_id")
        )
        if choice is not None:
            await start(
                session=session, incident_id=event.incident_id, follow=Follow.of(choice), now=event.at
            )
    elif action == "transition.new":
        await _restart(session, event)
    elif action.startswith("transition.") and action.removeprefix("transition.") in _STATES:
        await _taken_on(session, event, IncidentState(action.removeprefix("transition.")))
    elif action == "services" or (
        action == "assign" and (event.before or {}).get("team_id") != (event.after or {}).get("team_id")
    ):
        await _rerouted(session, event)


async def _restart(session: AsyncSession, event: IncidentEvent) -> None:
    """Acknowledgement withdrawn: escalate again from the first step (along a reassignment, if any)."""
    await engine.cancel(session=session, kind=ACK_TIMEOUT, subject=subject(event.incident_id))
    if event.incident_id in session.info.get(_STARTED, ()):
        return  # the change that withdrew it (a reassignment) already started the run anew
    run = await locked_run(session, event.incident_id)
    follow = None
    if run is not None and run.source == RunSource.manual:
        follow = Follow.again(run)
    else:
        choice = await choice_for(session, await _incident(session, event.incident_id))
        if choice is not None:
            follow = Follow.of(choice)
        elif run is not None and run.policy_id is not None:  # its setting was removed since: keep to it
            follow = Follow.again(run)
    if follow is not None:
        await start(session=session, incident_id=event.incident_id, follow=follow, now=event.at)


async def _taken_on(session: AsyncSession, event: IncidentEvent, state: IncidentState) -> None:
    """Any other state: escalation stops; an acknowledgement may start its timeout, anything else ends it."""
    incident_id = event.incident_id
    if state == IncidentState.acknowledged:
        choice = await choice_for(session, await _incident(session, incident_id))
        minutes = None if choice is None else choice.ack_timeout_minutes
        if minutes is not None:
            await engine.schedule(
                session=session,
                kind=ACK_TIMEOUT,
                subject=subject(incident_id),
                due_at=event.at + timedelta(minutes=minutes),
                payload={"minutes": minutes},
            )
    else:
        await engine.cancel(session=session, kind=ACK_TIMEOUT, subject=subject(incident_id))
    run = await locked_run(session, incident_id)
    if run is None:
        return
    was_running = run.status == RunStatus.running
    withdrawn = await halt(session=session, run=run, note=f"incident {state.replace('_', ' ')}", now=event.at)
    if was_running or withdrawn:
        text = f"Escalation stopped: incident {state.replace('_', ' ')}"
        if withdrawn:
            text += f"; {withdrawn} pending notification{'s' if withdrawn != 1 else ''} withdrawn"
        await record(session, incident_id, text, now=event.at, data={"withdrawn": withdrawn})


async def _rerouted(session: AsyncSession, event: IncidentEvent) -> None:
    """Services or team changed: an unacknowledged incident follows the policy that now applies to it."""
    incident = await _incident(session, event.incident_id)
    if incident.state != IncidentState.new:
        return  # taken on (its restart will choose again) or over
    run = await locked_run(session, incident.id)
    if run is not None and run.source == RunSource.manual:
        return  # a person chose where this goes; routing changes do not undo that
    choice = await choice_for(session, incident)
    if choice is None or (run is not None and run.policy_id == choice.policy_id):
        return  # nothing applies any more (keep paging along the old one), or nothing changes
    if run is not None:  # the old policy's people are off the hook, their late pages too
        await halt(session=session, run=run, note="re-routed", now=event.at)
    await start(session=session, incident_id=incident.id, follow=Follow.of(choice), now=event.at)
    why = "its services changed" if event.action == "services" else "its team changed"
    text = f"Escalation now follows {await policy_name(session, choice.policy_id)} ({why})"
    await record(session, incident.id, text, now=event.at, data={"policy_id": choice.policy_id})


# --- acknowledgement timeout -----------------------------------------------------------------------


async def ack_timed_out(*, session: AsyncSession, incident_id: int, minutes: int, now: datetime) -> bool:
    """An acknowledgement nobody followed up: withdraw it (as the system), which restarts escalation.
    Returns whether it was withdrawn; an incident since taken further, or gone, is left alone."""
    try:
        incident = await incidents.get_incident_to_work(session=session, actor=SYSTEM, ref=incident_id)
    except NotFound:
        return False
    if incident.state != IncidentState.acknowledged:
        return False
    try:
        await incidents.transition(
            session=session,
            actor=SYSTEM,
            ref=incident_id,
            target=IncidentState.new,
            reason=f"acknowledgement timed out after {minutes} min",
            now=now,
        )
    except Conflict:
        return False
    return True
