"""Reading incidents: filtered lists with keyset pagination, and the related rows a page or detail shows.

Visibility is part of every query's WHERE clause, never a filter applied after fetching. Each sort walks an
index ending in id (see models.Incident), so the first page and every later one cost the same at a million
rows; there is no COUNT(*) on the list path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, column, literal_column, select, table, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.api_common import decode_cursor, encode_cursor
from tocsin.auth.permissions import Actor
from tocsin.db import dialect_of
from tocsin.errors import Invalid
from tocsin.incidents import access, matrix
from tocsin.incidents.models import (
    SEARCH_TABLE,
    SEARCH_TRIGGERS,
    Incident,
    IncidentRoleHolder,
    IncidentService,
    IncidentState,
    MajorStatus,
)
from tocsin.incidents.store import new_services, roles_of, services_of


class SortKey(StrEnum):
    created_at = "created_at"  # newest first
    priority = "priority"  # most urgent first, newest first within a priority
    updated_at = "updated_at"  # most recently changed first


@dataclass(frozen=True)
class IncidentFilter:
    """List filters; empty tuples and None mean "any"."""

    states: tuple[IncidentState, ...] = ()
    priorities: tuple[int, ...] = ()
    type_keys: tuple[str, ...] = ()
    major: tuple[MajorStatus, ...] = ()
    team_id: int | None = None
    assignee: int | str | None = None  # a user id, "me" or "none" (unassigned)
    reporter: int | str | None = None  # a user id or "me"
    service_id: int | None = None
    confidential: bool | None = None
    q: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def _person(value: int | str, actor: Actor, what: str, *, allow_none: bool) -> int | None:
    if isinstance(value, int):
        return value
    text = value.strip().lower()
    if text == "me":
        if actor.user_id is None:
            raise Invalid(f"{what}=me needs a user; the system actor has none")
        return actor.user_id
    if allow_none and text == "none":
        return None
    if text.isdigit() and len(text) <= 18:
        return int(text)
    raise Invalid(f"{what} is a user id or 'me'" + (" or 'none'" if allow_none else ""))


def conditions(f: IncidentFilter, actor: Actor, *, indexed_search: bool = False) -> list[ColumnElement[bool]]:
    """The WHERE clause of a list. `indexed_search`: SQLite's FTS5 search table exists (`searchable`)."""
    where: list[ColumnElement[bool]] = [access.visible_clause(actor)]
    if f.states:
        where.append(Incident.state.in_(sorted(set(f.states))))
    if f.priorities:
        where.append(Incident.priority.in_(sorted(set(f.priorities))))
    if f.type_keys:
        where.append(Incident.type_key.in_(sorted(set(f.type_keys))))
    if f.major:
        where.append(Incident.major_status.in_(sorted(set(f.major))))
        if MajorStatus.none not in f.major:  # spelled out so the planners pick the partial index
            where.append(Incident.major_status != MajorStatus.none)
    if f.team_id is not None:
        where.append(Incident.team_id == f.team_id)
    if f.assignee is not None:
        uid = _person(f.assignee, actor, "assignee", allow_none=True)
        where.append(Incident.assignee_id.is_(None) if uid is None else Incident.assignee_id == uid)
    if f.reporter is not None:
        where.append(Incident.reporter_id == _person(f.reporter, actor, "reporter", allow_none=False))
    if f.service_id is not None:
        where.append(
            Incident.id.in_(
                select(IncidentService.incident_id).where(IncidentService.service_id == f.service_id)
            )
        )
    if f.confidential is not None:
        where.append(Incident.confidential.is_(f.confidential))
    if f.q and indexed_search and _indexable(f.q):
        where.append(Incident.id.in_(select(_SEARCH.c.rowid).where(_SEARCH_MATCH(_phrase(f.q)))))
    elif f.q:
        where.append(
            Incident.title.icontains(f.q, autoescape=True)
            | Incident.description.icontains(f.q, autoescape=True)
        )
    if f.created_after is not None:
        where.append(Incident.created_at >= f.created_after)
    if f.created_before is not None:
        where.append(Incident.created_at < f.created_before)
    return where


# SQLite's trigram index (models.SQLITE_SEARCH): a quoted FTS5 string is a phrase, which the trigram tokenizer
# matches as a substring of title or description. It folds case for every letter, as PostgreSQL's ILIKE does,
# where SQLite's LIKE folds only ASCII letters. Text shorter than a trigram matches nothing there, so it is
# looked for with LIKE, as is text with a NUL (which FTS5 cannot quote; the API refuses it anyway).
SEARCH_MIN = 3
_SEARCH = table(SEARCH_TABLE, column("rowid"))
_SEARCH_MATCH = literal_column(SEARCH_TABLE).op("MATCH")
_SEARCH_PARTS = text("SELECT count(*) FROM sqlite_master WHERE name IN :names").bindparams(
    bindparam("names", [SEARCH_TABLE, *SEARCH_TRIGGERS], expanding=True)
)


def _phrase(q: str) -> str:
    return '"' + q.replace('"', '""') + '"'


def _indexable(q: str) -> bool:
    return len(q) >= SEARCH_MIN and "\x00" not in q


async def searchable(session: AsyncSession) -> bool:
    """Whether text search can use SQLite's FTS5 table: never on PostgreSQL (trigram indexes serve its
    ILIKE); on SQLite when the table and all three triggers that keep it current are there. Asked on every
    search (a lookup in the schema table): a downgrade, or a migration that rebuilt `incidents` and with it
    dropped the triggers, turns search back to LIKE rather than to errors or stale answers."""
    if dialect_of(session) != "sqlite":
        return False
    return bool((await session.execute(_SEARCH_PARTS)).scalar_one() == 1 + len(SEARCH_TRIGGERS))


def _cursor(cursor: str, sort: SortKey) -> list[Any]:
    """The sort key values a cursor carries, checked so nothing a client crafts reaches the database."""
    values = decode_cursor(cursor)
    shapes = {SortKey.created_at: (int,), SortKey.priority: (int, int), SortKey.updated_at: (datetime, int)}
    expected = shapes[sort]
    if len(values) == len(expected) + 1 and values[0] == sort.value:
        if sort == SortKey.updated_at:
            values[1] = _aware(values[1])
        if all(_fits(v, t) for v, t in zip(values[1:], expected, strict=True)):
            return values[1:]
    raise Invalid(f"cursor does not belong to a list sorted by {sort}; start again without a cursor")


def _aware(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        return parsed.astimezone(UTC) if parsed is not None and parsed.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def _fits(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
    return isinstance(value, kind)


async def list_incidents(
    *,
    session: AsyncSession,
    actor: Actor,
    filters: IncidentFilter | None = None,
    sort: SortKey = SortKey.created_at,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Incident], str | None]:
    """One page of the incidents `actor` may see, and the cursor of the next page (None on the last)."""
    filters = filters or IncidentFilter()
    indexed = filters.q is not None and _indexable(filters.q) and await searchable(session)
    base = select(Incident).where(*conditions(filters, actor, indexed_search=indexed))
    after = _cursor(cursor, sort) if cursor else None
    if sort == SortKey.priority:
        rows = await _by_priority(session, base, filters, limit, after)
    elif sort == SortKey.updated_at:
        if after:
            base = base.where(tuple_(Incident.updated_at, Incident.id) < tuple_(after[0], after[1]))
        rows = list(
            await session.scalars(
                base.order_by(Incident.updated_at.desc(), Incident.id.desc()).limit(limit + 1)
            )
        )
    else:
        if after:
            base = base.where(Incident.id < after[0])
        rows = list(await session.scalars(base.order_by(Incident.id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    keys: dict[SortKey, list[Any]] = {
        SortKey.created_at: [last.id],
        SortKey.priority: [last.priority, last.id],
        SortKey.updated_at: [last.updated_at.isoformat(), last.id],
    }
    key = keys[sort]
    return rows, encode_cursor([sort.value, *key])


async def _by_priority(
    session: AsyncSession, base: Select[Incident], f: IncidentFilter, limit: int, after: list[Any] | None
) -> list[Incident]:
    """Priority ascending, newest first within each: one index range per priority (there are only four),
    which keeps every page an index walk where a single mixed-direction ORDER BY would sort."""
    rows: list[Incident] = []
    for p in sorted(set(f.priorities) or matrix.PRIORITIES):
        if after and p < after[0]:
            continue
        stmt = base.where(Incident.priority == p)
        if after and p == after[0]:
            stmt = stmt.where(Incident.id < after[1])
        rows += await session.scalars(stmt.order_by(Incident.id.desc()).limit(limit + 1 - len(rows)))
        if len(rows) > limit:
            break
    return rows


# --- what a page or a detail shows besides the incident row ----------------------------------------


@dataclass
class IncidentView:
    incident: Incident
    service_ids: list[int] = field(default_factory=list)
    roles: list[IncidentRoleHolder] = field(default_factory=list)
    children: list[int] = field(default_factory=list)
    visible_links: set[int] = field(default_factory=set)  # parent / duplicate_of ids the actor may see


async def views(
    *,
    session: AsyncSession,
    incidents: Sequence[Incident],
    roles: Mapping[int, list[IncidentRoleHolder]] | None = None,
) -> list[IncidentView]:
    """Incidents with their services and roles: two queries for the whole page, not two per incident
    (one when the caller already holds the roles)."""
    ids = [i.id for i in incidents]
    services = await services_of(session, ids)
    if roles is None:
        roles = await roles_of(session, ids)
    return [IncidentView(i, services[i.id], roles.get(i.id, [])) for i in incidents]


def new_view(session: AsyncSession, incident: Incident) -> IncidentView | None:
    """The detail of an incident created in this unit of work, from what the session holds (it has no
    roles or children yet); None when it links to others, whose visibility needs the database."""
    if incident.parent_id is not None or incident.duplicate_of_id is not None:
        return None
    services = new_services(session, incident.id)
    return None if services is None else IncidentView(incident, services)


async def detail(
    *,
    session: AsyncSession,
    actor: Actor,
    incident: Incident,
    roles: list[IncidentRoleHolder] | None = None,
) -> IncidentView:
    """One incident with its services, roles, and the children, parent and original the actor may see."""
    known = {incident.id: roles} if roles is not None else None
    view = (await views(session=session, incidents=[incident], roles=known))[0]
    visible = access.visible_clause(actor)
    view.children = list(
        await session.scalars(
            select(Incident.id).where(Incident.parent_id == incident.id, visible).order_by(Incident.id)
        )
    )
    links = [i for i in (incident.parent_id, incident.duplicate_of_id) if i is not None]
    if links:
        view.visible_links = set(
            await session.scalars(select(Incident.id).where(Incident.id.in_(links), visible))
        )
    return view
