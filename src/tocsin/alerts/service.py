"""Alert operations: integrations and their keys, reading alerts, ingesting events, heartbeats and mail;
re-exports routing rules (rules.py), maintenance windows (maintenance.py) and per-service alert settings
(alert_settings.py).

Other domains reach alerts only through this module. Integration changes need Can.manage_catalog and are
audited; reading needs Can.read_all. Alert events are machine events and are recorded in the alert rows
themselves (count, first/last seen, acknowledged/resolved times, latest raw payload), not in the audit log.
Nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from tocsin.alerts import snapshot
from tocsin.alerts.adapters import adapter_for
from tocsin.alerts.adapters.base import IntakeRequest, PayloadError
from tocsin.alerts.alert_settings import AlertSettings, get_alert_settings, put_alert_settings
from tocsin.alerts.heartbeat import HEARTBEAT_TIMER
from tocsin.alerts.heartbeats import HeartbeatCheck, checkin, checkin_event, expire_heartbeat, watch
from tocsin.alerts.ingest import Delivery, IngestResult, ingest, ingest_many
from tocsin.alerts.maintenance import create_window, delete_window, get_window, list_windows, update_window
from tocsin.alerts.models import Alert, AlertStatus, Integration, IntegrationKind, Severity
from tocsin.alerts.options import options_for
from tocsin.alerts.refs import check_service
from tocsin.alerts.rules import create_rule, delete_rule, get_rule, list_rules, reorder_rules, update_rule
from tocsin.api_common import decode_cursor, encode_cursor
from tocsin.audit import service as audit
from tocsin.auth.permissions import Actor, Can
from tocsin.auth.service import hash_secret, require
from tocsin.db import utcnow
from tocsin.engine import service as engine
from tocsin.errors import Conflict, Invalid, NotFound

__all__ = [
    "AlertFilter",
    "AlertSettings",
    "Delivery",
    "HeartbeatCheck",
    "IngestResult",
    "checkin",
    "checkin_event",
    "create_integration",
    "create_rule",
    "create_window",
    "delete_integration",
    "delete_rule",
    "delete_window",
    "email_integration",
    "expire_heartbeat",
    "get_alert",
    "get_alert_settings",
    "get_integration",
    "get_rule",
    "get_window",
    "ingest",
    "ingest_email",
    "ingest_many",
    "integration_by_key",
    "list_alerts",
    "list_integrations",
    "list_rules",
    "list_windows",
    "new_key",
    "put_alert_settings",
    "reorder_rules",
    "rotate_key",
    "update_integration",
    "update_rule",
    "update_window",
]


# --- integrations ----------------------------------------------------------------------------------


def new_key() -> str:
    """160 random bits as 32 lower-case base32 characters: the length PagerDuty clients expect of a routing
    key, and safe as the local part of a mail address (which some mail servers lower-case)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().lower()


def _key_hash(key: str) -> str:
    return hash_secret(key.strip().lower())


def _view(integration: Integration) -> dict[str, Any]:
    return {
        "service_id": integration.service_id,
        "name": integration.name,
        "kind": integration.kind,
        "key_prefix": integration.key_prefix,
        "config": integration.config,
        "active": integration.active,
    }


async def create_integration(
    *,
    session: AsyncSession,
    actor: Actor,
    service_id: int,
    name: str,
    kind: IntegrationKind,
    config: dict[str, Any] | None = None,
    active: bool = True,
) -> tuple[Integration, str]:
    """Add a source of alerts to a service; the plaintext key is returned once and only its hash is kept."""
    require(actor, Can.manage_catalog)
    await check_service(session, service_id)
    options = options_for(kind, config)
    key = new_key()
    integration = Integration(
        service_id=service_id,
        name=name,
        kind=IntegrationKind(kind),
        key_hash=_key_hash(key),
        key_prefix=key[:8],
        config=options.model_dump(mode="json"),
        active=active,
        created_at=utcnow(),
    )
    session.add(integration)
    await session.flush()
    await watch(session=session, integration=integration)
    audit.record(
        session=session,
        actor=actor.ref,
        action="integration.create",
        entity_type="integration",
        entity_id=integration.id,
        after=_view(integration),
    )
    return integration, key


async def get_integration(*, session: AsyncSession, actor: Actor, integration_id: int) -> Integration:
    require(actor, Can.read_all)
    integration = await session.get(Integration, integration_id)
    if integration is None:
        raise NotFound(f"no integration with id {integration_id}")
    return integration


async def list_integrations(
    *, session: AsyncSession, actor: Actor, service_id: int | None = None, kind: IntegrationKind | None = None
) -> list[Integration]:
    require(actor, Can.read_all)
    stmt = select(Integration).order_by(Integration.id)
    if service_id is not None:
        stmt = stmt.where(Integration.service_id == service_id)
    if kind is not None:
        stmt = stmt.where(Integration.kind == kind)
    return list(await session.scalars(stmt))


async def update_integration(
    *,
    session: AsyncSession,
    actor: Actor,
    integration_id: int,
    name: str | None = None,
    service_id: int | None = None,
    config: dict[str, Any] | None = None,
    active: bool | None = None,
) -> Integration:
    """Change what was given; `config` replaces the whole configuration (absent fields take defaults)."""
    require(actor, Can.manage_catalog)
    integration = await get_integration(session=session, actor=actor, integration_id=integration_id)
    before = _view(integration)
    if service_id is not None and service_id != integration.service_id:
        await check_service(session, service_id)
        integration.service_id = service_id
    if name is not None:
        integration.name = name
    if config is not None:
        integration.config = options_for(integration.kind, config).model_dump(mode="json")
    if active is not None:
        integration.active = active
    await watch(session=session, integration=integration)
    snapshot.changed()
    audit.record(
        session=session,
        actor=actor.ref,
        action="integration.update",
        entity_type="integration",
        entity_id=integration.id,
        before=before,
        after=_view(integration),
    )
    return integration


async def rotate_key(*, session: AsyncSession, actor: Actor, integration_id: int) -> tuple[Integration, str]:
    """Issue a new key at once; the old one stops working (after at most the intake cache's few seconds)."""
    require(actor, Can.manage_catalog)
    integration = await get_integration(session=session, actor=actor, integration_id=integration_id)
    before = _view(integration)
    key = new_key()
    integration.key_hash, integration.key_prefix = _key_hash(key), key[:8]
    audit.record(
        session=session,
        actor=actor.ref,
        action="integration.rotate_key",
        entity_type="integration",
        entity_id=integration.id,
        before=before,
        after=_view(integration),
    )
    return integration, key


async def delete_integration(*, session: AsyncSession, actor: Actor, integration_id: int) -> None:
    """Remove an integration that never produced an alert; one with history is deactivated instead."""
    require(actor, Can.manage_catalog)
    integration = await get_integration(session=session, actor=actor, integration_id=integration_id)
    alerts = int(
        await session.scalar(select(func.count(Alert.id)).where(Alert.integration_id == integration.id)) or 0
    )
    if alerts:
        raise Conflict(
            f"integration {integration_id} has {alerts} alert(s) on record; deactivate it instead "
            "(PATCH with active=false) so their history stays"
        )
    audit.record(
        session=session,
        actor=actor.ref,
        action="integration.delete",
        entity_type="integration",
        entity_id=integration.id,
        before=_view(integration),
    )
    await engine.cancel(session=session, kind=HEARTBEAT_TIMER, subject=str(integration.id))
    await session.delete(integration)
    await session.flush()


async def integration_by_key(*, session: AsyncSession, key: str) -> Integration | None:
    """The integration a plaintext key belongs to (active or not), or None."""
    if not key or len(key) > 200:
        return None
    return await session.scalar(select(Integration).where(Integration.key_hash == _key_hash(key)))


# --- alerts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertFilter:
    status: list[AlertStatus] | None = None
    severity: list[Severity] | None = None
    integration_id: int | None = None
    service_id: int | None = None
    incident_id: int | None = None
    suppressed: bool | None = None
    q: str | None = None


async def list_alerts(
    *, session: AsyncSession, actor: Actor, where: AlertFilter, limit: int = 50, cursor: str | None = None
) -> tuple[list[tuple[Alert, int]], str | None]:
    """Newest alerts first (by id, which never changes, so pages neither skip nor repeat), each with its
    service id; the second value is the cursor of the next page, if any."""
    require(actor, Can.read_all)
    stmt = select(Alert, Integration.service_id).join(Integration, Integration.id == Alert.integration_id)
    if where.status:
        stmt = stmt.where(Alert.status.in_(where.status))
    if where.severity:
        stmt = stmt.where(Alert.severity.in_(where.severity))
    if where.integration_id is not None:
        stmt = stmt.where(Alert.integration_id == where.integration_id)
    if where.service_id is not None:
        stmt = stmt.where(Integration.service_id == where.service_id)
    if where.incident_id is not None:
        stmt = stmt.where(Alert.incident_id == where.incident_id)
    if where.suppressed is not None:
        stmt = stmt.where(
            Alert.suppressed_by.is_not(None) if where.suppressed else Alert.suppressed_by.is_(None)
        )
    if where.q:
        stmt = stmt.where(
            Alert.summary.icontains(where.q, autoescape=True)
            | Alert.dedup_key.icontains(where.q, autoescape=True)
        )
    if cursor is not None:
        values = decode_cursor(cursor)
        if len(values) != 1 or not isinstance(values[0], int):
            raise Invalid("cursor is not one this API issued; pass next_cursor from the previous page")
        stmt = stmt.where(Alert.id < values[0])
    rows = [(a, int(s)) for a, s in (await session.execute(stmt.order_by(Alert.id.desc()).limit(limit + 1)))]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor([rows[-1][0].id]) if more and rows else None


async def get_alert(*, session: AsyncSession, actor: Actor, alert_id: int) -> tuple[Alert, int]:
    """One alert with its raw payload loaded, and its service id."""
    require(actor, Can.read_all)
    row = (
        await session.execute(
            select(Alert, Integration.service_id)
            .join(Integration, Integration.id == Alert.integration_id)
            .where(Alert.id == alert_id)
            .options(undefer(Alert.raw))
        )
    ).first()
    if row is None:
        raise NotFound(f"no alert with id {alert_id}")
    return row[0], int(row[1])


# --- mail ------------------------------------------------------------------------------------------


def recipient_key(recipient: str) -> str:
    """The integration key in `<key>[+tag]@host`."""
    local = recipient.strip().strip("<>").rsplit("@", 1)[0]
    return local.partition("+")[0].strip().lower()


async def email_integration(*, session: AsyncSession, recipient: str) -> Integration | None:
    """The active email integration that receives mail sent to `recipient`, if any."""
    integration = await integration_by_key(session=session, key=recipient_key(recipient))
    if integration is None or not integration.active or integration.kind != IntegrationKind.email:
        return None
    return integration


async def ingest_email(*, session: AsyncSession, recipient: str, raw: bytes, now: datetime) -> IngestResult:
    """A mail to `<integration key>[+dedup key]@<any host>` opens, updates or resolves an alert."""
    integration = await email_integration(session=session, recipient=recipient)
    if integration is None:
        raise NotFound(f"no active email integration receives mail for {recipient}")
    adapter = adapter_for(integration.kind, options_for(integration.kind, integration.config))
    try:
        events = adapter.parse(IntakeRequest(body=raw, recipient=recipient))
    except PayloadError as exc:
        raise Invalid(exc.message, errors=exc.errors) from exc
    return await ingest(session=session, integration_id=integration.id, events=events, now=now)
