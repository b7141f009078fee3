"""REST routes for the catalog domain: services, business areas, components, assets, dependencies, impact."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from tocsin.api_common import API, Page
from tocsin.auth.deps import Ctx, ctx
from tocsin.catalog import service
from tocsin.catalog.models import AssetKind, AssetStatus, ItemKind
from tocsin.catalog.schemas import (
    AssetIn,
    AssetOut,
    AssetPatch,
    BusinessAreaIn,
    BusinessAreaOut,
    BusinessAreaPatch,
    ComponentIn,
    ComponentOut,
    ComponentPatch,
    DependencyIn,
    DependencyOut,
    ImpactOut,
    ServiceIn,
    ServiceOut,
    ServicePatch,
)
from tocsin.errors import Invalid

router = APIRouter(prefix=API)

Q = Query(default=None, max_length=200, description="Case-insensitive text to search for.")
CURSOR = Query(default=None, description="next_cursor from the previous page.")
LIMIT = Query(default=100, ge=1, description="Page size (capped by the server's page_size_max).")
SERVICE_KEY = "The service's numeric id or its slug."


def _key(raw: str) -> int | str:
    """A path segment naming a service: all digits is an id (slugs are never all digits), else a slug."""
    return int(raw) if raw.isdigit() else raw


def _limit(c: Ctx, limit: int) -> int:
    return min(limit, c.settings.page_size_max)


async def _impact(c: Ctx, ref: service.ItemRef) -> ImpactOut:
    async with c.db.read() as s:
        return ImpactOut.model_validate(await service.impact(session=s, item=ref))


# --- services --------------------------------------------------------------------------------------


@router.get("/services", response_model=Page[ServiceOut], tags=["catalog"])
async def list_services(
    q: str | None = Q,
    owner_team_id: int | None = None,
    business_area_id: int | None = None,
    tier: int | None = Query(default=None, ge=1, le=4),
    include_archived: bool = False,
    cursor: str | None = CURSOR,
    limit: int = LIMIT,
    c: Ctx = Depends(ctx),
) -> Page[ServiceOut]:
    """Services by name (the service picker); archived services only with include_archived=true."""
    async with c.db.read() as s:
        rows, nxt = await service.list_services(
            session=s,
            q=q,
            owner_team_id=owner_team_id,
            business_area_id=business_area_id,
            tier=tier,
            include_archived=include_archived,
            cursor=cursor,
            limit=_limit(c, limit),
        )
    return Page(items=[ServiceOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/services", response_model=ServiceOut, status_code=201, tags=["catalog"])
async def create_service(body: ServiceIn, c: Ctx = Depends(ctx)) -> ServiceOut:
    async with c.db.write() as s:
        row = await service.create_service(session=s, actor=c.actor, **body.model_dump())
    return ServiceOut.model_validate(row)


@router.get("/services/{key}", response_model=ServiceOut, tags=["catalog"])
async def get_service(key: str, c: Ctx = Depends(ctx)) -> ServiceOut:
    async with c.db.read() as s:
        return ServiceOut.model_validate(await service.get_service(session=s, key=_key(key)))


@router.patch("/services/{key}", response_model=ServiceOut, tags=["catalog"])
async def update_service(key: str, body: ServicePatch, c: Ctx = Depends(ctx)) -> ServiceOut:
    """Change a service; {"active": false} archives it."""
    async with c.db.write() as s:
        row = await service.update_service(
            session=s, actor=c.actor, key=_key(key), **body.model_dump(exclude_unset=True)
        )
    return ServiceOut.model_validate(row)


@router.delete("/services/{key}", status_code=204, tags=["catalog"])
async def delete_service(key: str, c: Ctx = Depends(ctx)) -> None:
    """Delete a service nothing uses; 409 says what still does (archive it instead)."""
    async with c.db.write() as s:
        await service.delete_service(session=s, actor=c.actor, key=_key(key))


@router.get("/services/{key}/impact", response_model=ImpactOut, tags=["catalog"])
async def service_impact(key: str, c: Ctx = Depends(ctx)) -> ImpactOut:
    """What is hit if this service breaks, what it needs, the business areas and most critical tier hit."""
    return await _impact(c, service.ItemRef(ItemKind.service, _key(key)))


# --- business areas --------------------------------------------------------------------------------


@router.get("/business-areas", response_model=Page[BusinessAreaOut], tags=["catalog"])
async def list_business_areas(
    q: str | None = Q,
    owner_user_id: int | None = None,
    cursor: str | None = CURSOR,
    limit: int = LIMIT,
    c: Ctx = Depends(ctx),
) -> Page[BusinessAreaOut]:
    async with c.db.read() as s:
        rows, nxt = await service.list_business_areas(
            session=s, q=q, owner_user_id=owner_user_id, cursor=cursor, limit=_limit(c, limit)
        )
    return Page(items=[BusinessAreaOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/business-areas", response_model=BusinessAreaOut, status_code=201, tags=["catalog"])
async def create_business_area(body: BusinessAreaIn, c: Ctx = Depends(ctx)) -> BusinessAreaOut:
    async with c.db.write() as s:
        row = await service.create_business_area(session=s, actor=c.actor, **body.model_dump())
    return BusinessAreaOut.model_validate(row)


@router.get("/business-areas/{area_id}", response_model=BusinessAreaOut, tags=["catalog"])
async def get_business_area(area_id: int, c: Ctx = Depends(ctx)) -> BusinessAreaOut:
    async with c.db.read() as s:
        return BusinessAreaOut.model_validate(await service.get_business_area(session=s, area_id=area_id))


@router.patch("/business-areas/{area_id}", response_model=BusinessAreaOut, tags=["catalog"])
async def update_business_area(
    area_id: int, body: BusinessAreaPatch, c: Ctx = Depends(ctx)
) -> BusinessAreaOut:
    async with c.db.write() as s:
        row = await service.update_business_area(
            session=s, actor=c.actor, area_id=area_id, **body.model_dump(exclude_unset=True)
        )
    return BusinessAreaOut.model_validate(row)


@router.delete("/business-areas/{area_id}", status_code=204, tags=["catalog"])
async def delete_business_area(area_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.delete_business_area(session=s, actor=c.actor, area_id=area_id)


# --- components ------------------------------------------------------------------------------------


@router.get("/components", response_model=Page[ComponentOut], tags=["catalog"])
async def list_components(
    q: str | None = Q,
    service_id: int | None = None,
    cursor: str | None = CURSOR,
    limit: int = LIMIT,
    c: Ctx = Depends(ctx),
) -> Page[ComponentOut]:
    async with c.db.read() as s:
        rows, nxt = await service.list_components(
            session=s, q=q, service_id=service_id, cursor=cursor, limit=_limit(c, limit)
        )
    return Page(items=[ComponentOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/components", response_model=ComponentOut, status_code=201, tags=["catalog"])
async def create_component(body: ComponentIn, c: Ctx = Depends(ctx)) -> ComponentOut:
    async with c.db.write() as s:
        row = await service.create_component(session=s, actor=c.actor, **body.model_dump())
    return ComponentOut.model_validate(row)


@router.get("/components/{component_id}", response_model=ComponentOut, tags=["catalog"])
async def get_component(component_id: int, c: Ctx = Depends(ctx)) -> ComponentOut:
    async with c.db.read() as s:
        return ComponentOut.model_validate(await service.get_component(session=s, component_id=component_id))


@router.patch("/components/{component_id}", response_model=ComponentOut, tags=["catalog"])
async def update_component(component_id: int, body: ComponentPatch, c: Ctx = Depends(ctx)) -> ComponentOut:
    async with c.db.write() as s:
        row = await service.update_component(
            session=s, actor=c.actor, component_id=component_id, **body.model_dump(exclude_unset=True)
        )
    return ComponentOut.model_validate(row)


@router.delete("/components/{component_id}", status_code=204, tags=["catalog"])
async def delete_component(component_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.delete_component(session=s, actor=c.actor, component_id=component_id)


@router.get("/components/{component_id}/impact", response_model=ImpactOut, tags=["catalog"])
async def component_impact(component_id: int, c: Ctx = Depends(ctx)) -> ImpactOut:
    return await _impact(c, service.ItemRef(ItemKind.component, component_id))


# --- assets ----------------------------------------------------------------------------------------


@router.get("/assets", response_model=Page[AssetOut], tags=["catalog"])
async def list_assets(
    q: str | None = Q,
    kind: AssetKind | None = None,
    status: AssetStatus | None = None,
    owner_team_id: int | None = None,
    cursor: str | None = CURSOR,
    limit: int = LIMIT,
    c: Ctx = Depends(ctx),
) -> Page[AssetOut]:
    async with c.db.read() as s:
        rows, nxt = await service.list_assets(
            session=s,
            q=q,
            kind=kind,
            status=status,
            owner_team_id=owner_team_id,
            cursor=cursor,
            limit=_limit(c, limit),
        )
    return Page(items=[AssetOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/assets", response_model=AssetOut, status_code=201, tags=["catalog"])
async def create_asset(body: AssetIn, c: Ctx = Depends(ctx)) -> AssetOut:
    async with c.db.write() as s:
        row = await service.create_asset(session=s, actor=c.actor, **body.model_dump())
    return AssetOut.model_validate(row)


@router.get("/assets/{asset_id}", response_model=AssetOut, tags=["catalog"])
async def get_asset(asset_id: int, c: Ctx = Depends(ctx)) -> AssetOut:
    async with c.db.read() as s:
        return AssetOut.model_validate(await service.get_asset(session=s, key=asset_id))


@router.patch("/assets/{asset_id}", response_model=AssetOut, tags=["catalog"])
async def update_asset(asset_id: int, body: AssetPatch, c: Ctx = Depends(ctx)) -> AssetOut:
    """Change an asset; {"status": "retired"} takes it out of service while keeping it on record."""
    async with c.db.write() as s:
        row = await service.update_asset(
            session=s, actor=c.actor, asset_id=asset_id, **body.model_dump(exclude_unset=True)
        )
    return AssetOut.model_validate(row)


@router.delete("/assets/{asset_id}", status_code=204, tags=["catalog"])
async def delete_asset(asset_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.delete_asset(session=s, actor=c.actor, asset_id=asset_id)


@router.get("/assets/{asset_id}/impact", response_model=ImpactOut, tags=["catalog"])
async def asset_impact(asset_id: int, c: Ctx = Depends(ctx)) -> ImpactOut:
    return await _impact(c, service.ItemRef(ItemKind.asset, asset_id))


# --- dependencies ----------------------------------------------------------------------------------


@router.get("/dependencies", response_model=Page[DependencyOut], tags=["catalog"])
async def list_dependencies(
    kind: ItemKind | None = Query(default=None, description="With id: only links touching that item."),
    id: str | None = Query(default=None, description="The item's id, or a service's slug / an asset's tag."),
    cursor: str | None = CURSOR,
    limit: int = LIMIT,
    c: Ctx = Depends(ctx),
) -> Page[DependencyOut]:
    """Explicit "X depends on Y" links (component membership is implied, not listed here)."""
    if (kind is None) != (id is None):
        raise Invalid("kind and id filter together: give both (e.g. ?kind=service&id=checkout) or neither")
    item = service.ItemRef(kind, _key(id)) if kind is not None and id is not None else None
    async with c.db.read() as s:
        views, nxt = await service.list_dependencies(
            session=s, item=item, cursor=cursor, limit=_limit(c, limit)
        )
    return Page(items=[DependencyOut.model_validate(v) for v in views], next_cursor=nxt)


@router.post("/dependencies", response_model=DependencyOut, status_code=201, tags=["catalog"])
async def add_dependency(body: DependencyIn, c: Ctx = Depends(ctx)) -> DependencyOut:
    """Record that `item` depends on `depends_on`; refuses self-links (422), duplicates and cycles (409)."""
    async with c.db.write() as s:
        view = await service.add_dependency(
            session=s, actor=c.actor, item=body.item.ref(), depends_on=body.depends_on.ref(), note=body.note
        )
    return DependencyOut.model_validate(view)


@router.get("/dependencies/{dependency_id}", response_model=DependencyOut, tags=["catalog"])
async def get_dependency(dependency_id: int, c: Ctx = Depends(ctx)) -> DependencyOut:
    async with c.db.read() as s:
        return DependencyOut.model_validate(
            await service.get_dependency(session=s, dependency_id=dependency_id)
        )


@router.delete("/dependencies/{dependency_id}", status_code=204, tags=["catalog"])
async def remove_dependency(dependency_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.remove_dependency(session=s, actor=c.actor, dependency_id=dependency_id)
