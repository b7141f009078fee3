"""Dependency edges between catalog items, and the transitive walks that answer "what is hit if X breaks".

The graph has two sources of edges: explicit `catalog_dependencies` rows, and component membership (a
service depends on each of its components). A recursive CTE loads only the part of the graph reachable from
the item asked about; the pure functions in `graph.py` do the rest. Writers that add an edge take a
graph-wide lock first (an advisory lock on PostgreSQL; SQLite already has one writer), so two concurrent
additions cannot close a cycle that neither saw.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, FromClause, Subquery, func, or_, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit import service as audit
from tocsin.auth.permissions import Actor, Can
from tocsin.auth.service import require
from tocsin.catalog import graph
from tocsin.catalog.models import (
    KIND_MODELS,
    Asset,
    AssetStatus,
    Component,
    Dependency,
    ItemKind,
    Service,
)
from tocsin.catalog.paging import page
from tocsin.catalog.rules import normalise_tag
from tocsin.db import dialect_of, utcnow
from tocsin.errors import Conflict, Invalid, NotFound

_PG_GRAPH_LOCK = 7_270_101
Item = Service | Component | Asset
Row = TypeVar("Row", Service, Component, Asset)


@dataclass(frozen=True)
class ItemRef:
    """How callers name a catalog item: its kind and its id, or a service's slug, or an asset's tag."""

    kind: ItemKind
    key: int | str

    def __str__(self) -> str:
        return f"{self.kind} {self.key!r}" if isinstance(self.key, str) else f"{self.kind} {self.key}"


@dataclass(frozen=True)
class ItemSummary:
    """What a list of related items shows about each one."""

    kind: ItemKind
    id: int
    name: str
    key: str | None  # a service's slug, an asset's tag
    active: bool
    tier: int | None = None  # services only
    business_area_id: int | None = None  # services only
    distance: int = 0  # edges away from the item asked about, in impact answers


@dataclass(frozen=True)
class DependencyView:
    id: int
    item: ItemSummary
    depends_on: ItemSummary
    note: str
    created_at: datetime


def summarise(row: Item) -> ItemSummary:
    if isinstance(row, Service):
        return ItemSummary(
            ItemKind.service, row.id, row.name, row.slug, row.active, row.tier, row.business_area_id
        )
    if isinstance(row, Asset):
        return ItemSummary(ItemKind.asset, row.id, row.name, row.tag, row.status == AssetStatus.active)
    return ItemSummary(ItemKind.component, row.id, row.name, None, True)


async def resolve(*, session: AsyncSession, ref: ItemRef) -> Item:
    """The row `ref` names; NotFound if there is none."""
    model = KIND_MODELS[ref.kind]
    row: Item | None
    if isinstance(ref.key, int):
        row = await session.get(model, ref.key)
    elif ref.kind == ItemKind.service:
        row = await session.scalar(select(Service).where(Service.slug == ref.key))
    elif ref.kind == ItemKind.asset:
        try:
            tag = normalise_tag(ref.key)
        except ValueError:
            tag = None  # not a well-formed tag, so no asset has it: a 404 like any unknown tag
        row = await session.scalar(select(Asset).where(Asset.tag == tag)) if tag else None
    else:
        raise Invalid(f"components have no natural key; name component {ref.key!r} by its numeric id")
    if row is None:
        by = "id" if isinstance(ref.key, int) else ("slug" if ref.kind == ItemKind.service else "tag")
        raise NotFound(f"no {ref.kind} with {by} {ref.key!r}")
    return row


async def summaries(*, session: AsyncSession, node_ids: Collection[int]) -> dict[int, ItemSummary]:
    """Summaries keyed by node id; nodes whose item vanished are left out."""
    out: dict[int, ItemSummary] = {}
    if node_ids:
        for rows in (
            await _with_nodes(session, Service, node_ids),
            await _with_nodes(session, Component, node_ids),
            await _with_nodes(session, Asset, node_ids),
        ):
            out.update((row.item_id, summarise(row)) for row in rows)
    return out


async def _with_nodes(session: AsyncSession, model: type[Row], node_ids: Collection[int]) -> Sequence[Row]:
    return (await session.scalars(select(model).where(model.item_id.in_(list(node_ids))))).all()


def _edges(name: str) -> Subquery:
    explicit = select(Dependency.item_id.label("src"), Dependency.depends_on_id.label("dst"))
    membership = select(Service.item_id.label("src"), Component.item_id.label("dst")).join(
        Component, Component.service_id == Service.id
    )
    return union_all(explicit, membership).subquery(name)


def _ends(edges: FromClause, upstream: bool) -> tuple[ColumnElement[int], ColumnElement[int]]:
    """(the end a walk arrives from, the end it moves on to) of an edge, for the walk's direction."""
    return (edges.c.dst, edges.c.src) if upstream else (edges.c.src, edges.c.dst)


async def _walk(session: AsyncSession, start: int, *, upstream: bool) -> list[tuple[int, int]]:
    """Every edge on a path from `start` (towards dependents if `upstream`, else towards dependencies).

    The recursion collects edges rather than nodes, so each step is an index lookup and UNION's
    de-duplication ends the walk even if a damaged graph held a cycle.
    """
    first, step = _edges("first"), _edges("step")
    first_near, _ = _ends(first, upstream)
    walk = select(first.c.src, first.c.dst).where(first_near == start).cte("walk", recursive=True)
    step_near, _ = _ends(step, upstream)
    _, walk_far = _ends(walk, upstream)
    walk = walk.union(select(step.c.src, step.c.dst).join(walk, step_near == walk_far))
    return [(int(src), int(dst)) for src, dst in await session.execute(select(walk.c.src, walk.c.dst))]


async def lock_graph(session: AsyncSession) -> None:
    """Serialise edge additions across processes for the rest of the transaction."""
    if dialect_of(session) == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_GRAPH_LOCK})


async def refuse_cycle(*, session: AsyncSession, node: int, depends_on: int) -> None:
    """Conflict, naming the loop, if `node -> depends_on` would close a cycle. Call after `lock_graph`."""
    cycle = graph.cycle_if_added(await _walk(session, depends_on, upstream=False), node, depends_on)
    if cycle is None:
        return
    names = await summaries(session=session, node_ids=set(cycle))
    chain = " -> ".join(f"{names[n].kind} {names[n].name!r}" if n in names else f"node {n}" for n in cycle)
    if len(cycle) == 2:
        raise Invalid(f"an item cannot depend on itself ({chain})")
    raise Conflict(
        f"this dependency would close a cycle: {chain}; remove one of those links first", cycle=chain
    )


async def reach(*, session: AsyncSession, start: int, upstream: bool) -> list[ItemSummary]:
    """The transitive set around node `start`, nearest first: its dependents if `upstream`, else what it
    needs."""
    edges = await _walk(session, start, upstream=upstream)
    distances = graph.reachable(graph.reversed_edges(edges) if upstream else edges, start)
    found = await summaries(session=session, node_ids=distances.keys())
    out = [replace(found[n], distance=d) for n, d in distances.items() if n in found]
    return sorted(out, key=lambda s: (s.distance, s.kind, s.name.lower(), s.id))


async def count_edges(*, session: AsyncSession, node: int) -> int:
    """Explicit dependencies touching `node`, in either direction."""
    stmt = select(func.count(Dependency.id)).where(
        or_(Dependency.item_id == node, Dependency.depends_on_id == node)
    )
    return int(await session.scalar(stmt) or 0)


# --- explicit edges --------------------------------------------------------------------------------


async def _view(session: AsyncSession, dep: Dependency) -> DependencyView:
    return (await _views(session, [dep]))[0]


async def _views(session: AsyncSession, deps: list[Dependency]) -> list[DependencyView]:
    names = await summaries(session=session, node_ids={n for d in deps for n in (d.item_id, d.depends_on_id)})
    return [
        DependencyView(d.id, names[d.item_id], names[d.depends_on_id], d.note, d.created_at) for d in deps
    ]


def _audit_view(view: DependencyView) -> dict[str, object]:
    return {
        "item": f"{view.item.kind}:{view.item.id}",
        "depends_on": f"{view.depends_on.kind}:{view.depends_on.id}",
        "note": view.note,
    }


async def add_dependency(
    *, session: AsyncSession, actor: Actor, item: ItemRef, depends_on: ItemRef, note: str = ""
) -> DependencyView:
    """Record that `item` depends on `depends_on`; refuses self-dependency, duplicates and cycles (409)."""
    require(actor, Can.manage_catalog)
    source = await resolve(session=session, ref=item)
    target = await resolve(session=session, ref=depends_on)
    if source.item_id == target.item_id:
        raise Invalid(f"{item} cannot depend on itself; name two different items")
    await lock_graph(session)
    existing = await session.scalar(
        select(Dependency.id).where(
            Dependency.item_id == source.item_id, Dependency.depends_on_id == target.item_id
        )
    )
    if existing is not None:
        raise Conflict(
            f"{item} already depends on {depends_on} (dependency {existing})", dependency_id=existing
        )
    await refuse_cycle(session=session, node=source.item_id, depends_on=target.item_id)
    dep = Dependency(item_id=source.item_id, depends_on_id=target.item_id, note=note, created_at=utcnow())
    session.add(dep)
    await session.flush()
    view = await _view(session, dep)
    audit.record(
        session=session,
        actor=actor.ref,
        action="dependency.add",
        entity_type="catalog_dependency",
        entity_id=dep.id,
        after=_audit_view(view),
    )
    return view


async def get_dependency(*, session: AsyncSession, dependency_id: int) -> DependencyView:
    dep = await session.get(Dependency, dependency_id)
    if dep is None:
        raise NotFound(f"no dependency with id {dependency_id}")
    return await _view(session, dep)


async def list_dependencies(
    *, session: AsyncSession, item: ItemRef | None = None, cursor: str | None = None, limit: int = 100
) -> tuple[list[DependencyView], str | None]:
    """Explicit edges, all of them or those touching `item` (in either direction), oldest first."""
    stmt = select(Dependency)
    if item is not None:
        node = (await resolve(session=session, ref=item)).item_id
        stmt = stmt.where(or_(Dependency.item_id == node, Dependency.depends_on_id == node))
    rows, next_cursor = await page(session, stmt, keys=(Dependency.id,), cursor=cursor, limit=limit)
    return await _views(session, rows), next_cursor


async def remove_dependency(*, session: AsyncSession, actor: Actor, dependency_id: int) -> None:
    require(actor, Can.manage_catalog)
    dep = await session.get(Dependency, dependency_id)
    if dep is None:
        raise NotFound(f"no dependency with id {dependency_id}")
    view = await _view(session, dep)
    await session.delete(dep)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="dependency.remove",
        entity_type="catalog_dependency",
        entity_id=dependency_id,
        before=_audit_view(view),
    )
