"""Steps every catalog write shares: input checks, audited create/update/delete, and the in-use guard."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Final, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from tocsin.audit import service as audit
from tocsin.auth import service as auth
from tocsin.auth.permissions import Actor
from tocsin.catalog.dependencies import ItemRef, count_edges, resolve
from tocsin.catalog.models import Asset, Component, ItemKind, Service
from tocsin.db import Base, utcnow
from tocsin.errors import Conflict, Invalid, NotFound

T = TypeVar("T")
Row = TypeVar("Row", Service, Component, Asset)


class Unset(Enum):
    """Marks a nullable field a PATCH did not mention (None there means "clear it")."""

    token = 0


UNSET: Final = Unset.token
CATALOG_TABLES = frozenset(
    {"catalog_items", "business_areas", "services", "components", "assets", "catalog_dependencies"}
)
# What the audit log keeps of each record (before and after every change).
SERVICE_FIELDS = (
    "slug",
    "name",
    "description",
    "owner_team_id",
    "tier",
    "runbook_url",
    "business_area_id",
    "active",
)
AREA_FIELDS = ("name", "description", "owner_user_id")
COMPONENT_FIELDS = ("name", "description", "service_id")
ASSET_FIELDS = ("tag", "name", "kind", "description", "location", "owner_team_id", "serial", "status")


def valid(field: str, check: Callable[[T], T], value: T) -> T:
    """Run a pure check from `rules`, turning its ValueError into a 422 naming the field."""
    try:
        return check(value)
    except ValueError as exc:
        raise Invalid(f"{field}: {exc}") from exc


def given(**fields: Any) -> dict[str, Any]:
    """The fields a PATCH mentions: None (required fields) and UNSET (nullable fields) mean "unchanged"."""
    return {k: v for k, v in fields.items() if v is not None and v is not UNSET}


def nullable(**fields: Any) -> dict[str, Any]:
    """The nullable fields a PATCH mentions, None included (it clears the field)."""
    return {k: v for k, v in fields.items() if v is not UNSET}


async def must_exist(field: str, lookup: Awaitable[T]) -> T:
    """A reference in the input must name an existing row: 422 naming the field otherwise."""
    try:
        return await lookup
    except NotFound as exc:
        raise Invalid(f"{field}: {exc.detail}; pick an existing one") from exc


async def team_exists(session: AsyncSession, team_id: int | None) -> None:
    if team_id is not None:
        await must_exist("owner_team_id", auth.get_team(session=session, team_id=team_id))


async def flush(session: AsyncSession, duplicate: str) -> None:
    """Flush; a unique violation here means a concurrent writer won the race our pre-check lost."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(duplicate) from exc


def snapshot(row: object, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: getattr(row, f) for f in fields}


async def create(
    session: AsyncSession, actor: Actor, row: Any, entity: str, fields: tuple[str, ...], duplicate: str
) -> None:
    """Insert `row` and record `<entity>.create` with its audited fields."""
    session.add(row)
    await flush(session, duplicate)
    audit.record(
        session=session,
        actor=actor.ref,
        action=f"{entity}.create",
        entity_type=entity,
        entity_id=row.id,
        after=snapshot(row, fields),
    )


async def update(
    session: AsyncSession,
    actor: Actor,
    row: Any,
    entity: str,
    fields: tuple[str, ...],
    changes: dict[str, Any],
    duplicate: str,
) -> None:
    """Apply `changes` and record `<entity>.update`; a change that changes nothing records nothing."""
    before = snapshot(row, fields)
    for key, value in changes.items():
        setattr(row, key, value)
    after = snapshot(row, fields)
    if after == before:
        return
    row.updated_at = utcnow()
    await flush(session, duplicate)
    audit.record(
        session=session,
        actor=actor.ref,
        action=f"{entity}.update",
        entity_type=entity,
        entity_id=row.id,
        before=before,
        after=after,
    )


async def delete(session: AsyncSession, actor: Actor, row: Any, entity: str, fields: tuple[str, ...]) -> None:
    audit.record(
        session=session,
        actor=actor.ref,
        action=f"{entity}.delete",
        entity_type=entity,
        entity_id=row.id,
        before=snapshot(row, fields),
    )
    await session.delete(row)
    await session.flush()


async def outside_references(session: AsyncSession, table: str, row_id: int) -> list[str]:
    """Rows in other domains' tables that point at this catalog row (incidents, routing rules...), found
    through the schema's foreign keys so the catalog imports none of the domains that use it."""
    found: list[str] = []
    for other in Base.metadata.sorted_tables:
        if other.name in CATALOG_TABLES:
            continue
        for fk in other.foreign_keys:
            if fk.target_fullname == f"{table}.id":
                n = await session.scalar(select(func.count()).select_from(other).where(fk.parent == row_id))
                if n:
                    found.append(f"{n} {other.name} row(s)")
    return found


async def refuse_if_used(
    session: AsyncSession, row: Service | Component | Asset, label: str, hint: str
) -> None:
    """409 listing what still uses `row` (dependency links, components, other domains' records)."""
    uses: list[str] = []
    if edges := await count_edges(session=session, node=row.item_id):
        uses.append(f"{edges} dependency link(s)")
    if isinstance(row, Service):
        count = select(func.count(Component.id)).where(Component.service_id == row.id)
        if components := int(await session.scalar(count) or 0):
            uses.append(f"{components} component(s)")
    uses += await outside_references(session, row.__tablename__, row.id)
    if uses:
        raise Conflict(f"{label} is still in use ({', '.join(uses)}); {hint}")


async def get(session: AsyncSession, kind: ItemKind, key: int | str, model: type[Row]) -> Row:
    """The `model` row named by id (or slug/tag); 404 otherwise."""
    row = await resolve(session=session, ref=ItemRef(kind, key))
    if not isinstance(row, model):  # pragma: no cover - resolve returns the kind's own model
        raise TypeError(f"{kind} resolved to {type(row).__name__}")
    return row


def search(stmt: Select[T], q: str | None, *columns: InstrumentedAttribute[Any]) -> Select[T]:
    """Case-insensitive substring match on any of `columns`; % and _ in `q` match themselves."""
    return stmt if not q else stmt.where(or_(*(c.icontains(q, autoescape=True) for c in columns)))
