"""SLA clocks of incidents: starting, pausing, meeting, stopping and re-targeting them, and their timers.

Each running clock has one timer armed, subject "<incident id>:<kind>": `sla.warn` at its warning point
until it has warned, then `sla.breach` at its due time. Every change of a clock re-arms it in the same
transaction, so a pause, a resume or a re-target moves the timer with it and meeting the target removes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin import config_cache
from tocsin.engine import service as engine
from tocsin.incidents.business_hours import Calendar
from tocsin.incidents.external import add_system_entry
from tocsin.incidents.lifecycle import OPEN_STATES, WORKING_STATES, is_reopen
from tocsin.incidents.models import (
    BusinessCalendar,
    ClockState,
    EntryKind,
    Incident,
    IncidentState,
    SlaClock,
    SlaKind,
    SlaPolicy,
    SlaStatus,
)
from tocsin.incidents.sla_config import calendar_of
from tocsin.incidents.sla_rules import Pause, Span, choose, describe_target
from tocsin.incidents.store import new_services, services_of

WARN = "sla.warn"
BREACH = "sla.breach"
OPEN = (ClockState.running, ClockState.paused)


def subject(incident_id: int, kind: SlaKind) -> str:
    return f"{incident_id}:{kind}"


def parse_subject(text: str) -> tuple[int, SlaKind]:
    """(incident id, kind) from a timer subject; ValueError when it is not one of ours."""
    incident_id, _, kind = text.partition(":")
    return int(incident_id), SlaKind(kind)


async def current_clocks(
    session: AsyncSession, incident_id: int, *, for_update: bool = False
) -> dict[SlaKind, SlaClock]:
    """The latest cycle of each kind of clock the incident has."""
    stmt = select(SlaClock).where(SlaClock.incident_id == incident_id).order_by(SlaClock.kind, SlaClock.cycle)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return {SlaKind(c.kind): c for c in await session.scalars(stmt)}


async def calendar_row(session: AsyncSession, calendar_id: int | None) -> BusinessCalendar | None:
    return None if calendar_id is None else await session.get(BusinessCalendar, calendar_id)


async def span_of(session: AsyncSession, clock: SlaClock) -> Span:
    row = await calendar_row(session, clock.calendar_id)
    calendar: Calendar | None = None if row is None else calendar_of(row)
    pauses: tuple[Pause, ...] = tuple(
        (datetime.fromisoformat(s), datetime.fromisoformat(e)) for s, e in clock.pauses
    )
    return Span(
        started_at=clock.started_at,
        target=timedelta(minutes=clock.target_minutes),
        calendar=calendar,
        pauses=pauses,
        paused_at=clock.paused_at,
    )


def target_text(clock: SlaClock) -> str:
    return describe_target(clock.target_minutes, business=clock.calendar_id is not None)


# --- timers ----------------------------------------------------------------------------------------


async def arm(session: AsyncSession, clock: SlaClock, *, fresh: bool = False) -> None:
    """Schedule the clock's next timer (warning, else breach) or cancel both once it is not running.

    `fresh`: a clock just created has no timers yet, so there is nothing to cancel.
    """
    subj = subject(clock.incident_id, SlaKind(clock.kind))
    keep: str | None = None
    if clock.state == ClockState.running and clock.due_at is not None:
        if clock.warned_at is None and clock.warn_at is not None:
            keep = WARN
            await engine.schedule(session=session, kind=WARN, subject=subj, due_at=clock.warn_at)
        else:
            keep = BREACH
            await engine.schedule(session=session, kind=BREACH, subject=subj, due_at=clock.due_at)
    if not fresh:
        for kind in (WARN, BREACH):
            if kind != keep:
                await engine.cancel(session=session, kind=kind, subject=subj)


async def _recompute(session: AsyncSession, clock: SlaClock, *, fresh: bool = False) -> None:
    """Set the warning point and due time from the clock's start, target and pauses, then re-arm."""
    if clock.state == ClockState.running:
        span = await span_of(session, clock)
        clock.due_at, clock.warn_at = span.due_at(), span.warn_at(clock.warn_percent)
    elif clock.state == ClockState.paused:
        clock.due_at = clock.warn_at = None
    await arm(session, clock, fresh=fresh)


# --- policies --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyFacts:
    """What starting and retargeting clocks needs of a policy (a shared, cached copy)."""

    id: int
    priority: int
    type_key: str | None
    service_id: int | None
    response_minutes: int | None
    resolution_minutes: int | None
    calendar_id: int | None
    warn_percent: int | None
    active: bool


async def _load_policies(session: AsyncSession) -> tuple[PolicyFacts, ...]:
    rows = await session.scalars(select(SlaPolicy).where(SlaPolicy.active.is_(True)).order_by(SlaPolicy.id))
    return tuple(
        PolicyFacts(
            p.id,
            p.priority,
            p.type_key,
            p.service_id,
            p.response_minutes,
            p.resolution_minutes,
            p.calendar_id,
            p.warn_percent,
            p.active,
        )
        for p in rows
    )


async def policy_for(
    session: AsyncSession, incident: Incident, services: list[int] | None = None
) -> PolicyFacts | None:
    """The active policy that applies to the incident now (most specific wins), if any; `services`: the
    incident's, when the caller knows them (else they are read when a policy names one)."""
    every = await config_cache.cached(session, "sla_policies", _load_policies)
    policies = [p for p in every if p.priority == incident.priority]
    if not policies:
        return None
    if services is None and any(p.service_id is not None for p in policies):
        services = new_services(session, incident.id)
        if services is None:
            services = (await services_of(session, [incident.id]))[incident.id]
    return choose(
        policies, priority=incident.priority, type_key=incident.type_key, service_ids=services or []
    )


async def opening_status(session: AsyncSession, incident: Incident, services: list[int]) -> SlaStatus | None:
    """The SLA status a new incident will have once `start()` has started its clocks: running, if its
    policy sets a target."""
    policy = await policy_for(session, incident, services)
    if policy is None or all(_minutes(policy, kind) is None for kind in SlaKind):
        return None
    return SlaStatus.running


def _minutes(policy: PolicyFacts, kind: SlaKind) -> int | None:
    return policy.response_minutes if kind == SlaKind.response else policy.resolution_minutes


def _take_policy(clock: SlaClock, policy: PolicyFacts, minutes: int) -> None:
    clock.policy_id, clock.calendar_id = policy.id, policy.calendar_id
    clock.target_minutes, clock.warn_percent = minutes, policy.warn_percent


async def _start(
    session: AsyncSession,
    incident: Incident,
    policy: PolicyFacts,
    kinds: Iterable[SlaKind],
    *,
    started_at: datetime,
    paused_at: datetime | None = None,
    cycle: int = 1,
) -> list[SlaClock]:
    """Start clocks of the given kinds (those the policy sets a target for), in one insert.

    The rows are written with a plain insert: the returned clocks are not tracked by the session, so a
    later change in this unit of work loads them first (`current_clocks`)."""
    clocks = []
    for kind in kinds:
        minutes = _minutes(policy, kind)
        if minutes is None:
            continue
        clock = SlaClock(
            incident_id=incident.id,
            kind=kind,
            cycle=cycle,
            state=ClockState.running if paused_at is None else ClockState.paused,
            started_at=started_at,
            paused_at=paused_at,
            pauses=[],
        )
        _take_policy(clock, policy, minutes)
        await _recompute(session, clock, fresh=True)
        clocks.append(clock)
    if clocks:
        await session.execute(
            _INSERT_CLOCKS, [{c: getattr(clock, c) for c in _CLOCK_COLUMNS} for clock in clocks]
        )
        session.info.setdefault(_STARTED, {}).setdefault(incident.id, []).extend(clocks)
    return clocks


_INSERT_CLOCKS = insert(cast(Table, SlaClock.__table__))
_CLOCK_COLUMNS = tuple(c.key for c in SlaClock.__table__.columns if c.key != "id")


async def start(session: AsyncSession, incident: Incident, at: datetime) -> list[SlaClock]:
    """Start the response and resolution clocks of a new incident per its policy (none if none applies)."""
    policy = await policy_for(session, incident)
    if policy is None:
        return []
    return await _start(session, incident, policy, SlaKind, started_at=at)


# --- what the lifecycle does to clocks -------------------------------------------------------------


async def _pause(session: AsyncSession, clock: SlaClock, at: datetime) -> None:
    if clock.state == ClockState.running:
        clock.state, clock.paused_at = ClockState.paused, at
        await _recompute(session, clock)


async def _resume(session: AsyncSession, clock: SlaClock, at: datetime) -> None:
    if clock.state == ClockState.paused and clock.paused_at is not None:
        if at > clock.paused_at:
            clock.pauses = [*clock.pauses, [clock.paused_at.isoformat(), at.isoformat()]]
        clock.state, clock.paused_at = ClockState.running, None
        await _recompute(session, clock)


async def _meet(session: AsyncSession, incident: Incident, clock: SlaClock, at: datetime) -> None:
    """The target is reached at `at`: met in time, or a breach the timer had not yet recorded."""
    if clock.met_at is not None or clock.state == ClockState.stopped:
        return
    await _resume(session, clock, at)
    clock.met_at = at
    if clock.state == ClockState.running:
        if clock.due_at is not None and at > clock.due_at:
            await record_breach(session, incident, clock, at)
        else:
            clock.state = ClockState.met
    await arm(session, clock)


async def _stop(session: AsyncSession, clock: SlaClock, at: datetime) -> None:
    if clock.state in OPEN:
        clock.state, clock.stopped_at, clock.paused_at = ClockState.stopped, at, None
        clock.due_at = clock.warn_at = None
        await arm(session, clock)


async def on_transition(
    session: AsyncSession, incident: Incident, before: IncidentState, target: IncidentState, at: datetime
) -> None:
    """Apply a lifecycle move: hold pauses, leaving hold resumes, taking the incident on meets the
    response target, resolving meets the resolution target, cancelling stops, reopening starts a new
    resolution cycle."""
    clocks = await current_clocks(session, incident.id)
    if before == IncidentState.on_hold and target != IncidentState.on_hold:
        for clock in clocks.values():
            await _resume(session, clock, at)
    response, resolution = clocks.get(SlaKind.response), clocks.get(SlaKind.resolution)
    if response is not None and (target in WORKING_STATES or target == IncidentState.resolved):
        await _meet(session, incident, response, at)
    if target == IncidentState.on_hold:
        for clock in clocks.values():
            await _pause(session, clock, at)
    elif target == IncidentState.resolved and resolution is not None:
        await _meet(session, incident, resolution, at)
    elif target == IncidentState.cancelled:
        for clock in clocks.values():
            await _stop(session, clock, at)
    elif is_reopen(before, target):
        policy = await policy_for(session, incident)
        if policy is not None:
            cycle = resolution.cycle + 1 if resolution is not None else 1
            await _start(session, incident, policy, [SlaKind.resolution], started_at=at, cycle=cycle)


def _still_wanted(incident: Incident, kind: SlaKind) -> bool:
    """Whether a clock of `kind` that the incident does not have yet would still be measuring anything."""
    if kind == SlaKind.response:
        return incident.acknowledged_at is None and incident.state == IncidentState.new
    return incident.state in OPEN_STATES


async def retarget(session: AsyncSession, incident: Incident, at: datetime) -> None:
    """After a priority or services change: running and paused clocks take the targets of the policy that
    now applies, counted from their start; a kind the old policy lacked starts from the incident's
    creation; a kind the new policy lacks stops."""
    policy = await policy_for(session, incident)
    clocks = await current_clocks(session, incident.id)
    for kind in SlaKind:
        clock = clocks.get(kind)
        minutes = None if policy is None else _minutes(policy, kind)
        if clock is None:
            if policy is not None and minutes is not None and _still_wanted(incident, kind):
                held = at if incident.state == IncidentState.on_hold else None
                await _start(
                    session, incident, policy, [kind], started_at=incident.created_at, paused_at=held
                )
            continue
        if clock.state not in OPEN:
            continue
        if policy is None or minutes is None:
            await _stop(session, clock, at)
            continue
        _take_policy(clock, policy, minutes)
        await _recompute(session, clock)
        if clock.warned_at is not None and clock.warn_at is not None and clock.warn_at > at:
            clock.warned_at = None  # the warning point moved ahead: warn again when it comes
            await arm(session, clock)


# --- warning and breach ----------------------------------------------------------------------------


async def record_warning(session: AsyncSession, incident: Incident, clock: SlaClock, at: datetime) -> str:
    """Mark the clock warned, note it on the timeline, arm the breach timer; returns the entry text."""
    clock.warned_at = at
    due = f" due {clock.due_at:%Y-%m-%d %H:%M} UTC" if clock.due_at else ""
    used = f"{clock.warn_percent}% of {target_text(clock)} used"
    text = f"{str(clock.kind).capitalize()} SLA at risk: {used},{due}"
    await arm(session, clock)
    await refresh_status(session, incident)
    return text


async def record_breach(session: AsyncSession, incident: Incident, clock: SlaClock, at: datetime) -> str:
    """Mark the clock breached (at its due time), disarm it, note it; returns the entry text."""
    clock.state, clock.breached_at = ClockState.breached, clock.due_at or at
    text = f"{str(clock.kind).capitalize()} SLA breached (target {target_text(clock)})"
    await arm(session, clock)
    await refresh_status(session, incident)
    if clock.met_at is not None:  # found late, when the target was reached: no one is paged for it
        await note(session, clock, text, at, notified=[])
    return text


async def note(
    session: AsyncSession, clock: SlaClock, text: str, at: datetime, *, notified: Iterable[int]
) -> None:
    await add_system_entry(
        session=session,
        incident_id=clock.incident_id,
        kind=EntryKind.sla,
        text=text,
        data={
            "kind": str(clock.kind),
            "cycle": clock.cycle,
            "target_minutes": clock.target_minutes,
            "due_at": clock.due_at.isoformat() if clock.due_at else None,
            "notified": sorted(set(notified)),
        },
        now=at,
    )


# --- the incident's summary ------------------------------------------------------------------------


def status_of(clocks: Iterable[SlaClock]) -> SlaStatus | None:
    """The worst of the incident's current clocks: breached > at risk > running > paused > met."""
    states = [(ClockState(c.state), c.warned_at is not None) for c in clocks]
    if any(s == ClockState.breached for s, _ in states):
        return SlaStatus.breached
    if any(s == ClockState.running and warned for s, warned in states):
        return SlaStatus.at_risk
    for state, status in (
        (ClockState.running, SlaStatus.running),
        (ClockState.paused, SlaStatus.paused),
        (ClockState.met, SlaStatus.met),
    ):
        if any(s == state for s, _ in states):
            return status
    return None


async def refresh_status(session: AsyncSession, incident: Incident) -> None:
    status = status_of((await current_clocks(session, incident.id)).values())
    if incident.sla_status != status:
        incident.sla_status = status


@dataclass(frozen=True)
class ClockView:
    """A clock as the API shows it, with what is left of its target as of `now`."""

    clock: SlaClock
    calendar_key: str | None
    remaining: timedelta | None  # in the clock's measure; None once met or stopped
    paused_total: timedelta


_STARTED = "tocsin_sla_started"  # session.info: {incident id: clocks started in this unit of work}


def held_clocks(session: AsyncSession, incident_id: int) -> list[SlaClock]:
    """The clocks of an incident created in this unit of work: all of them were started in it."""
    mine = session.info.get(_STARTED, {}).get(incident_id, [])
    return sorted(mine, key=lambda c: (c.kind, c.cycle))


async def views(
    session: AsyncSession,
    incident_id: int,
    *,
    now: datetime,
    history: bool = False,
    rows: list[SlaClock] | None = None,
) -> list[ClockView]:
    """The incident's current clocks (every cycle with `history`), response first; from `rows` if given."""
    if rows is None:
        stmt = select(SlaClock).where(SlaClock.incident_id == incident_id)
        rows = list(await session.scalars(stmt.order_by(SlaClock.kind, SlaClock.cycle)))
    if not history:
        rows = list({SlaKind(c.kind): c for c in rows}.values())
    out = []
    for c in sorted(rows, key=lambda c: (list(SlaKind).index(SlaKind(c.kind)), c.cycle)):
        span = await span_of(session, c)
        counting = c.met_at is None and c.state != ClockState.stopped
        row = await calendar_row(session, c.calendar_id)
        out.append(
            ClockView(
                c,
                None if row is None else row.key,
                span.remaining(now) if counting else None,
                span.paused_total(now),
            )
        )
    return out
