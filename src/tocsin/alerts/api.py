"""REST routes for the alerts domain: integrations and their keys, the alert list, and (mounted from
api_intake and api_config) the intake endpoints, routing rules, maintenance windows and alert settings.

The router's lifespan runs this process's intake writer and, when `smtp_listen_port` is set, the inbound
mail listener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter, Depends, FastAPI, Query, Request

from tocsin.alerts import service
from tocsin.alerts.api_config import router as config_router
from tocsin.alerts.api_intake import intake_of
from tocsin.alerts.api_intake import router as intake_router
from tocsin.alerts.intake import Intake
from tocsin.alerts.models import Alert, AlertStatus, Integration, IntegrationKind, Severity
from tocsin.alerts.schemas import (
    AlertDetail,
    AlertOut,
    IntegrationIn,
    IntegrationKey,
    IntegrationOut,
    IntegrationPatch,
)
from tocsin.alerts.smtp import serve_smtp
from tocsin.api_common import API, Page
from tocsin.auth.deps import Ctx, ctx
from tocsin.config import Settings

log = structlog.get_logger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the intake writer (and the mail listener) once the app's database is open; stop them before
    the database closes."""
    intake = Intake(app.state.db)
    app.state.alert_intake = intake
    await intake.start()
    settings: Settings = app.state.settings
    mail = None
    try:
        if settings.smtp_listen_port is not None:
            mail = await serve_smtp(app.state.db, settings.smtp_listen_host, settings.smtp_listen_port)
            app.state.alert_mail = mail
            log.info("mail intake listening", host=settings.smtp_listen_host, port=settings.smtp_listen_port)
        yield
    finally:
        if mail is not None:
            mail.close()
            await mail.wait_closed()
        await intake.stop()


router = APIRouter(lifespan=lifespan)
api = APIRouter(prefix=API)
A = TypeVar("A", AlertOut, AlertDetail)


def intake_url(base_url: str, kind: str, key: str) -> str:
    """Where a sender delivers to this integration (for email: the address to mail)."""
    base = base_url.rstrip("/")
    if kind == IntegrationKind.email:
        return f"{key}@{urlsplit(base).hostname or 'localhost'}"
    if kind == IntegrationKind.pagerduty:
        return f"{base}/v2/enqueue"  # with the key as routing_key; /intake/pagerduty/{key} also works
    return f"{base}/intake/{kind}/{key}"


def _with_key(c: Ctx, integration: Integration, key: str) -> IntegrationKey:
    url = intake_url(c.settings.base_url, integration.kind, key)
    return IntegrationKey(**IntegrationOut.model_validate(integration).model_dump(), key=key, intake_url=url)


def _alert(model: type[A], alert: Alert, service_id: int) -> A:
    fields: dict[str, Any] = {
        name: getattr(alert, name) for name in model.model_fields if name != "service_id"
    }
    return model.model_validate({**fields, "service_id": service_id})


@api.get("/integrations", response_model=list[IntegrationOut], tags=["integrations"])
async def list_integrations(
    service_id: int | None = None, kind: IntegrationKind | None = None, c: Ctx = Depends(ctx)
) -> list[IntegrationOut]:
    async with c.db.read() as s:
        rows = await service.list_integrations(session=s, actor=c.actor, service_id=service_id, kind=kind)
    return [IntegrationOut.model_validate(i) for i in rows]


@api.post("/integrations", response_model=IntegrationKey, status_code=201, tags=["integrations"])
async def create_integration(body: IntegrationIn, c: Ctx = Depends(ctx)) -> IntegrationKey:
    """Add a source of alerts; the answer holds the key and the intake URL, shown this once."""
    async with c.db.write() as s:
        integration, key = await service.create_integration(session=s, actor=c.actor, **body.model_dump())
    return _with_key(c, integration, key)


@api.get("/integrations/{integration_id}", response_model=IntegrationOut, tags=["integrations"])
async def get_integration(integration_id: int, c: Ctx = Depends(ctx)) -> IntegrationOut:
    async with c.db.read() as s:
        return IntegrationOut.model_validate(
            await service.get_integration(session=s, actor=c.actor, integration_id=integration_id)
        )


@api.patch("/integrations/{integration_id}", response_model=IntegrationOut, tags=["integrations"])
async def update_integration(
    integration_id: int, body: IntegrationPatch, request: Request, c: Ctx = Depends(ctx)
) -> IntegrationOut:
    async with c.db.write() as s:
        integration = await service.update_integration(
            session=s, actor=c.actor, integration_id=integration_id, **body.model_dump(exclude_unset=True)
        )
    intake_of(request).forget()
    return IntegrationOut.model_validate(integration)


@api.delete("/integrations/{integration_id}", status_code=204, tags=["integrations"])
async def delete_integration(integration_id: int, request: Request, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.delete_integration(session=s, actor=c.actor, integration_id=integration_id)
    intake_of(request).forget()


@api.post("/integrations/{integration_id}/rotate-key", response_model=IntegrationKey, tags=["integrations"])
async def rotate_key(integration_id: int, request: Request, c: Ctx = Depends(ctx)) -> IntegrationKey:
    """Replace the key; the old one stops working. The new key is shown this once."""
    async with c.db.write() as s:
        integration, key = await service.rotate_key(session=s, actor=c.actor, integration_id=integration_id)
    intake_of(request).forget()
    return _with_key(c, integration, key)


@api.get("/alerts", response_model=Page[AlertOut], tags=["alerts"])
async def list_alerts(
    status: list[AlertStatus] | None = Query(None),
    severity: list[Severity] | None = Query(None),
    integration_id: int | None = None,
    service_id: int | None = None,
    incident_id: int | None = None,
    suppressed: bool | None = None,
    q: str | None = Query(None, max_length=200),
    limit: int = Query(50, ge=1),
    cursor: str | None = None,
    c: Ctx = Depends(ctx),
) -> Page[AlertOut]:
    """Newest first; `status` and `severity` may repeat (`?status=triggered&status=acknowledged`)."""
    where = service.AlertFilter(
        status=status,
        severity=severity,
        integration_id=integration_id,
        service_id=service_id,
        incident_id=incident_id,
        suppressed=suppressed,
        q=q,
    )
    async with c.db.read() as s:
        rows, next_cursor = await service.list_alerts(
            session=s, actor=c.actor, where=where, cursor=cursor, limit=min(limit, c.settings.page_size_max)
        )
    return Page[AlertOut](items=[_alert(AlertOut, a, sid) for a, sid in rows], next_cursor=next_cursor)


@api.get("/alerts/{alert_id}", response_model=AlertDetail, tags=["alerts"])
async def get_alert(alert_id: int, c: Ctx = Depends(ctx)) -> AlertDetail:
    async with c.db.read() as s:
        alert, service_id = await service.get_alert(session=s, actor=c.actor, alert_id=alert_id)
    return _alert(AlertDetail, alert, service_id)


# Intake first: it carries the traffic, and routes are matched in order.
router.include_router(intake_router)
router.include_router(api)
router.include_router(config_router)
