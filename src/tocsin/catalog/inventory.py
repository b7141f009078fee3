"""Components (parts of services) and assets (tagged things): their create, read, update and delete.

Other domains call these through `tocsin.catalog.service`, which re-exports them.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import Actor, Can
from tocsin.auth.service import require
from tocsin.catalog import records
from tocsin.catalog.dependencies import lock_graph, refuse_cycle
from tocsin.catalog.models import Asset, AssetKind, AssetStatus, Component, ItemKind, Service
from tocsin.catalog.paging import page
from tocsin.catalog.records import ASSET_FIELDS, COMPONENT_FIELDS, UNSET, Unset
from tocsin.catalog.rules import normalise_tag
from tocsin.errors import Conflict

# --- components ------------------------------------------------------------------------------------


async def _owning_service(session: AsyncSession, service_id: int | None) -> Service | None:
    if service_id is None:
        return None
    return await records.must_exist("service_id", records.get(session, ItemKind.service, service_id, Service))


async def _refuse_duplicate_component(
    session: AsyncSession, name: str, service_id: int | None, own_id: int | None = None
) -> None:
    stmt = select(Component.id).where(Component.name == name, Component.service_id == service_id)
    if own_id is not None:
        stmt = stmt.where(Component.id != own_id)
    if await session.scalar(stmt) is not None:
        where = f"service {service_id}" if service_id is not None else "no service"
        raise Conflict(f"a component named {name!r} already exists under {where}; choose another name")


async def create_component(
    *, session: AsyncSession, actor: Actor, name: str, description: str = "", service_id: int | None = None
) -> Component:
    """A component, optionally part of a service (which then depends on it)."""
    require(actor, Can.manage_catalog)
    await _owning_service(session, service_id)
    await _refuse_duplicate_component(session, name, service_id)
    row = Component(name=name, description=description, service_id=service_id)
    await records.create(
        session, actor, row, "component", COMPONENT_FIELDS, f"a component named {name!r} already exists there"
    )
    return row


async def get_component(*, session: AsyncSession, component_id: int) -> Component:
    return await records.get(session, ItemKind.component, component_id, Component)


async def list_components(
    *,
    session: AsyncSession,
    q: str | None = None,
    service_id: int | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[Component], str | None]:
    """Components by name, optionally only those of one service or matching `q` (name, description)."""
    stmt = records.search(select(Component), q, Component.name, Component.description)
    if service_id is not None:
        stmt = stmt.where(Component.service_id == service_id)
    return await page(session, stmt, keys=(Component.name, Component.id), cursor=cursor, limit=limit)


async def update_component(
    *,
    session: AsyncSession,
    actor: Actor,
    component_id: int,
    name: str | None = None,
    description: str | None = None,
    service_id: int | Unset | None = UNSET,
) -> Component:
    """Rename, redescribe, or move a component to another service (or none); a move that would make the
    new service depend on itself through the component's dependencies is refused."""
    require(actor, Can.manage_catalog)
    row = await get_component(session=session, component_id=component_id)
    changes = records.given(name=name, description=description) | records.nullable(service_id=service_id)
    target_service = changes.get("service_id", row.service_id)
    await _refuse_duplicate_component(session, changes.get("name", row.name), target_service, row.id)
    if "service_id" in changes and target_service != row.service_id:
        owner = await _owning_service(session, target_service)
        if owner is not None:
            await lock_graph(session)
            await refuse_cycle(session=session, node=owner.item_id, depends_on=row.item_id)
    await records.update(
        session,
        actor,
        row,
        "component",
        COMPONENT_FIELDS,
        changes,
        "a component with that name already exists there",
    )
    return row


async def delete_component(*, session: AsyncSession, actor: Actor, component_id: int) -> None:
    require(actor, Can.manage_catalog)
    row = await get_component(session=session, component_id=component_id)
    await records.refuse_if_used(
        session, row, f"component {row.name!r}", "remove those dependency links and references first"
    )
    await records.delete(session, actor, row, "component", COMPONENT_FIELDS)


# --- assets ----------------------------------------------------------------------------------------


async def _refuse_duplicate_tag(session: AsyncSession, tag: str, own_id: int | None = None) -> None:
    stmt = select(Asset.id).where(Asset.tag == tag)
    if own_id is not None:
        stmt = stmt.where(Asset.id != own_id)
    if (other := await session.scalar(stmt)) is not None:
        raise Conflict(f"asset tag {tag!r} is already used by asset {other}; tags are unique", asset_id=other)


async def create_asset(
    *,
    session: AsyncSession,
    actor: Actor,
    tag: str,
    name: str,
    kind: AssetKind,
    description: str = "",
    location: str = "",
    owner_team_id: int | None = None,
    serial: str | None = None,
    status: AssetStatus = AssetStatus.active,
) -> Asset:
    """An asset; its tag is stored in upper case and must be unique."""
    require(actor, Can.manage_catalog)
    tag = records.valid("tag", normalise_tag, tag)
    await records.team_exists(session, owner_team_id)
    await _refuse_duplicate_tag(session, tag)
    row = Asset(
        tag=tag,
        name=name,
        kind=AssetKind(kind),
        description=description,
        location=location,
        owner_team_id=owner_team_id,
        serial=serial,
        status=AssetStatus(status),
    )
    await records.create(session, actor, row, "asset", ASSET_FIELDS, f"asset tag {tag!r} is already used")
    return row


async def get_asset(*, session: AsyncSession, key: int | str) -> Asset:
    """An asset by id, or by tag when `key` is a string (any case)."""
    return await records.get(session, ItemKind.asset, key, Asset)


async def list_assets(
    *,
    session: AsyncSession,
    q: str | None = None,
    kind: AssetKind | None = None,
    status: AssetStatus | None = None,
    owner_team_id: int | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[Asset], str | None]:
    """Assets by tag; `q` matches tag, name, serial and location."""
    stmt = records.search(select(Asset), q, Asset.tag, Asset.name, Asset.serial, Asset.location)
    if kind is not None:
        stmt = stmt.where(Asset.kind == kind)
    if status is not None:
        stmt = stmt.where(Asset.status == status)
    if owner_team_id is not None:
        stmt = stmt.where(Asset.owner_team_id == owner_team_id)
    return await page(session, stmt, keys=(Asset.tag, Asset.id), cursor=cursor, limit=limit)


async def update_asset(
    *,
    session: AsyncSession,
    actor: Actor,
    asset_id: int,
    tag: str | None = None,
    name: str | None = None,
    kind: AssetKind | None = None,
    description: str | None = None,
    location: str | None = None,
    status: AssetStatus | None = None,
    owner_team_id: int | Unset | None = UNSET,
    serial: str | Unset | None = UNSET,
) -> Asset:
    """Change an asset; retiring it (`status=retired`) is how it leaves service while staying on record."""
    require(actor, Can.manage_catalog)
    row = await get_asset(session=session, key=asset_id)
    changes = records.given(
        tag=tag, name=name, kind=kind, description=description, location=location, status=status
    ) | records.nullable(owner_team_id=owner_team_id, serial=serial)
    if "tag" in changes:
        changes["tag"] = records.valid("tag", normalise_tag, changes["tag"])
        await _refuse_duplicate_tag(session, changes["tag"], row.id)
    if "owner_team_id" in changes:
        await records.team_exists(session, changes["owner_team_id"])
    await records.update(
        session, actor, row, "asset", ASSET_FIELDS, changes, "that asset tag is already used"
    )
    return row


async def delete_asset(*, session: AsyncSession, actor: Actor, asset_id: int) -> None:
    require(actor, Can.manage_catalog)
    row = await get_asset(session=session, key=asset_id)
    await records.refuse_if_used(
        session,
        row,
        f"asset {row.tag}",
        'remove those links, or retire it instead with {"status": "retired"}',
    )
    await records.delete(session, actor, row, "asset", ASSET_FIELDS)
