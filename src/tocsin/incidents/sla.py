"""SLA clocks on incidents: the incident-event listener that runs them and the timer handlers they use.

Per incident, a response clock (met when someone takes the incident on) and a resolution clock (met at
resolution) run against the policy that matches its priority, type and services (see sla_config, sla_rules).
On hold pauses both, a reopen starts a new resolution cycle, a priority or services change re-targets them
from their start. Clock mechanics live in sla_clocks, the warning and breach handlers in sla_timers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import Actor
from tocsin.db import utcnow
from tocsin.engine.handlers import Handler
from tocsin.incidents import events, sla_clocks, sla_timers
from tocsin.incidents.models import Incident, IncidentState
from tocsin.incidents.sla_clocks import ClockView
from tocsin.incidents.store import load

HANDLERS: dict[str, Handler] = dict(sla_timers.HANDLERS)
_RETARGET = frozenset({"priority", "services"})


def install() -> None:
    """Register this module's incident-event listeners (idempotent)."""
    events.LISTENERS.add(on_incident_event)


async def on_incident_event(session: AsyncSession, event: events.IncidentEvent) -> None:
    """Start, pause, resume, meet, stop or re-target the incident's clocks as the incident changes."""
    action = event.action
    if action != "create" and not action.startswith("transition.") and action not in _RETARGET:
        return
    incident = await session.get(Incident, event.incident_id)
    if incident is None:
        return
    if action == "create":
        status = sla_clocks.status_of(await sla_clocks.start(session, incident, event.at))
        if incident.sla_status != status:  # set already when the incident was written (opening_status)
            incident.sla_status = status
        return
    if action in _RETARGET:
        await sla_clocks.retarget(session, incident, event.at)
    else:
        before = IncidentState((event.before or {}).get("state", IncidentState.new))
        target = IncidentState(action.removeprefix("transition."))
        await sla_clocks.on_transition(session, incident, before, target, event.at)
    await sla_clocks.refresh_status(session, incident)


async def clocks(
    *, session: AsyncSession, actor: Actor, ref: str | int, history: bool = False, now: datetime | None = None
) -> list[ClockView]:
    """The SLA clocks of an incident the actor may see: the current cycle of each, or all with `history`."""
    incident = (await load(session, actor, ref)).incident
    return await sla_clocks.views(session, incident.id, now=now or utcnow(), history=history)


async def summary(
    *, session: AsyncSession, incident: Incident, now: datetime | None = None, new: bool = False
) -> list[ClockView]:
    """The current clocks of an incident already loaded for the caller (for the incident detail);
    `new`: it was created in this unit of work, so its clocks are all in the session."""
    rows = sla_clocks.held_clocks(session, incident.id) if new else None
    return await sla_clocks.views(session, incident.id, now=now or utcnow(), rows=rows)


__all__ = ["HANDLERS", "clocks", "install", "on_incident_event", "summary"]
