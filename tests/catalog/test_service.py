"""Catalog service rules that the API does not show directly: graph nodes, implied edges, races, guards."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from tocsin.auth.permissions import SYSTEM
from tocsin.catalog import records, service
from tocsin.catalog.models import AssetKind, CatalogItem, Component, ItemKind, Service
from tocsin.catalog.service import ItemRef
from tocsin.db import Database
from tocsin.errors import Conflict, DomainError

pytestmark = pytest.mark.anyio


def svc(key: int | str) -> ItemRef:
    return ItemRef(ItemKind.service, key)


async def node_count(db: Database) -> int:
    async with db.read() as s:
        return int(await s.scalar(select(func.count(CatalogItem.id))) or 0)


async def test_each_item_gets_a_graph_node_which_goes_away_with_it(db: Database) -> None:
    async with db.write() as s:
        # Inserted without the service layer, as another domain's fixture might: the node still appears.
        s.add(Service(slug="raw", name="Raw"))
        asset = await service.create_asset(
            session=s, actor=SYSTEM, tag="n-1", name="n", kind=AssetKind.machine
        )
        comp = await service.create_component(session=s, actor=SYSTEM, name="part")
    assert await node_count(db) == 3
    async with db.read() as s:
        kinds = set(await s.scalars(select(CatalogItem.kind)))
    assert kinds == {"service", "asset", "component"}
    async with db.write() as s:
        await service.delete_asset(session=s, actor=SYSTEM, asset_id=asset.id)
        await service.delete_component(session=s, actor=SYSTEM, component_id=comp.id)
        await service.delete_service(session=s, actor=SYSTEM, key="raw")
    assert await node_count(db) == 0


async def test_a_component_cannot_depend_on_the_service_it_belongs_to(db: Database) -> None:
    async with db.write() as s:
        owner = await service.create_service(session=s, actor=SYSTEM, slug="owner", name="Owner")
        part = await service.create_component(session=s, actor=SYSTEM, name="part", service_id=owner.id)
    async with db.write() as s:
        with pytest.raises(Conflict, match="cycle: component 'part' -> service 'Owner' -> component 'part'"):
            await service.add_dependency(
                session=s, actor=SYSTEM, item=ItemRef(ItemKind.component, part.id), depends_on=svc("owner")
            )


async def test_moving_a_component_under_a_service_it_feeds_is_refused(db: Database) -> None:
    async with db.write() as s:
        api = await service.create_service(session=s, actor=SYSTEM, slug="api", name="API")
        queue = await service.create_component(session=s, actor=SYSTEM, name="queue")
        await service.add_dependency(
            session=s, actor=SYSTEM, item=ItemRef(ItemKind.component, queue.id), depends_on=svc("api")
        )
    async with db.write() as s:
        with pytest.raises(Conflict, match="cycle"):
            await service.update_component(session=s, actor=SYSTEM, component_id=queue.id, service_id=api.id)
    async with db.read() as s:
        assert (await service.get_component(session=s, component_id=queue.id)).service_id is None


async def test_two_writers_linking_opposite_ways_at_once_cannot_both_win(db: Database) -> None:
    async with db.write() as s:
        for slug in ("left", "right"):
            await service.create_service(session=s, actor=SYSTEM, slug=slug, name=slug)

    async def link(a: str, b: str) -> None:
        async with db.write() as s:
            await service.add_dependency(session=s, actor=SYSTEM, item=svc(a), depends_on=svc(b))
            await asyncio.sleep(0.05)  # hold the transaction open so the other writer overlaps it

    results = await asyncio.gather(link("left", "right"), link("right", "left"), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "NoneType"]
    async with db.read() as s:
        links, _ = await service.list_dependencies(session=s)
    assert len(links) == 1


async def test_a_row_in_another_domain_that_points_at_a_service_blocks_its_deletion(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Foreign keys from other domains' tables (incident links, routing rules) are found through the schema;
    components stand in for such a table here by being taken off the catalog's own list."""
    async with db.write() as s:
        used = await service.create_service(session=s, actor=SYSTEM, slug="used", name="Used")
        s.add(Component(name="elsewhere", service_id=used.id))
    monkeypatch.setattr(records, "CATALOG_TABLES", records.CATALOG_TABLES - {"components"})
    async with db.write() as s:
        assert await records.outside_references(s, "services", used.id) == ["1 components row(s)"]
        with pytest.raises(Conflict, match=r"1 components row\(s\)"):
            await service.delete_service(session=s, actor=SYSTEM, key="used")


async def test_reads_need_no_capability_but_writes_need_manage_catalog(db: Database) -> None:
    from tocsin.auth.models import Role
    from tocsin.auth.permissions import Actor

    viewer = Actor(kind="user", user_id=None, role=Role.viewer, name="v")
    async with db.write() as s:
        with pytest.raises(DomainError, match="may not manage catalog") as refused:
            await service.create_service(session=s, actor=viewer, slug="nope", name="Nope")
    assert refused.value.status == 403
    async with db.read() as s:
        assert await service.list_services(session=s) == ([], None)
        assert await service.services_by_id(session=s, ids=[1, 2]) == {}
