"""Communication cadence: reminding the comms lead when no stakeholder update was posted in time.

While an incident whose priority has a cadence (comms.service) is open, one `comms.reminder` timer
(subject: the incident id, payload {"since": the last stakeholder-visible update}) is due one interval after
that update: its creation, then each stakeholder note, which moves the timer. When it fires, the comms lead
(else the commander, else the assignee) is notified, the reminder goes on the timeline, and the timer fires
again an interval later until someone posts. Resolving, closing or cancelling removes it; reopening starts
it again; a priority change re-targets it from the same last update.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import SYSTEM
from tocsin.comms import service
from tocsin.db import utcnow
from tocsin.engine import service as engine
from tocsin.engine.handlers import Again, Done, EngineContext, Fired, Handler, Outcome
from tocsin.errors import NotFound
from tocsin.incidents import events
from tocsin.incidents import service as incidents
from tocsin.incidents.models import EntryKind, IncidentRole, IncidentState
from tocsin.incidents.service import IncidentView
from tocsin.notify import service as notify
from tocsin.notify.models import NotifyEvent, Urgency

REMINDER = "comms.reminder"
DONE_STATES = frozenset({IncidentState.resolved, IncidentState.closed, IncidentState.cancelled})
_STOPS = frozenset(f"transition.{s}" for s in DONE_STATES)
# Who is reminded, in order of preference.
_WHO = ((IncidentRole.comms_lead, "comms lead"), (IncidentRole.commander, "commander"))


def install() -> None:
    """Register this module's incident-event listeners (idempotent)."""
    events.LISTENERS.add(on_incident_event)


async def on_incident_event(session: AsyncSession, event: events.IncidentEvent) -> None:
    """Start, move, re-target or stop the incident's reminder as the incident changes."""
    action, subject = event.action, str(event.incident_id)
    if action in _STOPS:
        await engine.cancel(session=session, kind=REMINDER, subject=subject)
    elif action == "create":
        after = event.after or {}
        if after.get("state") == IncidentState.new and "priority" in after:
            await _arm(session, event.incident_id, int(after["priority"]), since=event.at, new=True)
    elif action in ("note.stakeholder", "priority") or _is_reopen(event):
        incident = await incidents.get_incident(session=session, actor=SYSTEM, ref=event.incident_id)
        if incident.state in DONE_STATES:
            return
        since = event.at
        if action == "priority":
            since = await _last_update(session, subject) or event.at
        await _arm(session, incident.id, incident.priority, since=since)


def _is_reopen(event: events.IncidentEvent) -> bool:
    before = event.before or {}
    return event.action == "transition.in_progress" and before.get("state") == IncidentState.resolved


async def _last_update(session: AsyncSession, subject: str) -> datetime | None:
    """The last stakeholder update the pending reminder counts from, if there is one."""
    for timer in await engine.pending(session=session, kind=REMINDER, subject=subject):
        return _since(timer.payload)
    return None


def _since(payload: Any) -> datetime | None:
    if isinstance(payload, dict) and isinstance(payload.get("since"), str):
        try:
            return datetime.fromisoformat(payload["since"])
        except ValueError:
            return None
    return None


async def _arm(
    session: AsyncSession, incident_id: int, priority: int, *, since: datetime, new: bool = False
) -> None:
    """Remind `interval` after `since`; with no interval for the priority, stop (a new incident has no
    reminder to stop)."""
    subject = str(incident_id)
    interval = await service.interval_for(session=session, priority=priority)
    if interval is None:
        if not new:
            await engine.cancel(session=session, kind=REMINDER, subject=subject)
        return
    await engine.schedule(
        session=session,
        kind=REMINDER,
        subject=subject,
        due_at=since + interval,
        payload={"since": since.isoformat()},
    )


def reminded(view: IncidentView) -> tuple[int, str] | None:
    """Who is reminded and as what: the comms lead, else the commander, else the assignee."""
    holders = {r.role: r.user_id for r in view.roles}
    for role, label in _WHO:
        if role in holders:
            return holders[role], label
    if view.incident.assignee_id is not None:
        return view.incident.assignee_id, "assignee"
    return None


async def remind(ctx: EngineContext, fired: Fired) -> Outcome:
    """`comms.reminder`: no stakeholder update for an interval; remind someone and fire again later."""
    try:
        incident_id = int(fired.subject)
    except ValueError:
        return Done()
    now = utcnow()
    async with ctx.db.write() as session:
        try:
            view = await incidents.get_detail(session=session, actor=SYSTEM, ref=incident_id)
        except NotFound:
            return Done()
        incident = view.incident
        interval = await service.interval_for(session=session, priority=incident.priority)
        if incident.state in DONE_STATES or interval is None:
            return Done()
        since = _since(fired.payload) or fired.due_at - interval
        if now < since + interval:  # the interval grew since the timer was set
            return Again(at=since + interval)
        await _remind(session, ctx.settings.base_url, view, fired, silence=now - since, now=now)
    following = fired.due_at + interval
    return Again(at=following if following > now else now + interval)


async def _remind(
    session: AsyncSession,
    base_url: str,
    view: IncidentView,
    fired: Fired,
    *,
    silence: timedelta,
    now: datetime,
) -> None:
    incident = view.incident
    minutes = int(silence.total_seconds() // 60)
    text = f"No stakeholder update for {minutes} min on {incident.ref}"
    who = reminded(view)
    if who is None:
        text += "; nobody to remind (no comms lead, commander or assignee)"
    else:
        user_id, label = who
        text += f"; reminded the {label}"
        await notify.notify_user(
            session=session,
            user_id=user_id,
            event=NotifyEvent.reminder,
            context={
                "incident": {
                    "id": incident.id,
                    "ref": incident.ref,
                    "title": incident.title,
                    "priority": f"P{incident.priority}",
                    "state": str(incident.state),
                },
                "silence_minutes": minutes,
            },
            urgency=Urgency.high if incident.priority == 1 else Urgency.low,
            idempotency_prefix=f"comms:{incident.id}:reminder:{int(fired.due_at.timestamp())}:u{user_id}",
            base_url=base_url,
        )
    await incidents.add_system_entry(
        session=session,
        incident_id=incident.id,
        kind=EntryKind.reminder,
        text=text,
        data={"silence_minutes": minutes, "reminded": None if who is None else who[0]},
        now=now,
    )


HANDLERS: dict[str, Handler] = {REMINDER: remind}

__all__ = ["HANDLERS", "REMINDER", "install", "on_incident_event", "remind", "reminded"]
