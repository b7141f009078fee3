"""Helpers for tests that follow alerts into incidents: services, integrations, events, their outcome."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import service
from tocsin.alerts.adapters.base import Action, AlertEvent
from tocsin.alerts.models import Alert, IntegrationKind, Severity
from tocsin.auth.permissions import SYSTEM
from tocsin.catalog import service as catalog
from tocsin.db import Database
from tocsin.incidents import service as incidents
from tocsin.incidents.models import EntryKind, Incident, IncidentState, ResolutionCode, TimelineEntry

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


async def new_service(db: Database, slug: str, tier: int = 2) -> int:
    async with db.write() as s:
        svc = await catalog.create_service(session=s, actor=SYSTEM, slug=slug, name=slug.title(), tier=tier)
        return svc.id


async def integration(
    db: Database,
    service_id: int,
    kind: IntegrationKind = IntegrationKind.alertmanager,
    config: dict[str, Any] | None = None,
    name: str | None = None,
) -> int:
    async with db.write() as s:
        row, _ = await service.create_integration(
            session=s,
            actor=SYSTEM,
            service_id=service_id,
            name=name or f"{kind} source",
            kind=kind,
            config=config,
        )
        return row.id


def am(
    key: str,
    alertname: str = "DiskFull",
    action: Action = Action.trigger,
    severity: Severity = Severity.critical,
    summary: str | None = None,
    **labels: str,
) -> AlertEvent:
    """An Alertmanager-like event: keyed by fingerprint, labelled with its alertname."""
    return AlertEvent(
        dedup_key=key,
        action=action,
        summary=summary if summary is not None else f"{alertname} on {key}",
        severity=severity,
        labels={"alertname": alertname, "instance": key, **labels} if alertname else dict(labels),
    )


def resolved(key: str) -> AlertEvent:
    return AlertEvent(dedup_key=key, action=Action.resolve)


async def send(
    db: Database, integration_id: int, *events: AlertEvent, now: datetime = T0
) -> service.IngestResult:
    async with db.write() as s:
        return await service.ingest(session=s, integration_id=integration_id, events=list(events), now=now)


async def alerts(db: Database) -> list[Alert]:
    async with db.read() as s:
        return list(await s.scalars(select(Alert).order_by(Alert.id)))


async def incident_list(db: Database) -> list[Incident]:
    async with db.read() as s:
        return list(await s.scalars(select(Incident).order_by(Incident.id)))


async def incident(db: Database, incident_id: int) -> Incident:
    async with db.read() as s:
        return await incidents.get_incident(session=s, actor=SYSTEM, ref=incident_id)


async def alert_entries(db: Database, incident_id: int) -> list[TimelineEntry]:
    async with db.read() as s:
        return list(
            await s.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.incident_id == incident_id, TimelineEntry.kind == EntryKind.alert)
                .order_by(TimelineEntry.id)
            )
        )


async def services_of(db: Database, incident_id: int) -> list[int]:
    async with db.read() as s:
        view = await incidents.get_detail(session=s, actor=SYSTEM, ref=incident_id)
    return list(view.service_ids)


async def resolve_incident(session: AsyncSession, incident_id: int, now: datetime | None = None) -> None:
    """A person resolves the incident (which resolves its open alerts)."""
    await incidents.transition(
        session=session,
        actor=SYSTEM,
        ref=incident_id,
        target=IncidentState.resolved,
        resolution_code=ResolutionCode.workaround_provided,
        resolution_summary="restarted",
        now=now,
    )
