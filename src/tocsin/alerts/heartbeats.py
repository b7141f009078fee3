"""Heartbeat monitors (dead man's switches) on the timer engine: check-ins, deadlines, missed check-ins.

Each active heartbeat integration has one timer, ("alerts.heartbeat", "<integration id>"), due when its
next check-in is overdue. Creating the integration, changing it and every check-in move the timer (in the
same transaction); when it fires, `expire_heartbeat` opens the missed-check-in alert if the monitor is still
overdue, and that alert is routed and grouped like any other. The next check-in resolves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.adapters.base import Action, AlertEvent
from tocsin.alerts.heartbeat import HEARTBEAT_ALERTNAME, HEARTBEAT_KEY, HEARTBEAT_TIMER, heartbeat_due
from tocsin.alerts.ingest import Delivery, IngestResult, ingest, ingest_many
from tocsin.alerts.models import Integration, IntegrationKind
from tocsin.alerts.options import HeartbeatOptions, options_for
from tocsin.engine import service as engine


@dataclass(frozen=True)
class HeartbeatCheck:
    """What a deadline check found: whether the monitor is overdue, and when it is (or was) due."""

    overdue: bool
    due_at: datetime


def _options(integration: Integration) -> HeartbeatOptions:
    options = options_for(integration.kind, integration.config)
    assert isinstance(options, HeartbeatOptions)
    return options


def due_at(integration: Integration) -> datetime:
    """When the heartbeat is next overdue: the last check-in (or creation) plus interval and grace."""
    options = _options(integration)
    return heartbeat_due(
        integration.last_checkin_at or integration.created_at,
        timedelta(seconds=options.interval_seconds),
        timedelta(seconds=options.grace_seconds),
    )


async def watch(*, session: AsyncSession, integration: Integration) -> None:
    """Set (or move) the integration's deadline timer if it is an active heartbeat, else remove it."""
    subject = str(integration.id)
    if integration.kind == IntegrationKind.heartbeat and integration.active:
        await engine.schedule(
            session=session, kind=HEARTBEAT_TIMER, subject=subject, due_at=due_at(integration)
        )
    else:
        await engine.cancel(session=session, kind=HEARTBEAT_TIMER, subject=subject)


def checkin_event() -> AlertEvent:
    """What a check-in says: the missed-check-in alert, if open, is resolved."""
    return AlertEvent(dedup_key=HEARTBEAT_KEY, action=Action.resolve)


async def checkin(*, session: AsyncSession, integration_id: int, now: datetime) -> IngestResult:
    """A heartbeat check-in: record its time, move the deadline, resolve the missed-check-in alert if open."""
    delivery = Delivery(integration_id, [checkin_event()], checkin=True)
    return await ingest_many(session=session, deliveries=[delivery], now=now)


async def expire_heartbeat(
    *, session: AsyncSession, integration_id: int, now: datetime
) -> HeartbeatCheck | None:
    """Open the missed-check-in alert if the heartbeat is overdue at `now` (the timer engine calls this at
    `due_at`; a check-in moves the deadline). None when the integration is gone, inactive or no heartbeat."""
    integration = await session.scalar(
        select(Integration).where(Integration.id == integration_id).with_for_update()
    )  # a concurrent check-in waits, or wins
    if integration is None or not integration.active or integration.kind != IntegrationKind.heartbeat:
        return None
    options = _options(integration)
    last = integration.last_checkin_at or integration.created_at
    due = due_at(integration)
    if now < due:
        return HeartbeatCheck(overdue=False, due_at=due)
    heard = (
        f"last check-in {last:%Y-%m-%d %H:%M:%S} UTC" if integration.last_checkin_at else "no check-in yet"
    )
    event = AlertEvent(
        dedup_key=HEARTBEAT_KEY,
        action=Action.trigger,
        severity=options.default_severity,
        summary=f"{integration.name}: missed its check-in ({heard})",
        labels={"alertname": HEARTBEAT_ALERTNAME, "heartbeat": integration.name},
        details={
            "last_checkin_at": last.isoformat(),
            "due_at": due.isoformat(),
            "interval_seconds": options.interval_seconds,
            "grace_seconds": options.grace_seconds,
        },
    )
    await ingest(session=session, integration_id=integration.id, events=[event], now=now)
    return HeartbeatCheck(overdue=True, due_at=due)
