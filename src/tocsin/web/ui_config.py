"""Configuration as data, edited in the browser: incident types and their fields, the priority matrix,
SLA targets and notification templates."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Form, Request, Response
from pydantic import ValidationError

from tocsin.auth.permissions import Can
from tocsin.auth.service import require
from tocsin.errors import Invalid
from tocsin.incidents import matrix, sla_config
from tocsin.incidents import service as incidents
from tocsin.incidents.configuration import field_defs
from tocsin.incidents.fields import FieldDef, FieldKind
from tocsin.notify import configuration as notify_config
from tocsin.notify.models import ChannelKind, NotifyEvent
from tocsin.web.render import html
from tocsin.web.routing import see_other, ui_router
from tocsin.web.session import Ui, ui

router = ui_router()
Slug = Annotated[str, Form(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_]*$")]
Minutes = Annotated[int | None, Form(ge=1, le=525_600)]


# --- incident types --------------------------------------------------------------------------------


@router.get("/admin/types")
async def types(request: Request, c: Ui = Depends(ui)) -> Response:
    require(c.actor, Can.manage_config)
    async with c.db.read() as s:
        rows = await incidents.list_types(session=s)
    return html(request, "admin/types.html", {"rows": rows})


@router.post("/admin/types")
async def create_type(
    key: Annotated[str, Form(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")],
    name: Annotated[str, Form(min_length=1, max_length=120)],
    description: Annotated[str, Form(max_length=5000)] = "",
    confidential_default: Annotated[bool, Form()] = False,
    c: Ui = Depends(ui),
) -> Response:
    async with c.db.write() as s:
        await incidents.create_type(
            session=s,
            actor=c.actor,
            key=key,
            name=name,
            description=description,
            confidential_default=confidential_default,
        )
    return see_other(f"/admin/types/{key}")


@router.get("/admin/types/{key}")
async def type_page(request: Request, key: str, c: Ui = Depends(ui)) -> Response:
    require(c.actor, Can.manage_config)
    async with c.db.read() as s:
        found = await incidents.get_type(session=s, key=key)
    context = {"t": found, "fields": field_defs(found), "kinds": list(FieldKind)}
    return html(request, "admin/type.html", context)


@router.post("/admin/types/{key}")
async def update_type(
    key: str,
    name: Annotated[str, Form(min_length=1, max_length=120)],
    description: Annotated[str, Form(max_length=5000)] = "",
    confidential_default: Annotated[bool, Form()] = False,
    active: Annotated[bool, Form()] = False,
    c: Ui = Depends(ui),
) -> Response:
    async with c.db.write() as s:
        await incidents.update_type(
            session=s,
            actor=c.actor,
            key=key,
            name=name,
            description=description,
            confidential_default=confidential_default,
            active=active,
        )
    return see_other(f"/admin/types/{key}")


def _field(form: dict[str, Any]) -> FieldDef:
    choices = [c.strip() for c in str(form.get("choices") or "").split(",") if c.strip()]
    try:
        return FieldDef(
            name=form["name"],
            label=form["label"],
            kind=form["kind"],
            required=bool(form.get("required")),
            choices=choices or None,
            help=form.get("help") or "",
        )
    except ValidationError as exc:
        raise Invalid("; ".join(str(e["msg"]) for e in exc.errors())) from None


@router.post("/admin/types/{key}/fields")
async def add_field(
    key: str,
    name: Slug,
    label: Annotated[str, Form(min_length=1, max_length=200)],
    kind: Annotated[FieldKind, Form()],
    required: Annotated[bool, Form()] = False,
    choices: Annotated[str, Form(max_length=5000)] = "",
    help: Annotated[str, Form(max_length=1000)] = "",
    c: Ui = Depends(ui),
) -> Response:
    """Add a field at the end of the type's form (choices: comma-separated, for choice fields)."""
    new = _field(
        {"name": name, "label": label, "kind": kind, "required": required, "choices": choices, "help": help}
    )
    async with c.db.write() as s:
        found = await incidents.get_type(session=s, key=key)
        await incidents.update_type(session=s, actor=c.actor, key=key, fields=[*field_defs(found), new])
    return see_other(f"/admin/types/{key}#fields")


@router.post("/admin/types/{key}/fields/{name}/delete")
async def remove_field(key: str, name: str, c: Ui = Depends(ui)) -> Response:
    """Remove a field from the form (values already recorded on incidents stay in their history)."""
    async with c.db.write() as s:
        found = await incidents.get_type(session=s, key=key)
        kept = [d for d in field_defs(found) if d.name != name]
        await incidents.update_type(session=s, actor=c.actor, key=key, fields=kept)
    return see_other(f"/admin/types/{key}#fields")


# --- the priority matrix ---------------------------------------------------------------------------


@router.get("/admin/matrix")
async def matrix_page(request: Request, c: Ui = Depends(ui)) -> Response:
    require(c.actor, Can.manage_config)
    async with c.db.read() as s:
        cells = await incidents.get_matrix(session=s)
    return html(request, "admin/matrix.html", {"cells": cells, "levels": matrix.LEVELS})


@router.post("/admin/matrix")
async def replace_matrix(request: Request, c: Ui = Depends(ui)) -> Response:
    """Save the 3x3 grid: each cell `p<impact><urgency>` holds the priority 1..4."""
    form = await request.form()
    cells = []
    for i in matrix.LEVELS:
        for u in matrix.LEVELS:
            raw = str(form.get(f"p{i}{u}") or "")
            if raw not in ("1", "2", "3", "4"):
                raise Invalid(f"impact {i} x urgency {u}: choose a priority from 1 to 4")
            cells.append((i, u, int(raw)))
    async with c.db.write() as s:
        await incidents.replace_matrix(session=s, actor=c.actor, cells=cells)
    return see_other("/admin/matrix")


# --- SLA targets -----------------------------------------------------------------------------------


@router.get("/admin/sla")
async def sla_page(request: Request, c: Ui = Depends(ui)) -> Response:
    require(c.actor, Can.manage_config)
    async with c.db.read() as s:
        rows = await sla_config.list_policies(session=s)
    return html(request, "admin/sla.html", {"rows": rows})


@router.post("/admin/sla")
async def create_sla(
    name: Annotated[str, Form(min_length=1, max_length=120)],
    priority: Annotated[int, Form(ge=1, le=4)],
    response_minutes: Minutes = None,
    resolution_minutes: Minutes = None,
    c: Ui = Depends(ui),
) -> Response:
    fields = {
        "name": name,
        "priority": priority,
        "response_minutes": response_minutes,
        "resolution_minutes": resolution_minutes,
    }
    async with c.db.write() as s:
        await sla_config.create_policy(session=s, actor=c.actor, fields=fields)
    return see_other("/admin/sla")


@router.post("/admin/sla/{policy_id}")
async def update_sla(
    policy_id: int,
    response_minutes: Minutes = None,
    resolution_minutes: Minutes = None,
    active: Annotated[bool, Form()] = False,
    c: Ui = Depends(ui),
) -> Response:
    """Change a policy's targets (empty: no clock of that kind) or switch it off."""
    changes = {
        "response_minutes": response_minutes,
        "resolution_minutes": resolution_minutes,
        "active": active,
    }
    async with c.db.write() as s:
        await sla_config.update_policy(session=s, actor=c.actor, policy_id=policy_id, changes=changes)
    return see_other(f"/admin/sla#sla-{policy_id}")


# --- notification templates ------------------------------------------------------------------------


@router.get("/admin/templates")
async def templates_page(request: Request, c: Ui = Depends(ui)) -> Response:
    async with c.db.read() as s:
        rows = await notify_config.list_templates(session=s, actor=c.actor)
    return html(request, "admin/templates.html", {"rows": rows})


@router.post("/admin/templates/{event}/{channel}")
async def set_template(
    event: NotifyEvent,
    channel: ChannelKind,
    subject: Annotated[str, Form(max_length=2000)] = "",
    body: Annotated[str, Form(max_length=20_000)] = "",
    reset: Annotated[bool, Form()] = False,
    c: Ui = Depends(ui),
) -> Response:
    """Save an edited template (it must render the sample incident), or go back to the default."""
    async with c.db.write() as s:
        await notify_config.set_template(
            session=s,
            actor=c.actor,
            event=event,
            channel=channel,
            subject=None if reset or not subject.strip() else subject,
            body=None if reset or not body.strip() else body,
        )
    return see_other(f"/admin/templates#t-{event}-{channel}")
