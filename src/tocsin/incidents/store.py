"""Loading incidents as a given actor sees them, and recording each change on the timeline and audit log."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Literal, cast

from sqlalchemy import Table, bindparam, insert, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit import service as audit
from tocsin.auth import service as auth
from tocsin.auth.models import Team, User
from tocsin.auth.permissions import GRANTS, Actor, Can
from tocsin.catalog.models import Service
from tocsin.errors import Invalid, NotFound
from tocsin.incidents import access, events
from tocsin.incidents.models import (
    EntryKind,
    Incident,
    IncidentRole,
    IncidentRoleHolder,
    IncidentService,
    TimelineEntry,
    Visibility,
)


class _Unset(Enum):
    token = 0


UNSET = _Unset.token
Unset = Literal[_Unset.token]  # "not given", as opposed to None meaning "clear it"

_REF = re.compile(r"^(?:inc-)?(\d{1,18})$", re.IGNORECASE)


def parse_ref(ref: str | int) -> int:
    """The id behind "INC-42", "42" or 42."""
    m = None if isinstance(ref, int) else _REF.match(ref.strip())
    if isinstance(ref, int) and 0 < ref < 2**63:
        return ref
    if m is None:
        raise NotFound(f"no incident {ref!r}; incidents are referred to as INC-42 (or by their number)")
    return int(m.group(1))


@dataclass
class Loaded:
    """An incident with its role holders (which take part in visibility and permission checks)."""

    incident: Incident
    roles: dict[IncidentRole, IncidentRoleHolder] = field(default_factory=dict)

    @property
    def role_holders(self) -> set[int]:
        return {r.user_id for r in self.roles.values()}


async def roles_of(session: AsyncSession, incident_ids: Sequence[int]) -> dict[int, list[IncidentRoleHolder]]:
    out: dict[int, list[IncidentRoleHolder]] = {i: [] for i in incident_ids}
    if incident_ids:
        rows = await session.scalars(
            select(IncidentRoleHolder)
            .where(IncidentRoleHolder.incident_id.in_(incident_ids))
            .order_by(IncidentRoleHolder.incident_id, IncidentRoleHolder.role)
        )
        for r in rows:
            out[r.incident_id].append(r)
    return out


_NEW = "tocsin_new_incident_services"  # session.info: {incident id: its service ids}, for incidents created


def remember_new(session: AsyncSession, incident_id: int, service_ids: list[int]) -> None:
    """Note an incident created in this unit of work, with its services, so its answer needs no query."""
    session.info.setdefault(_NEW, {})[incident_id] = sorted(service_ids)


def new_services(session: AsyncSession, incident_id: int) -> list[int] | None:
    """The services of an incident created in this unit of work; None for any other incident."""
    found: list[int] | None = session.info.get(_NEW, {}).get(incident_id)
    return found


async def services_of(session: AsyncSession, incident_ids: Sequence[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {i: [] for i in incident_ids}
    if incident_ids:
        rows = await session.execute(
            select(IncidentService.incident_id, IncidentService.service_id)
            .where(IncidentService.incident_id.in_(incident_ids))
            .order_by(IncidentService.incident_id, IncidentService.service_id)
        )
        for incident_id, service_id in rows:
            out[incident_id].append(service_id)
    return out


# A session flag: lock incidents FOR NO KEY UPDATE, which lets other transactions insert rows that refer to
# them meanwhile. Intake batches running behind one another set it: the batch behind stores alerts of an
# incident the batch ahead may be updating, and rechecks that incident once the one ahead has committed.
NO_KEY_LOCKS = "tocsin_incident_no_key_locks"


async def load(session: AsyncSession, actor: Actor, ref: str | int, *, for_update: bool = False) -> Loaded:
    """The incident as `actor` may see it; NotFound (never Forbidden) when it is hidden from them.

    `for_update` locks the row on PostgreSQL so concurrent writers of one incident queue up (exact counters).
    The lock is FOR UPDATE, which also waits for transactions inserting rows that refer to the incident
    (alerts, child incidents...), unless the session says `NO_KEY_LOCKS` (see tocsin.alerts.writer).
    """
    incident_id = parse_ref(ref)
    stmt = select(Incident).where(Incident.id == incident_id)
    if for_update:
        no_key = bool(session.info.get(NO_KEY_LOCKS))
        stmt = stmt.with_for_update(key_share=no_key).execution_options(populate_existing=True)
    incident = await session.scalar(stmt)
    loaded = Loaded(incident) if incident is not None else None
    if loaded is not None:
        loaded.roles = {r.role: r for r in (await roles_of(session, [incident_id]))[incident_id]}
    if loaded is None or not access.can_see(actor, loaded.incident, loaded.role_holders):
        raise NotFound(f"no incident INC-{incident_id}")
    return loaded


async def load_to_act(session: AsyncSession, actor: Actor, ref: str | int) -> Loaded:
    """The incident, locked, once the actor is known to be allowed to work it."""
    loaded = await load(session, actor, ref, for_update=True)
    access.require_act(actor, loaded.incident, loaded.role_holders)
    return loaded


def plain(value: Any) -> Any:
    """JSON-ready form of a value for timeline data."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def record(
    session: AsyncSession,
    incident: Incident,
    actor: Actor,
    kind: EntryKind,
    text: str,
    *,
    now: datetime,
    action: str,
    before: Any = None,
    after: Any = None,
    visibility: Visibility = Visibility.internal,
    data: dict[str, Any] | None = None,
) -> TimelineEntry:
    """Write one change to the incident's timeline and to the audit log, in the caller's transaction."""
    entry = TimelineEntry(**_entry(incident, actor, kind, text, now, before, after, visibility, data))
    session.add(entry)
    _changed(session, incident, actor, now, action, before, after)
    return entry


async def record_creation(
    session: AsyncSession, incident: Incident, actor: Actor, now: datetime, after: dict[str, Any]
) -> None:
    """`record()` for a new incident: the "created" entry is inserted at once, in one statement, since
    nothing reads it back in this unit of work (no ORM object to track and flush: this is the hot path)."""
    text = f"Reported: {incident.title}"
    row = _entry(incident, actor, EntryKind.created, text, now, None, after, Visibility.stakeholder, None)
    await session.execute(_INSERT_ENTRY, row)
    _changed(session, incident, actor, now, "create", None, after)


_INSERT_ENTRY = insert(cast(Table, TimelineEntry.__table__))


def _entry(
    incident: Incident,
    actor: Actor,
    kind: EntryKind,
    text: str,
    now: datetime,
    before: Any,
    after: Any,
    visibility: Visibility,
    data: dict[str, Any] | None,
) -> dict[str, Any]:
    if data is None and (before is not None or after is not None):
        data = {"before": plain(before), "after": plain(after)}
    return {
        "incident_id": incident.id,
        "at": now,
        "actor": actor.ref,
        "actor_name": actor.name,
        "kind": kind,
        "visibility": visibility,
        "text": text,
        "data": data,
    }


def _changed(
    session: AsyncSession,
    incident: Incident,
    actor: Actor,
    now: datetime,
    action: str,
    before: Any,
    after: Any,
) -> None:
    """What every recorded change does besides its timeline entry: the incident's updated time, the event
    other domains react to, the audit entry."""
    if incident.updated_at != now:  # an equal value would still mark the incident dirty for the next flush
        incident.updated_at = now
    events.queue(
        session, events.IncidentEvent(incident.id, action, actor.ref, now, plain(before), plain(after))
    )
    audit.record(
        session=session,
        actor=actor.ref,
        action=f"incident.{action}",
        entity_type="incident",
        entity_id=incident.id,
        before=before,
        after=after,
    )


# --- references to other records -------------------------------------------------------------------


async def user_who_can_work(session: AsyncSession, user_id: int, what: str) -> User:
    """An active user whose role lets them work incidents, or Invalid naming `what` they were given for."""
    try:
        user = await auth.get_user(session=session, user_id=user_id)
    except NotFound:
        raise Invalid(f"{what}: no user with id {user_id}") from None
    if not user.active:
        raise Invalid(f"{what}: user {user_id} ({user.name}) is deactivated")
    if Can.work_incidents not in GRANTS[user.role]:
        raise Invalid(
            f"{what}: {user.name} is a {user.role} and cannot work incidents; pick a responder, "
            "manager or admin"
        )
    return user


async def existing_users(session: AsyncSession, user_ids: Iterable[int], what: str) -> None:
    for uid in sorted(set(user_ids)):
        try:
            await auth.get_user(session=session, user_id=uid)
        except NotFound:
            raise Invalid(f"{what}: no user with id {uid}") from None


async def existing_team(session: AsyncSession, team_id: int) -> Team:
    try:
        return await auth.get_team(session=session, team_id=team_id)
    except NotFound:
        raise Invalid(f"team_id: no team with id {team_id}") from None


async def existing_services(
    session: AsyncSession, service_ids: Iterable[int], *, team_id: int | None = None
) -> list[int]:
    """The given service ids, de-duplicated and sorted, once each is known to exist in the catalog, and
    the team, when one is given, too: one query for all of them."""
    wanted = sorted(set(service_ids))
    if not wanted and team_id is None:
        return wanted
    rows = await session.execute(_REFS, {"team": team_id or 0, "services": wanted})
    found = {(kind, ref) for kind, ref in rows}
    if team_id is not None and ("team", team_id) not in found:
        raise Invalid(f"team_id: no team with id {team_id}")
    missing = [str(s) for s in wanted if ("service", s) not in found]
    if missing:
        raise Invalid(f"service_ids: no service with id {', '.join(missing)}")
    return wanted


_REFS = union_all(
    select(literal("team"), Team.id).where(Team.id == bindparam("team")),
    select(literal("service"), Service.id).where(Service.id.in_(bindparam("services", expanding=True))),
)


async def user_names(session: AsyncSession, user_ids: Iterable[int | None]) -> dict[int, str]:
    names: dict[int, str] = {}
    for uid in {u for u in user_ids if u is not None}:
        try:
            names[uid] = (await auth.get_user(session=session, user_id=uid)).name
        except NotFound:
            names[uid] = f"user {uid}"
    return names


async def team_names(session: AsyncSession, team_ids: Iterable[int | None]) -> dict[int, str]:
    names: dict[int, str] = {}
    for tid in {t for t in team_ids if t is not None}:
        try:
            names[tid] = (await auth.get_team(session=session, team_id=tid)).name
        except NotFound:
            names[tid] = f"team {tid}"
    return names
