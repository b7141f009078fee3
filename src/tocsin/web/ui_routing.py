"""Alert routing rules, tried in order: which alerts open incidents (and with what), are suppressed or
dropped."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request, Response

from tocsin.alerts import service as alerts
from tocsin.alerts.routing import RuleAction
from tocsin.auth.permissions import Can
from tocsin.auth.service import require
from tocsin.catalog import service as catalog
from tocsin.incidents import service as incidents
from tocsin.web import forms
from tocsin.web.render import html
from tocsin.web.routing import see_other, ui_router
from tocsin.web.session import Ui, ui

router = ui_router()
OptionalId = Annotated[int | None, Form(ge=1, le=2**63 - 1)]
OptionalLevel = Annotated[int | None, Form(ge=1, le=3)]


@router.get("/admin/routing")
async def rules(request: Request, c: Ui = Depends(ui)) -> Response:
    require(c.actor, Can.manage_config)
    async with c.db.read() as s:
        rows = await alerts.list_rules(session=s, actor=c.actor)
        services = {sv.id: sv for sv in (await catalog.list_services(session=s, limit=500))[0]}
        integrations = {i.id: i for i in await alerts.list_integrations(session=s, actor=c.actor)}
        types = await incidents.list_types(session=s, include_inactive=False)
    context = {
        "rows": rows,
        "services": services,
        "integrations": integrations,
        "types": types,
        "actions": list(RuleAction),
        "shown": forms.format_conditions,
    }
    return html(request, "admin/routing.html", context)


@router.post("/admin/routing")
async def create_rule(
    name: Annotated[str, Form(min_length=1, max_length=200)],
    action: Annotated[RuleAction, Form()] = RuleAction.route,
    conditions: Annotated[str, Form(max_length=20_000)] = "",
    integration_id: OptionalId = None,
    service_id: OptionalId = None,
    target_service_id: OptionalId = None,
    type_key: Annotated[str | None, Form(max_length=40)] = None,
    impact: OptionalLevel = None,
    urgency: OptionalLevel = None,
    c: Ui = Depends(ui),
) -> Response:
    """A rule at the end of the list; conditions one a line, e.g. `labels.env equals production`."""
    async with c.db.write() as s:
        await alerts.create_rule(
            session=s,
            actor=c.actor,
            name=name,
            action=action,
            conditions=forms.parse_conditions(conditions),
            integration_id=integration_id,
            service_id=service_id,
            target_service_id=target_service_id,
            type_key=type_key or None,
            impact=impact,
            urgency=urgency,
        )
    return see_other("/admin/routing")


@router.post("/admin/routing/{rule_id}")
async def update_rule(
    rule_id: int,
    position: Annotated[int | None, Form(ge=1, le=1000)] = None,
    active: Annotated[bool | None, Form()] = None,
    c: Ui = Depends(ui),
) -> Response:
    """Move a rule to another position, or switch it on or off."""
    changes: dict[str, object] = {}
    if position is not None:
        changes["position"] = position
    if active is not None:
        changes["active"] = active
    async with c.db.write() as s:
        await alerts.update_rule(session=s, actor=c.actor, rule_id=rule_id, changes=changes)
    return see_other(f"/admin/routing#rule-{rule_id}")


@router.post("/admin/routing/{rule_id}/delete")
async def delete_rule(rule_id: int, c: Ui = Depends(ui)) -> Response:
    async with c.db.write() as s:
        await alerts.delete_rule(session=s, actor=c.actor, rule_id=rule_id)
    return see_other("/admin/routing")
