"""Reporting an incident: the form with the chosen type's own fields, the live priority, the public portal.

People without an account may report when `portal_enabled` is on. They give a name and an email address;
the incident is filed by a "portal:<email>" actor (so the audit log and the timeline name the address) and
the description starts with who reported it, since there is no user record to point at. The anonymous form
is CSRF-protected with a double-submit token and rate-limited per client address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query, Request, Response
from pydantic import EmailStr as PydanticEmail
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.deps import app_db
from tocsin.auth.models import Role
from tocsin.auth.permissions import Actor
from tocsin.catalog import service as catalog
from tocsin.errors import DomainError, Invalid
from tocsin.incidents import matrix
from tocsin.incidents import service as incidents
from tocsin.incidents.configuration import field_defs
from tocsin.incidents.models import IncidentType, SourceChannel
from tocsin.web import forms
from tocsin.web.incident_views import directory
from tocsin.web.render import html
from tocsin.web.routing import see_other, ui_router
from tocsin.web.session import (
    LoginRequired,
    RateLimit,
    Ui,
    anonymous_csrf,
    check_anonymous_csrf,
    client_address,
    set_anon_cookie,
    signed_in,
)

router = ui_router()
PORTAL_LIMIT = RateLimit(limit=5, window=600.0)
_EMAIL: TypeAdapter[str] = TypeAdapter(PydanticEmail)

IMPACT_HELP = {
    1: "Many people, a whole site or a customer-facing service; or safety, money or the law is at stake.",
    2: "A team, a department or a group of customers; a service works but is degraded.",
    3: "One person or a few, with little effect on their work.",
}
URGENCY_HELP = {
    1: "Work has stopped or it is getting worse by the minute; there is no workaround.",
    2: "Work is slowed down; a workaround helps for now, or a deadline is close.",
    3: "It can wait: nothing gets worse and no deadline is at risk.",
}


async def _who(request: Request) -> Ui | None:
    """The signed-in reporter, or None for the portal; a login page when the portal is off."""
    found = await signed_in(request)
    if found is None and not request.app.state.settings.portal_enabled:
        raise LoginRequired
    return found


@dataclass(frozen=True)
class FormData:
    types: list[IncidentType]
    chosen: IncidentType
    services: list[Any]
    people: list[Any]


async def _form_data(session: AsyncSession, actor: Actor | None, type_key: str | None) -> FormData:
    types = await incidents.list_types(session=session, include_inactive=False)
    if not types:
        raise Invalid("no incident type is active; an admin must activate one before anyone can report")
    chosen = next((t for t in types if t.key == type_key), None) or next(
        (t for t in types if t.key == "it_service"), types[0]
    )
    services = (await catalog.list_services(session=session, limit=500))[0]
    people = (await directory(session, actor)).workers if actor is not None else []
    return FormData(types, chosen, services, people)


def _render(
    request: Request, who: Ui | None, data: FormData, values: dict[str, Any], error: str | None, status: int
) -> Response:
    fresh = None
    if who is None:
        _, fresh = anonymous_csrf(request)
    context = {
        "data": data,
        "fields": field_defs(data.chosen),
        "values": values,
        "error": error,
        "anonymous": who is None,
        "impact_help": IMPACT_HELP,
        "urgency_help": URGENCY_HELP,
        "priority": _derive_label(values),
        "key": forms.field_key,
        "filled": {
            k.removeprefix(forms.PREFIX) for k, v in values.items() if k.startswith(forms.PREFIX) and v
        },
    }
    if request.headers.get("hx-target") == "type-fields":
        response = html(request, "report/_fields.html", context, status=status)
    else:
        response = html(request, "report/form.html", context, status=status)
    set_anon_cookie(request, response, fresh)
    return response


def _derive_label(values: dict[str, Any]) -> int | None:
    matrix_cells = values.get("_matrix")
    if not matrix_cells:
        return None
    return matrix.derive(matrix_cells, int(values.get("impact", 3)), int(values.get("urgency", 3)))


@router.get("/report")
async def report_form(request: Request, type: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    """The report form; `type` picks the incident type whose own fields it shows."""
    who = await _who(request)
    async with app_db(request).read() as s:
        data = await _form_data(s, who.actor if who else None, type)
        cells = await incidents.get_matrix(session=s)
    values = {"impact": "3", "urgency": "3", "type": data.chosen.key, "_matrix": cells}
    return _render(request, who, data, values, None, 200)


@router.get("/report/priority")
async def priority_preview(
    request: Request,
    impact: Annotated[int, Query(ge=1, le=3)] = 3,
    urgency: Annotated[int, Query(ge=1, le=3)] = 3,
) -> Response:
    """The priority that impact x urgency gives, in words (the form asks for it as either changes)."""
    await _who(request)
    async with app_db(request).read() as s:
        cells = await incidents.get_matrix(session=s)
    return html(request, "report/_priority.html", {"priority": matrix.derive(cells, impact, urgency)})


def _level(form: Any, name: str) -> int:
    raw = str(form.get(name) or "3")
    if raw not in ("1", "2", "3"):
        raise Invalid(f"{name} is 1 (high), 2 (medium) or 3 (low)")
    return int(raw)


def _portal_actor(form: Any) -> tuple[Actor, str]:
    """The actor filing an anonymous report, and the line naming the reporter for the description."""
    name = str(form.get("reporter_name") or "").strip()
    email = str(form.get("reporter_email") or "").strip()
    if not name or len(name) > 200:
        raise Invalid("your name: tell us who you are (at most 200 characters), so we can reach you")
    try:
        email = _EMAIL.validate_python(email)
    except ValidationError:
        raise Invalid(f"your email: {email!r} is not an email address we can write to") from None
    actor = Actor(kind="portal", user_id=None, role=Role.reporter, name=f"portal:{email}"[:120])
    return actor, f"Reported without an account by {name} <{email}>."


@router.post("/report")
async def report(request: Request) -> Response:
    """File the report; a signed-in reporter goes to the incident, an anonymous one gets its reference."""
    who = await _who(request)
    form = await request.form()
    if who is None:
        await check_anonymous_csrf(request)
    type_key = str(form.get("type") or "")
    async with app_db(request).read() as s:
        data = await _form_data(s, who.actor if who else None, type_key)
        cells = await incidents.get_matrix(session=s)
    values: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)} | {"_matrix": cells}
    try:
        incident = await _file(request, who, form, data)
    except DomainError as exc:
        if exc.status in (401, 403, 429):
            raise
        return _render(request, who, data, values, exc.detail, exc.status)
    if who is not None:
        return see_other(f"/incidents/{incident}")
    return html(request, "report/thanks.html", {"ref": incident})


async def _file(request: Request, who: Ui | None, form: Any, data: FormData) -> str:
    title = str(form.get("title") or "").strip()
    if not title or len(title) > 300:
        raise Invalid("title: say in a few words what happened (at most 300 characters)")
    description = str(form.get("description") or "").strip()
    if who is None:
        actor, line = _portal_actor(form)
        PORTAL_LIMIT.check(client_address(request))
        description = f"{line}\n\n{description}".strip()
    else:
        actor = who.actor
    service = str(form.get("service_id") or "")
    async with app_db(request).write() as s:
        incident = await incidents.create_incident(
            session=s,
            actor=actor,
            title=title,
            type_key=data.chosen.key,
            description=description[:50_000],
            impact=_level(form, "impact"),
            urgency=_level(form, "urgency"),
            source_channel=SourceChannel.web,
            service_ids=[int(service)] if service.isdigit() and len(service) < 19 else [],
            extra=forms.read_extra(field_defs(data.chosen), form),
        )
        return incident.ref
