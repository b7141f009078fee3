"""The SLA timer handlers: record a clock's warning or breach, note it on the timeline, notify people.

Both run as one short unit of work (outbox rows only; nothing is sent from here) and re-check the clock
first, so a timer that fires late, twice, or after the clock was met or moved does the right thing: nothing,
or wait for the clock's real time.
Who hears: the assignee of both the warning and the breach (the team's managers hear of a warning when
nobody is assigned); of a breach also the team's managers (unless the policy says not to) and the policy's
configured user.
"""

from __future__ import annotations

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth import service as auth
from tocsin.auth.models import TeamRole
from tocsin.db import utcnow
from tocsin.engine.handlers import Again, Done, EngineContext, Fired, Outcome
from tocsin.incidents.models import ClockState, Incident, SlaClock, SlaKind, SlaPolicy
from tocsin.incidents.sla_clocks import (
    BREACH,
    WARN,
    current_clocks,
    note,
    parse_subject,
    record_breach,
    record_warning,
    target_text,
)
from tocsin.notify import service as notify
from tocsin.notify.models import NotifyEvent, Urgency

log = structlog.get_logger(__name__)


async def fire_warning(ctx: EngineContext, fired: Fired) -> Outcome:
    """`sla.warn`: the clock reached its warning point (75 % of its target by default)."""
    return await _fire(ctx, fired, breach=False)


async def fire_breach(ctx: EngineContext, fired: Fired) -> Outcome:
    """`sla.breach`: the clock reached its due time without its target being met."""
    return await _fire(ctx, fired, breach=True)


async def _fire(ctx: EngineContext, fired: Fired, *, breach: bool) -> Outcome:
    try:
        incident_id, kind = parse_subject(fired.subject)
    except ValueError:
        log.error("sla.timer.bad_subject", kind=fired.kind, subject=fired.subject)
        return Done()
    now = utcnow()
    async with ctx.db.write() as session:
        # The incident first, as every incident change does, so a handler and a request queue in one order.
        incident = await session.scalar(select(Incident).where(Incident.id == incident_id).with_for_update())
        clock = (
            None
            if incident is None
            else (await current_clocks(session, incident_id, for_update=True)).get(kind)
        )
        if incident is None or clock is None or clock.state != ClockState.running:
            return Done()
        point = clock.due_at if breach else clock.warn_at
        if point is None or (not breach and clock.warned_at is not None):
            return Done()
        if point > now:
            return Again(at=point)
        if breach:
            text = await record_breach(session, incident, clock, now)
        else:
            text = await record_warning(session, incident, clock, now)
        notified = await _notify(session, ctx.settings.base_url, incident, clock, breach=breach)
        await note(session, clock, text, now, notified=notified)
    return Done()


async def recipients(
    session: AsyncSession, incident: Incident, clock: SlaClock, *, breach: bool
) -> list[int]:
    """Who hears of this warning or breach, in order, each once."""
    policy = None if clock.policy_id is None else await session.get(SlaPolicy, clock.policy_id)
    managers: list[int] = []
    if incident.team_id is not None:
        members = (await auth.members(session=session, team_ids=[incident.team_id]))[incident.team_id]
        managers = [m.user_id for m in members if m.team_role == TeamRole.manager]
    people = [incident.assignee_id] if incident.assignee_id is not None else []
    if breach:
        if policy is None or policy.notify_managers:
            people += managers
        if policy is not None and policy.notify_user_id is not None:
            people.append(policy.notify_user_id)
    elif not people:
        people = managers
    return list(dict.fromkeys(people))


async def _notify(
    session: AsyncSession, base_url: str, incident: Incident, clock: SlaClock, *, breach: bool
) -> list[int]:
    step = "breach" if breach else "warn"
    context = {
        "incident": {
            "id": incident.id,
            "ref": incident.ref,
            "title": incident.title,
            "priority": f"P{incident.priority}",
            "state": str(incident.state),
        },
        "sla": {
            "target": f"{SlaKind(clock.kind)} ({target_text(clock)})",
            "due_at": f"{clock.due_at:%Y-%m-%d %H:%M} UTC" if clock.due_at else None,
        },
    }
    people = await recipients(session, incident, clock, breach=breach)
    for user_id in people:
        await notify.notify_user(
            session=session,
            user_id=user_id,
            event=NotifyEvent.sla_breached if breach else NotifyEvent.sla_warning,
            context=context,
            urgency=Urgency.high if incident.priority <= 2 else Urgency.low,
            idempotency_prefix=f"sla:{incident.id}:{clock.kind}:{step}:c{clock.cycle}:u{user_id}",
            base_url=base_url,
        )
    return people


HANDLERS = {WARN: fire_warning, BREACH: fire_breach}

__all__ = ["HANDLERS", "fire_breach", "fire_warning", "recipients"]
