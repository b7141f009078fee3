"""Services and their alert integrations: read, edit, and the intake address to copy (shown once)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import service as alerts
from tocsin.alerts.api import intake_url
from tocsin.alerts.models import Integration, IntegrationKind
from tocsin.auth import service as auth
from tocsin.auth.models import Team
from tocsin.auth.permissions import Actor
from tocsin.catalog import service as catalog
from tocsin.catalog.models import Service
from tocsin.web.render import html
from tocsin.web.routing import see_other, ui_router
from tocsin.web.session import Ui, ui

router = ui_router()
Text = Annotated[str, Form(max_length=5000)]
OptionalId = Annotated[int | None, Form(ge=1, le=2**63 - 1)]


@dataclass(frozen=True)
class ServicePage:
    service: Service
    integrations: list[Integration]
    teams: dict[int, Team]


async def service_page(*, session: AsyncSession, actor: Actor, service_id: int) -> ServicePage:
    service = await catalog.get_service(session=session, key=service_id)
    found = await alerts.list_integrations(session=session, actor=actor, service_id=service.id)
    teams = {t.id: t for t in await auth.list_teams(session=session)}
    return ServicePage(service, found, teams)


@router.get("/services")
async def services(request: Request, archived: bool = False, c: Ui = Depends(ui)) -> Response:
    """The service catalog (archived services on request)."""
    async with c.db.read() as s:
        rows, _ = await catalog.list_services(session=s, include_archived=archived, limit=500)
        teams = {t.id: t for t in await auth.list_teams(session=s)}
    return html(request, "catalog/services.html", {"rows": rows, "teams": teams, "archived": archived})


@router.post("/services")
async def create_service(
    slug: Annotated[str, Form(max_length=80)],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    tier: Annotated[int, Form(ge=1, le=4)] = 3,
    owner_team_id: OptionalId = None,
    description: Text = "",
    c: Ui = Depends(ui),
) -> Response:
    async with c.db.write() as s:
        created = await catalog.create_service(
            session=s,
            actor=c.actor,
            slug=slug,
            name=name,
            tier=tier,
            owner_team_id=owner_team_id,
            description=description,
        )
    return see_other(f"/services/{created.id}")


async def _service(
    request: Request, c: Ui, service_id: int, new_key: tuple[str, str] | None = None
) -> Response:
    async with c.db.read() as s:
        page = await service_page(session=s, actor=c.actor, service_id=service_id)
    context = {"page": page, "kinds": list(IntegrationKind), "new_key": new_key}
    response = html(request, "catalog/service.html", context)
    # A page answered to a post (to show a key once): the address bar shows the service, not the post.
    response.headers["HX-Push-Url"] = f"/services/{service_id}"
    return response


@router.get("/services/{service_id}")
async def service(request: Request, service_id: int, c: Ui = Depends(ui)) -> Response:
    """A service: its details, owner, integrations (with their intake addresses) and its incidents."""
    return await _service(request, c, service_id)


@router.post("/services/{service_id}")
async def update_service(
    service_id: int,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    tier: Annotated[int, Form(ge=1, le=4)],
    owner_team_id: OptionalId = None,
    description: Text = "",
    runbook_url: Annotated[str, Form(max_length=2000)] = "",
    active: Annotated[bool, Form()] = False,
    c: Ui = Depends(ui),
) -> Response:
    async with c.db.write() as s:
        await catalog.update_service(
            session=s,
            actor=c.actor,
            key=service_id,
            name=name,
            tier=tier,
            owner_team_id=owner_team_id,
            description=description,
            runbook_url=runbook_url or None,
            active=active,
        )
    return see_other(f"/services/{service_id}")


def _shown_key(c: Ui, integration: Integration, key: str) -> tuple[str, str]:
    return key, intake_url(c.settings.base_url, integration.kind, key)


@router.post("/services/{service_id}/integrations")
async def create_integration(
    request: Request,
    service_id: int,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    kind: Annotated[IntegrationKind, Form()],
    c: Ui = Depends(ui),
) -> Response:
    """A new source of alerts; its key and intake address are shown once, to copy into the sender."""
    async with c.db.write() as s:
        integration, key = await alerts.create_integration(
            session=s, actor=c.actor, service_id=service_id, name=name, kind=kind
        )
    return await _service(request, c, service_id, _shown_key(c, integration, key))


@router.post("/integrations/{integration_id}/rotate")
async def rotate_key(request: Request, integration_id: int, c: Ui = Depends(ui)) -> Response:
    """A new key at once (the old one stops working), shown once."""
    async with c.db.write() as s:
        integration, key = await alerts.rotate_key(session=s, actor=c.actor, integration_id=integration_id)
    return await _service(request, c, integration.service_id, _shown_key(c, integration, key))


@router.post("/integrations/{integration_id}/active")
async def set_active(
    integration_id: int, active: Annotated[bool, Form()] = False, c: Ui = Depends(ui)
) -> Response:
    """Pause or resume an integration (a paused one refuses intake)."""
    async with c.db.write() as s:
        found = await alerts.update_integration(
            session=s, actor=c.actor, integration_id=integration_id, active=active
        )
    return see_other(f"/services/{found.service_id}#integrations")
