"""Checks that records other domains own exist, named the way an API caller can act on (Invalid, 422)."""

from __future__ import annotations

from sqlalchemy import column, exists, select, table
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.models import Integration
from tocsin.errors import Invalid, NotFound
from tocsin.incidents import service as incidents

# The catalog's table, named as the foreign keys name it: existence checks need no catalog import.
SERVICES = table("services", column("id"), column("tier"))


async def check_service(session: AsyncSession, service_id: int, what: str = "service_id") -> None:
    if not await session.scalar(select(exists().where(SERVICES.c.id == service_id))):
        raise Invalid(f"{what} {service_id} names no service; create the service first")


async def check_integration(session: AsyncSession, integration_id: int) -> None:
    if await session.get(Integration, integration_id) is None:
        raise Invalid(f"integration_id {integration_id} names no integration")


async def check_type(session: AsyncSession, key: str) -> None:
    """An incident type alerts can open: it exists, is active and asks for no field alerts cannot fill."""
    try:
        itype = await incidents.get_type(session=session, key=key)
    except NotFound as exc:
        raise Invalid(f"type_key: {exc.detail}") from None
    if not itype.active:
        raise Invalid(f"type_key: incident type {key!r} is inactive; choose an active type")
    required = [str(f.get("name")) for f in itype.fields if f.get("required")]
    if required:
        raise Invalid(
            f"type_key: incident type {key!r} requires {', '.join(required)}, which an alert cannot "
            "provide; choose a type without required fields"
        )
