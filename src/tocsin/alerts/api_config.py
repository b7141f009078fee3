"""REST routes for what routes and quiets alerts: routing rules, maintenance windows, per-service settings."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import APIRouter, Depends

from tocsin.alerts import service
from tocsin.alerts.schemas import (
    AlertSettingsIn,
    AlertSettingsOut,
    RuleIn,
    RuleOrder,
    RuleOut,
    RulePatch,
    WindowIn,
    WindowOut,
    WindowPatch,
)
from tocsin.api_common import API
from tocsin.auth.deps import Ctx, ctx

router = APIRouter(prefix=API)
_RULES: list[str | Enum] = ["routing rules"]
_WINDOWS: list[str | Enum] = ["maintenance windows"]
_SETTINGS: list[str | Enum] = ["alert settings"]


def _conditions(body: dict[str, Any], name: str) -> dict[str, Any]:
    """Conditions as stored data (unset fields left out)."""
    if body.get(name) is not None:
        body[name] = [{k: v for k, v in c.items() if v is not None} for c in body[name]]
    return body


@router.get("/routing-rules", response_model=list[RuleOut], tags=_RULES)
async def list_rules(c: Ctx = Depends(ctx)) -> list[RuleOut]:
    """Every rule in the order intake tries them; the first match wins."""
    async with c.db.read() as s:
        return [RuleOut.model_validate(r) for r in await service.list_rules(session=s, actor=c.actor)]


@router.post("/routing-rules", response_model=RuleOut, status_code=201, tags=_RULES)
async def create_rule(body: RuleIn, c: Ctx = Depends(ctx)) -> RuleOut:
    async with c.db.write() as s:
        rule = await service.create_rule(
            session=s, actor=c.actor, **_conditions(body.model_dump(), "conditions")
        )
    return RuleOut.model_validate(rule)


@router.post("/routing-rules/reorder", response_model=list[RuleOut], tags=_RULES)
async def reorder_rules(body: RuleOrder, c: Ctx = Depends(ctx)) -> list[RuleOut]:
    """Put every rule in the given order (all ids, each once)."""
    async with c.db.write() as s:
        rules = await service.reorder_rules(session=s, actor=c.actor, ids=body.ids)
    return [RuleOut.model_validate(r) for r in rules]


@router.get("/routing-rules/{rule_id}", response_model=RuleOut, tags=_RULES)
async def get_rule(rule_id: int, c: Ctx = Depends(ctx)) -> RuleOut:
    async with c.db.read() as s:
        return RuleOut.model_validate(await service.get_rule(session=s, actor=c.actor, rule_id=rule_id))


@router.patch("/routing-rules/{rule_id}", response_model=RuleOut, tags=_RULES)
async def update_rule(rule_id: int, body: RulePatch, c: Ctx = Depends(ctx)) -> RuleOut:
    """Change the fields given (null clears a scope or target); `position` moves the rule."""
    changes = _conditions(body.model_dump(exclude_unset=True), "conditions")
    async with c.db.write() as s:
        rule = await service.update_rule(session=s, actor=c.actor, rule_id=rule_id, changes=changes)
    return RuleOut.model_validate(rule)


@router.delete("/routing-rules/{rule_id}", status_code=204, tags=_RULES)
async def delete_rule(rule_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.delete_rule(session=s, actor=c.actor, rule_id=rule_id)


@router.get("/maintenance-windows", response_model=list[WindowOut], tags=_WINDOWS)
async def list_windows(
    service_id: int | None = None, include_past: bool = False, c: Ctx = Depends(ctx)
) -> list[WindowOut]:
    """Current and upcoming windows by start time (`include_past` for the ended ones too)."""
    async with c.db.read() as s:
        rows = await service.list_windows(
            session=s, actor=c.actor, service_id=service_id, include_past=include_past
        )
    return [WindowOut.model_validate(w) for w in rows]


@router.post("/maintenance-windows", response_model=WindowOut, status_code=201, tags=_WINDOWS)
async def create_window(body: WindowIn, c: Ctx = Depends(ctx)) -> WindowOut:
    """Alerts for the service (and/or matching the matchers) received inside the window are stored,
    flagged suppressed, and open no incident; those still open when it ends are routed then."""
    async with c.db.write() as s:
        window = await service.create_window(
            session=s, actor=c.actor, **_conditions(body.model_dump(), "matchers")
        )
    return WindowOut.model_validate(window)


@router.get("/maintenance-windows/{window_id}", response_model=WindowOut, tags=_WINDOWS)
async def get_window(window_id: int, c: Ctx = Depends(ctx)) -> WindowOut:
    async with c.db.read() as s:
        return WindowOut.model_validate(
            await service.get_window(session=s, actor=c.actor, window_id=window_id)
        )


@router.patch("/maintenance-windows/{window_id}", response_model=WindowOut, tags=_WINDOWS)
async def update_window(window_id: int, body: WindowPatch, c: Ctx = Depends(ctx)) -> WindowOut:
    changes = _conditions(body.model_dump(exclude_unset=True), "matchers")
    async with c.db.write() as s:
        window = await service.update_window(session=s, actor=c.actor, window_id=window_id, changes=changes)
    return WindowOut.model_validate(window)


@router.delete("/maintenance-windows/{window_id}", status_code=204, tags=_WINDOWS)
async def delete_window(window_id: int, c: Ctx = Depends(ctx)) -> None:
    """Cancel the window; the open alerts it held are routed at once."""
    async with c.db.write() as s:
        await service.delete_window(session=s, actor=c.actor, window_id=window_id)


@router.get("/alert-settings/{service_id}", response_model=AlertSettingsOut, tags=_SETTINGS)
async def get_alert_settings(service_id: int, c: Ctx = Depends(ctx)) -> AlertSettingsOut:
    """The service's grouping, auto-resolve and flapping settings (the defaults until changed)."""
    async with c.db.read() as s:
        found = await service.get_alert_settings(session=s, actor=c.actor, service_id=service_id)
    return AlertSettingsOut.model_validate(found.view())


@router.put("/alert-settings/{service_id}", response_model=AlertSettingsOut, tags=_SETTINGS)
async def put_alert_settings(
    service_id: int, body: AlertSettingsIn, c: Ctx = Depends(ctx)
) -> AlertSettingsOut:
    """Replace the service's alert settings; fields left out take their defaults."""
    async with c.db.write() as s:
        saved = await service.put_alert_settings(
            session=s, actor=c.actor, service_id=service_id, **body.model_dump()
        )
    return AlertSettingsOut.model_validate(saved.view())
