"""Closing the loop between alerts and incidents, both ways, in the transaction that causes it.

- When every alert of an incident is resolved, the incident gets `mitigated_at` and, if its service's alert
  settings say `auto_resolve` (the default), is resolved: code solution_provided, "All alerts resolved".
- When a sender acknowledges an alert (PagerDuty Events `acknowledge`, an `ACK:` mail subject, a CloudEvent
  or generic integration saying so), its incident is acknowledged if nobody has taken it on yet, which stops
  its escalation, as in PagerDuty. Only the alert's change from triggered counts: a sender repeating its
  acknowledgement does not undo a reassignment or a timed-out acknowledgement. An incident already being
  worked keeps its state.
- When a person resolves or cancels an incident, its open alerts are resolved with it (the listener that
  `install()` registers), so the next trigger of the same key opens a new alert and a new incident.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import structlog
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import snapshot
from tocsin.alerts.alert_settings import settings_for
from tocsin.alerts.models import OPEN_ALERT, Alert, AlertGroup, AlertStatus
from tocsin.auth.permissions import SYSTEM
from tocsin.errors import Invalid, NotFound
from tocsin.incidents import service as incidents
from tocsin.incidents.events import LISTENERS, IncidentEvent
from tocsin.incidents.lifecycle import OPEN_STATES
from tocsin.incidents.models import EntryKind, IncidentState, ResolutionCode

log = structlog.get_logger(__name__)

AUTO_RESOLUTION = "All alerts resolved"


async def mitigate(session: AsyncSession, incident_ids: Collection[int], now: datetime) -> list[int]:
    """Mitigate (and, per settings, resolve) those of the incidents with no open alert left; the ids of the
    incidents resolved."""
    candidates = sorted(incident_ids)
    resolved_ids: list[int] = []
    if not candidates:
        return resolved_ids
    still_open = set(
        await session.scalars(
            select(Alert.incident_id).where(Alert.incident_id.in_(candidates), text(OPEN_ALERT)).distinct()
        )
    )
    quiet = [i for i in candidates if i not in still_open]
    if not quiet:
        return resolved_ids
    rows = await session.execute(
        select(AlertGroup.incident_id, func.min(AlertGroup.service_id))
        .where(AlertGroup.incident_id.in_(quiet))
        .group_by(AlertGroup.incident_id)
    )
    services = {int(r[0]): int(r[1]) for r in rows if r[0] is not None}
    settings = await snapshot.settings(session, set(services.values()), settings_for)
    for incident_id in quiet:
        incident = await incidents.get_incident(session=session, actor=SYSTEM, ref=incident_id)
        if incident.state not in OPEN_STATES:
            continue
        try:
            if incident.mitigated_at is None:
                await incidents.update_incident(
                    session=session, actor=SYSTEM, ref=incident_id, mitigated_at=now, now=now
                )
            service_id = services.get(incident_id)
            if service_id is None or settings[service_id].auto_resolve:
                await incidents.transition(
                    session=session,
                    actor=SYSTEM,
                    ref=incident_id,
                    target=IncidentState.resolved,
                    resolution_code=ResolutionCode.solution_provided,
                    resolution_summary=AUTO_RESOLUTION,
                    now=now,
                )
                resolved_ids.append(incident_id)
        except Invalid as exc:  # refused before writing (e.g. a time a person set); alerts stay stored
            log.warning(
                "incident not mitigated after its alerts resolved", incident_id=incident_id, reason=exc.detail
            )
    return resolved_ids


ACKNOWLEDGED_BY_SENDER = "the sender acknowledged its alert"


async def acknowledge(session: AsyncSession, incident_ids: Collection[int], now: datetime) -> list[int]:
    """Acknowledge those of the incidents still new (one of their alerts was acknowledged by its sender);
    the ids of the incidents acknowledged."""
    acknowledged: list[int] = []
    for incident_id in sorted(incident_ids):
        try:  # locked: a person acting on it meanwhile waits, or went first and is seen here
            incident = await incidents.get_incident_to_work(session=session, actor=SYSTEM, ref=incident_id)
        except NotFound:
            continue
        if incident.state != IncidentState.new:
            continue
        await incidents.transition(
            session=session,
            actor=SYSTEM,
            ref=incident_id,
            target=IncidentState.acknowledged,
            reason=ACKNOWLEDGED_BY_SENDER,
            now=now,
        )
        acknowledged.append(incident_id)
    return acknowledged


_CLOSING = frozenset({"transition.resolved", "transition.cancelled"})


async def on_incident_event(session: AsyncSession, event: IncidentEvent) -> None:
    """An incident resolved or cancelled resolves its open alerts (the next trigger opens a new alert)."""
    if event.action not in _CLOSING:
        return
    resolved = list(
        await session.scalars(
            update(Alert)
            .where(Alert.incident_id == event.incident_id, text(OPEN_ALERT))
            .values(status=AlertStatus.resolved.value, resolved_at=event.at, held_resolve_at=None)
            .returning(Alert.id),
            execution_options={"synchronize_session": False},
        )
    )
    if resolved:
        await incidents.add_system_entry(
            session=session,
            incident_id=event.incident_id,
            kind=EntryKind.alert,
            text=f"{len(resolved)} open alert(s) resolved with the incident",
            data={"alerts": {"resolved": sorted(resolved)[:100]}, "counts": {"resolved": len(resolved)}},
            now=event.at,
        )


def install() -> None:
    """Register the listener that resolves an incident's alerts with it (idempotent)."""
    LISTENERS.add(on_incident_event)
