"""Catalog operations: services, business areas, components, assets, their dependencies and impact.

Other domains reach the catalog only through this module (components, assets and dependency edges live in
`inventory` and `dependencies` and are re-exported here). Writes need Can.manage_catalog; any authenticated
caller may read, since reporters pick the affected service. Nothing here commits: the caller's unit of work
does. Deleting anything still in use is refused with a 409 that says what uses it; archive a service
(`active=False`) or retire an asset instead, so past incidents keep pointing at a real record.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth import service as auth
from tocsin.auth.permissions import Actor, Can
from tocsin.auth.service import require
from tocsin.catalog import records
from tocsin.catalog.dependencies import (
    DependencyView,
    ItemRef,
    ItemSummary,
    add_dependency,
    get_dependency,
    list_dependencies,
    reach,
    remove_dependency,
    resolve,
    summarise,
)
from tocsin.catalog.inventory import (
    create_asset,
    create_component,
    delete_asset,
    delete_component,
    get_asset,
    get_component,
    list_assets,
    list_components,
    update_asset,
    update_component,
)
from tocsin.catalog.models import BusinessArea, ItemKind, Service
from tocsin.catalog.paging import page
from tocsin.catalog.records import AREA_FIELDS, SERVICE_FIELDS, UNSET, Unset
from tocsin.catalog.rules import check_http_url, check_slug, check_tier
from tocsin.errors import Conflict, NotFound

__all__ = [
    "UNSET",
    "DependencyView",
    "Impact",
    "ItemRef",
    "ItemSummary",
    "Unset",
    "add_dependency",
    "create_asset",
    "create_business_area",
    "create_component",
    "create_service",
    "delete_asset",
    "delete_business_area",
    "delete_component",
    "delete_service",
    "depends_on",
    "get_asset",
    "get_business_area",
    "get_component",
    "get_dependency",
    "get_service",
    "impact",
    "impacted_by",
    "list_assets",
    "list_business_areas",
    "list_components",
    "list_dependencies",
    "list_services",
    "remove_dependency",
    "services_by_id",
    "update_asset",
    "update_business_area",
    "update_component",
    "update_service",
]


# --- business areas --------------------------------------------------------------------------------


async def _user_exists(session: AsyncSession, user_id: int | None) -> None:
    if user_id is not None:
        await records.must_exist("owner_user_id", auth.get_user(session=session, user_id=user_id))


async def _refuse_duplicate_area(session: AsyncSession, name: str, own_id: int | None = None) -> None:
    stmt = select(BusinessArea.id).where(func.lower(BusinessArea.name) == name.lower())
    if own_id is not None:
        stmt = stmt.where(BusinessArea.id != own_id)
    if (other := await session.scalar(stmt)) is not None:
        raise Conflict(f"a business area named {name!r} already exists (id {other}); choose another name")


async def create_business_area(
    *, session: AsyncSession, actor: Actor, name: str, description: str = "", owner_user_id: int | None = None
) -> BusinessArea:
    """A line of business; `owner_user_id` is the accountable person, if any."""
    require(actor, Can.manage_catalog)
    await _user_exists(session, owner_user_id)
    await _refuse_duplicate_area(session, name)
    row = BusinessArea(name=name, description=description, owner_user_id=owner_user_id)
    await records.create(
        session, actor, row, "business_area", AREA_FIELDS, f"a business area named {name!r} already exists"
    )
    return row


async def get_business_area(*, session: AsyncSession, area_id: int) -> BusinessArea:
    row = await session.get(BusinessArea, area_id)
    if row is None:
        raise NotFound(f"no business area with id {area_id}")
    return row


async def list_business_areas(
    *,
    session: AsyncSession,
    q: str | None = None,
    owner_user_id: int | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[BusinessArea], str | None]:
    stmt = records.search(select(BusinessArea), q, BusinessArea.name, BusinessArea.description)
    if owner_user_id is not None:
        stmt = stmt.where(BusinessArea.owner_user_id == owner_user_id)
    return await page(session, stmt, keys=(BusinessArea.name, BusinessArea.id), cursor=cursor, limit=limit)


async def update_business_area(
    *,
    session: AsyncSession,
    actor: Actor,
    area_id: int,
    name: str | None = None,
    description: str | None = None,
    owner_user_id: int | Unset | None = UNSET,
) -> BusinessArea:
    require(actor, Can.manage_catalog)
    row = await get_business_area(session=session, area_id=area_id)
    changes = records.given(name=name, description=description) | records.nullable(
        owner_user_id=owner_user_id
    )
    if "name" in changes:
        await _refuse_duplicate_area(session, changes["name"], row.id)
    if "owner_user_id" in changes:
        await _user_exists(session, changes["owner_user_id"])
    await records.update(
        session,
        actor,
        row,
        "business_area",
        AREA_FIELDS,
        changes,
        "a business area with that name already exists",
    )
    return row


async def delete_business_area(*, session: AsyncSession, actor: Actor, area_id: int) -> None:
    """Delete an area no service belongs to; 409 naming how many services still do."""
    require(actor, Can.manage_catalog)
    row = await get_business_area(session=session, area_id=area_id)
    count = select(func.count(Service.id)).where(Service.business_area_id == area_id)
    uses = [f"{n} service(s)"] if (n := int(await session.scalar(count) or 0)) else []
    uses += await records.outside_references(session, "business_areas", area_id)
    if uses:
        raise Conflict(
            f"business area {row.name!r} is still in use ({', '.join(uses)}); "
            "move those services to another area (or none) first"
        )
    await records.delete(session, actor, row, "business_area", AREA_FIELDS)


async def _area_exists(session: AsyncSession, area_id: int | None) -> None:
    if area_id is not None:
        await records.must_exist("business_area_id", get_business_area(session=session, area_id=area_id))


# --- services --------------------------------------------------------------------------------------


async def _refuse_duplicate_slug(session: AsyncSession, slug: str, own_id: int | None = None) -> None:
    stmt = select(Service.id).where(Service.slug == slug)
    if own_id is not None:
        stmt = stmt.where(Service.id != own_id)
    if (other := await session.scalar(stmt)) is not None:
        raise Conflict(
            f"a service with slug {slug!r} already exists (id {other}); choose another slug", service_id=other
        )


async def create_service(
    *,
    session: AsyncSession,
    actor: Actor,
    slug: str,
    name: str,
    description: str = "",
    owner_team_id: int | None = None,
    tier: int = 3,
    runbook_url: str | None = None,
    business_area_id: int | None = None,
    active: bool = True,
) -> Service:
    """A service; `tier` runs from 1 (most critical) to 4, the slug is unique and never all digits."""
    require(actor, Can.manage_catalog)
    slug = records.valid("slug", check_slug, slug)
    tier = records.valid("tier", check_tier, tier)
    if runbook_url is not None:
        runbook_url = records.valid("runbook_url", check_http_url, runbook_url)
    await records.team_exists(session, owner_team_id)
    await _area_exists(session, business_area_id)
    await _refuse_duplicate_slug(session, slug)
    row = Service(
        slug=slug,
        name=name,
        description=description,
        owner_team_id=owner_team_id,
        tier=tier,
        runbook_url=runbook_url,
        business_area_id=business_area_id,
        active=active,
    )
    await records.create(
        session, actor, row, "service", SERVICE_FIELDS, f"a service with slug {slug!r} already exists"
    )
    return row


async def get_service(*, session: AsyncSession, key: int | str) -> Service:
    """A service by id, or by slug when `key` is a string."""
    return await records.get(session, ItemKind.service, key, Service)


async def services_by_id(*, session: AsyncSession, ids: Collection[int]) -> dict[int, Service]:
    """Many services at once (for lists that show each row's services); unknown ids are left out."""
    if not ids:
        return {}
    return {s.id: s for s in await session.scalars(_SERVICES_BY_ID, {"ids": list(ids)})}


_SERVICES_BY_ID = select(Service).where(Service.id.in_(bindparam("ids", expanding=True)))


async def list_services(
    *,
    session: AsyncSession,
    q: str | None = None,
    owner_team_id: int | None = None,
    business_area_id: int | None = None,
    tier: int | None = None,
    include_archived: bool = False,
    cursor: str | None = None,
    limit: int = 100,
) -> tuple[list[Service], str | None]:
    """Services by name; `q` matches slug, name and description; archived ones only when asked."""
    stmt = records.search(select(Service), q, Service.slug, Service.name, Service.description)
    if owner_team_id is not None:
        stmt = stmt.where(Service.owner_team_id == owner_team_id)
    if business_area_id is not None:
        stmt = stmt.where(Service.business_area_id == business_area_id)
    if tier is not None:
        stmt = stmt.where(Service.tier == tier)
    if not include_archived:
        stmt = stmt.where(Service.active.is_(True))
    return await page(session, stmt, keys=(Service.name, Service.id), cursor=cursor, limit=limit)


async def update_service(
    *,
    session: AsyncSession,
    actor: Actor,
    key: int | str,
    slug: str | None = None,
    name: str | None = None,
    description: str | None = None,
    tier: int | None = None,
    active: bool | None = None,
    owner_team_id: int | Unset | None = UNSET,
    runbook_url: str | Unset | None = UNSET,
    business_area_id: int | Unset | None = UNSET,
) -> Service:
    """Change a service; `active=False` archives it (kept for history, hidden from pickers)."""
    require(actor, Can.manage_catalog)
    row = await get_service(session=session, key=key)
    changes = records.given(slug=slug, name=name, description=description, tier=tier, active=active) | (
        records.nullable(
            owner_team_id=owner_team_id, runbook_url=runbook_url, business_area_id=business_area_id
        )
    )
    if "slug" in changes:
        changes["slug"] = records.valid("slug", check_slug, changes["slug"])
        await _refuse_duplicate_slug(session, changes["slug"], row.id)
    if "tier" in changes:
        records.valid("tier", check_tier, changes["tier"])
    if changes.get("runbook_url") is not None:
        records.valid("runbook_url", check_http_url, changes["runbook_url"])
    if "owner_team_id" in changes:
        await records.team_exists(session, changes["owner_team_id"])
    if "business_area_id" in changes:
        await _area_exists(session, changes["business_area_id"])
    await records.update(
        session, actor, row, "service", SERVICE_FIELDS, changes, "a service with that slug already exists"
    )
    return row


async def delete_service(*, session: AsyncSession, actor: Actor, key: int | str) -> None:
    """Delete a service nothing uses (no dependency links, components, or incidents); 409 otherwise."""
    require(actor, Can.manage_catalog)
    row = await get_service(session=session, key=key)
    await records.refuse_if_used(
        session,
        row,
        f"service {row.slug!r}",
        'remove those links, or archive it instead with {"active": false}',
    )
    await records.delete(session, actor, row, "service", SERVICE_FIELDS)


# --- impact ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Impact:
    """What breaking `item` does: who is hit (upstream), what it needs (downstream), which business areas
    are touched and the most critical tier among the services hit (the item included)."""

    item: ItemSummary
    impacted: list[ItemSummary]
    depends_on: list[ItemSummary]
    business_areas: list[BusinessArea]
    most_critical_tier: int | None


async def impacted_by(*, session: AsyncSession, item: ItemRef) -> list[ItemSummary]:
    """Everything that transitively depends on `item`, nearest first: what else is hit if it breaks."""
    start = (await resolve(session=session, ref=item)).item_id
    return await reach(session=session, start=start, upstream=True)


async def depends_on(*, session: AsyncSession, item: ItemRef) -> list[ItemSummary]:
    """Everything `item` transitively depends on, nearest first: what could break it."""
    start = (await resolve(session=session, ref=item)).item_id
    return await reach(session=session, start=start, upstream=False)


async def impact(*, session: AsyncSession, item: ItemRef) -> Impact:
    """Both walks around `item`, with the business areas and most critical tier of the services hit."""
    row = await resolve(session=session, ref=item)
    me = summarise(row)
    hit = await reach(session=session, start=row.item_id, upstream=True)
    needs = await reach(session=session, start=row.item_id, upstream=False)
    services = [s for s in [me, *hit] if s.kind == ItemKind.service]
    area_ids = {s.business_area_id for s in services if s.business_area_id is not None}
    areas: list[BusinessArea] = []
    if area_ids:
        stmt = select(BusinessArea).where(BusinessArea.id.in_(area_ids)).order_by(BusinessArea.name)
        areas = list(await session.scalars(stmt))
    tiers = [s.tier for s in services if s.tier is not None]
    return Impact(me, hit, needs, areas, min(tiers, default=None))
