"""Configuration as data: incident types with their extra fields, and the priority matrix."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin import config_cache
from tocsin.audit import service as audit
from tocsin.auth.permissions import Actor, Can
from tocsin.db import utcnow
from tocsin.errors import Conflict, Forbidden, NotFound
from tocsin.incidents import matrix
from tocsin.incidents.fields import FieldDef, check_definitions
from tocsin.incidents.models import IncidentType, PriorityCell


def _require_config(actor: Actor) -> None:
    if not actor.can(Can.manage_config):
        raise Forbidden(f"your role ({actor.role}) may not change configuration; an admin can")


def _type_view(t: IncidentType) -> dict[str, object]:
    return {
        "key": t.key,
        "name": t.name,
        "description": t.description,
        "active": t.active,
        "confidential_default": t.confidential_default,
        "fields": t.fields,
    }


def field_defs(incident_type: IncidentType) -> list[FieldDef]:
    return [FieldDef.model_validate(f) for f in incident_type.fields]


async def list_types(*, session: AsyncSession, include_inactive: bool = True) -> list[IncidentType]:
    stmt = select(IncidentType).order_by(IncidentType.key)
    if not include_inactive:
        stmt = stmt.where(IncidentType.active.is_(True))
    return list(await session.scalars(stmt))


async def get_type(*, session: AsyncSession, key: str) -> IncidentType:
    found = await session.scalar(select(IncidentType).where(IncidentType.key == key))
    if found is None:
        keys = ", ".join(t.key for t in await list_types(session=session))
        raise NotFound(f"no incident type {key!r}; known types: {keys}")
    return found


async def create_type(
    *,
    session: AsyncSession,
    actor: Actor,
    key: str,
    name: str,
    description: str = "",
    confidential_default: bool = False,
    fields: Sequence[FieldDef] = (),
    active: bool = True,
) -> IncidentType:
    _require_config(actor)
    if await session.scalar(select(IncidentType.id).where(IncidentType.key == key)):
        raise Conflict(f"an incident type with key {key!r} already exists; PATCH it or choose another key")
    config_cache.changed(session)
    now = utcnow()
    t = IncidentType(
        key=key,
        name=name,
        description=description,
        confidential_default=confidential_default,
        fields=[f.model_dump(mode="json") for f in check_definitions(fields)],
        active=active,
        created_at=now,
        updated_at=now,
    )
    session.add(t)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="incident_type.create",
        entity_type="incident_type",
        entity_id=key,
        after=_type_view(t),
    )
    return t


async def update_type(
    *,
    session: AsyncSession,
    actor: Actor,
    key: str,
    name: str | None = None,
    description: str | None = None,
    confidential_default: bool | None = None,
    fields: Sequence[FieldDef] | None = None,
    active: bool | None = None,
) -> IncidentType:
    """Change a type; its key is permanent. New field rules apply to incidents whose extra is next edited."""
    _require_config(actor)
    t = await get_type(session=session, key=key)
    config_cache.changed(session)
    before = _type_view(t)
    if name is not None:
        t.name = name
    if description is not None:
        t.description = description
    if confidential_default is not None:
        t.confidential_default = confidential_default
    if fields is not None:
        t.fields = [f.model_dump(mode="json") for f in check_definitions(fields)]
    if active is not None:
        t.active = active
    after = _type_view(t)
    if after != before:
        t.updated_at = utcnow()
        audit.record(
            session=session,
            actor=actor.ref,
            action="incident_type.update",
            entity_type="incident_type",
            entity_id=key,
            before=before,
            after=after,
        )
    return t


@dataclass(frozen=True)
class TypeFacts:
    """What creating an incident needs of its type (a shared, cached copy)."""

    key: str
    active: bool
    confidential_default: bool
    fields: tuple[FieldDef, ...]


async def _load_types(session: AsyncSession) -> MappingProxyType[str, TypeFacts]:
    rows = await list_types(session=session)
    return MappingProxyType(
        {t.key: TypeFacts(t.key, t.active, t.confidential_default, tuple(field_defs(t))) for t in rows}
    )


async def type_facts(*, session: AsyncSession, key: str) -> TypeFacts:
    """The type `key` as creating an incident needs it, from the per-process copy (see config_cache)."""
    types = await config_cache.cached(session, "incident_types", _load_types)
    found = types.get(key)
    if found is None:
        raise NotFound(f"no incident type {key!r}; known types: {', '.join(sorted(types))}")
    return found


async def _load_matrix(session: AsyncSession) -> MappingProxyType[tuple[int, int], int]:
    cells = await session.scalars(select(PriorityCell))
    return MappingProxyType({(c.impact, c.urgency): c.priority for c in cells})


async def get_matrix(*, session: AsyncSession) -> dict[tuple[int, int], int]:
    """The current matrix as {(impact, urgency): priority}."""
    return dict(await config_cache.cached(session, "priority_matrix", _load_matrix))


async def replace_matrix(
    *, session: AsyncSession, actor: Actor, cells: Iterable[tuple[int, int, int]]
) -> dict[tuple[int, int], int]:
    """Replace every cell at once; refused unless total. Existing incidents keep the priority they had."""
    _require_config(actor)
    new = matrix.validate(cells)
    old = await get_matrix(session=session)
    if new == old:
        return old
    config_cache.changed(session)
    await session.execute(delete(PriorityCell))
    session.add_all(PriorityCell(impact=i, urgency=u, priority=p) for (i, u), p in sorted(new.items()))
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="priority_matrix.replace",
        entity_type="priority_matrix",
        entity_id="default",
        before=[[i, u, p] for (i, u), p in sorted(old.items())],
        after=[[i, u, p] for (i, u), p in sorted(new.items())],
    )
    return new
