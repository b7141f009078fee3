"""The alerts domain's timer handlers: heartbeat deadlines, flapping alerts settling, routing what waited.

- `alerts.heartbeat` (subject: integration id): the monitor's check-in deadline; opens the missed-check-in
  alert when overdue, else fires again at the deadline a check-in moved it to.
- `alerts.flap` (subject: alert id): a flapping alert whose resolve was held; resolves it once it has been
  quiet for the flapping window.
- `alerts.flaps_prune` (subject: "all"): forget resolve times older than any flapping window
  (`resolving.prune`); ensured a day ahead when resolve times are written (looked at hourly per process).
- `alerts.maintenance` (subject: window id) and `alerts.reroute` ("unrouted"): a maintenance window ended,
  or intake stored alerts without routing; open alerts that have no incident are judged again and those
  now routed join or open their incidents.

Each handler does its work in its own short unit of work and is idempotent (firing is at least once).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import grouping, maintenance, resolving, triage
from tocsin.alerts.adapters.base import Action, AlertEvent
from tocsin.alerts.grouping import Batch, Touch
from tocsin.alerts.heartbeat import HEARTBEAT_TIMER
from tocsin.alerts.heartbeats import expire_heartbeat
from tocsin.alerts.models import Alert, AlertStatus, Severity, Suppression
from tocsin.alerts.summary import Did
from tocsin.db import utcnow
from tocsin.engine.handlers import Again, Done, EngineContext, Fired, Handler, Outcome

SWEEP_BATCH = 500


async def heartbeat_deadline(ctx: EngineContext, fired: Fired) -> Outcome:
    """Open the missed-check-in alert if the monitor is overdue; otherwise wait for its deadline."""
    async with ctx.db.write() as session:
        check = await expire_heartbeat(session=session, integration_id=int(fired.subject), now=utcnow())
    if check is None or check.overdue:
        return Done()  # gone, inactive, or alerted: the next check-in (or change) sets the timer again
    return Again(at=check.due_at)


async def flapping_settled(ctx: EngineContext, fired: Fired) -> Outcome:
    """Resolve a flapping alert whose held resolve has not been contradicted for a whole window."""
    quiet = timedelta(seconds=int((fired.payload or {}).get("quiet_seconds", 0)))
    now = utcnow()
    async with ctx.db.write() as session:
        alert = await session.scalar(select(Alert).where(Alert.id == int(fired.subject)).with_for_update())
        if alert is None or alert.status == AlertStatus.resolved or alert.held_resolve_at is None:
            return Done()  # resolved meanwhile, or firing again (a later resolve sets a new timer)
        if alert.held_resolve_at + quiet > now:
            return Again(at=alert.held_resolve_at + quiet)
        alert.status, alert.resolved_at, alert.held_resolve_at = AlertStatus.resolved, now, None
        touch = Touch(
            alert.id, (alert.integration_id, alert.dedup_key), Did.resolved, alert.summary, alert.incident_id
        )
        await session.flush()
        await grouping.settle(session, Batch([touch]), now)
    return Done()


def _event(alert: Alert) -> AlertEvent:
    return AlertEvent(
        dedup_key=alert.dedup_key,
        action=Action.trigger,
        summary=alert.summary,
        severity=Severity(alert.severity),
        source=alert.source,
        labels=dict(alert.labels),
        occurred_at=alert.started_at,
    )


async def route_waiting(session: AsyncSession, *, after_id: int = 0, limit: int = SWEEP_BATCH) -> int | None:
    """Judge again the open alerts without an incident (held by maintenance, or stored unrouted) and route
    those no longer held. Returns the last alert id looked at if there may be more, else None."""
    now = utcnow()
    alerts = list(
        await session.scalars(
            select(Alert)
            .where(
                Alert.incident_id.is_(None),
                Alert.status != AlertStatus.resolved,
                Alert.id > after_id,
                Alert.suppressed_by.is_distinct_from(Suppression.rule.value),
            )
            .order_by(Alert.id)
            .limit(limit)
        )
    )
    if not alerts:
        return None
    judged = await triage.load(session, {a.integration_id for a in alerts}, now)
    batch = Batch()
    for alert in alerts:
        event = _event(alert)
        decision = judged.decide(alert.integration_id, event)
        if not decision.routed:
            continue
        did = Did.released if alert.suppressed_by == Suppression.maintenance else Did.triggered
        if alert.suppressed_by is not None:
            batch.unsuppress.append(alert.id)
        key = (alert.integration_id, alert.dedup_key)
        batch.touches.append(Touch(alert.id, key, did, alert.summary, None, 1, event, decision))
    await grouping.settle(session, batch, now)
    return alerts[-1].id if len(alerts) == limit else None


async def sweep(ctx: EngineContext, fired: Fired) -> Outcome:
    """Route what waited, a batch per unit of work, until nothing is left."""
    after = int((fired.payload or {}).get("after_id", 0))
    async with ctx.db.write() as session:
        last = await route_waiting(session, after_id=after)
    return Done() if last is None else Again(at=utcnow(), payload={"after_id": last})


async def flaps_pruned(ctx: EngineContext, fired: Fired) -> Outcome:
    """Forget resolve times no flapping window reaches any more, a batch per unit of work."""
    async with ctx.db.write() as session:
        deleted = await resolving.prune(session, utcnow())
    return Again(at=utcnow()) if deleted == resolving.PRUNE_BATCH else Done()


HANDLERS: dict[str, Handler] = {
    HEARTBEAT_TIMER: heartbeat_deadline,
    resolving.TIMER: flapping_settled,
    resolving.PRUNE_TIMER: flaps_pruned,
    maintenance.TIMER: sweep,
    triage.REROUTE_TIMER: sweep,
}
