"""SLA configuration as data: business calendars and SLA policies (CRUD, audited), and their defaults.

Changing a policy or calendar applies to clocks started afterwards and to running clocks when their
incident's priority or services next change; clocks already running keep the target they started with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin import config_cache
from tocsin.audit import service as audit
from tocsin.auth import service as auth
from tocsin.auth.permissions import Actor, Can
from tocsin.catalog import service as catalog
from tocsin.db import utcnow
from tocsin.errors import Conflict, Forbidden, Invalid, NotFound
from tocsin.incidents.business_hours import Calendar, Window
from tocsin.incidents.models import BusinessCalendar, IncidentType, SlaPolicy

SEED_ACTOR = "system:seed"
MAX_HOLIDAYS = 2000

# From reference/domain.md: response P1 15 min, P2 30 min, P3 4 h, P4 24-48 h (24 h taken); resolution
# P1 1 h and P2 4 h are the typical goals quoted; P3 1 day and P4 2 days follow the same ladder.
DEFAULT_POLICIES = [
    (1, "P1 critical", 15, 60),
    (2, "P2 high", 30, 240),
    (3, "P3 moderate", 240, 1440),
    (4, "P4 low", 1440, 2880),
]
DEFAULT_CALENDAR = {
    "key": "office_hours",
    "name": "Office hours (edit the zone and add your holidays)",
    "time_zone": "UTC",
    "windows": [{"day": d, "start": "09:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu", "fri")],
}


def _require_config(actor: Actor) -> None:
    if not actor.can(Can.manage_config):
        raise Forbidden(f"your role ({actor.role}) may not change SLA configuration; an admin can")


# --- business calendars ----------------------------------------------------------------------------


def calendar_of(row: BusinessCalendar) -> Calendar:
    """The stored calendar as the business-hours arithmetic takes it."""
    return Calendar.build(
        row.time_zone,
        [Window.parse(w["day"], w["start"], w["end"]) for w in row.windows],
        [date.fromisoformat(d) for d in row.holidays],
    )


def _checked_calendar(
    time_zone: str, windows: Iterable[Mapping[str, str]], holidays: Iterable[str | date]
) -> tuple[list[dict[str, str]], list[str]]:
    """Validated windows and holidays in their stored form, or Invalid saying what to change."""
    try:
        parsed = [Window.parse(w["day"], w["start"], w["end"]) for w in windows]
        days = sorted({d if isinstance(d, date) else date.fromisoformat(d) for d in holidays})
        calendar = Calendar.build(time_zone, parsed, days)
    except (ValueError, KeyError) as exc:
        raise Invalid(f"business calendar: {exc}") from None
    if len(days) > MAX_HOLIDAYS:
        raise Invalid(f"holidays: at most {MAX_HOLIDAYS} dates; drop past years")
    return [w.as_dict() for w in calendar.windows], [d.isoformat() for d in days]


def _calendar_view(c: BusinessCalendar) -> dict[str, Any]:
    return {
        "key": c.key,
        "name": c.name,
        "time_zone": c.time_zone,
        "windows": c.windows,
        "holidays": c.holidays,
    }


async def list_calendars(*, session: AsyncSession) -> list[BusinessCalendar]:
    return list(await session.scalars(select(BusinessCalendar).order_by(BusinessCalendar.key)))


async def get_calendar(*, session: AsyncSession, key: str) -> BusinessCalendar:
    found = await session.scalar(select(BusinessCalendar).where(BusinessCalendar.key == key))
    if found is None:
        keys = ", ".join(c.key for c in await list_calendars(session=session)) or "none yet"
        raise NotFound(f"no business calendar {key!r}; known calendars: {keys}")
    return found


async def create_calendar(
    *,
    session: AsyncSession,
    actor: Actor,
    key: str,
    name: str,
    time_zone: str,
    windows: Iterable[Mapping[str, str]],
    holidays: Iterable[str | date] = (),
) -> BusinessCalendar:
    _require_config(actor)
    if await session.scalar(select(BusinessCalendar.id).where(BusinessCalendar.key == key)):
        raise Conflict(f"a business calendar with key {key!r} already exists; PATCH it or choose another key")
    stored_windows, stored_holidays = _checked_calendar(time_zone, windows, holidays)
    now = utcnow()
    row = BusinessCalendar(
        key=key,
        name=name,
        time_zone=time_zone,
        windows=stored_windows,
        holidays=stored_holidays,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    _audit(
        session, actor.ref, "business_calendar.create", "business_calendar", key, None, _calendar_view(row)
    )
    return row


async def update_calendar(
    *, session: AsyncSession, actor: Actor, key: str, changes: Mapping[str, Any]
) -> BusinessCalendar:
    """Change name, time_zone, windows and/or holidays (the key is permanent)."""
    _require_config(actor)
    row = await get_calendar(session=session, key=key)
    before = _calendar_view(row)
    merged = before | {k: v for k, v in changes.items() if k in ("name", "time_zone", "windows", "holidays")}
    windows, holidays = _checked_calendar(merged["time_zone"], merged["windows"], merged["holidays"])
    row.name, row.time_zone, row.windows, row.holidays = (
        merged["name"],
        merged["time_zone"],
        windows,
        holidays,
    )
    after = _calendar_view(row)
    if after != before:
        row.updated_at = utcnow()
        _audit(session, actor.ref, "business_calendar.update", "business_calendar", key, before, after)
    return row


async def delete_calendar(*, session: AsyncSession, actor: Actor, key: str) -> None:
    """Remove a calendar no policy uses (clocks that measured with it fall back to calendar time)."""
    _require_config(actor)
    row = await get_calendar(session=session, key=key)
    users = list(await session.scalars(select(SlaPolicy.name).where(SlaPolicy.calendar_id == row.id)))
    if users:
        raise Conflict(
            f"business calendar {key!r} is used by SLA policies {', '.join(users)}; change them first"
        )
    before = _calendar_view(row)
    await session.delete(row)
    _audit(session, actor.ref, "business_calendar.delete", "business_calendar", key, before, None)


# --- policies --------------------------------------------------------------------------------------

POLICY_FIELDS = (
    "name",
    "priority",
    "type_key",
    "service_id",
    "response_minutes",
    "resolution_minutes",
    "calendar_id",
    "warn_percent",
    "notify_managers",
    "notify_user_id",
    "active",
)


def _policy_view(p: SlaPolicy) -> dict[str, Any]:
    return {name: getattr(p, name) for name in POLICY_FIELDS}


async def list_policies(*, session: AsyncSession, priority: int | None = None) -> list[SlaPolicy]:
    stmt = select(SlaPolicy).order_by(SlaPolicy.priority, SlaPolicy.id)
    if priority is not None:
        stmt = stmt.where(SlaPolicy.priority == priority)
    return list(await session.scalars(stmt))


async def get_policy(*, session: AsyncSession, policy_id: int) -> SlaPolicy:
    found = await session.get(SlaPolicy, policy_id)
    if found is None:
        raise NotFound(f"no SLA policy {policy_id}")
    return found


async def _check_policy(session: AsyncSession, p: SlaPolicy) -> None:
    """Invalid or Conflict naming what to change; runs before the row is flushed (no autoflush)."""
    with session.no_autoflush:
        await _check_policy_fields(session, p)


async def _check_policy_fields(session: AsyncSession, p: SlaPolicy) -> None:
    if p.response_minutes is None and p.resolution_minutes is None:
        raise Invalid(
            "give response_minutes and/or resolution_minutes: a policy without targets does nothing"
        )
    if p.priority not in (1, 2, 3, 4):
        raise Invalid("priority is 1 (critical) to 4 (low)")
    if any(m is not None and m <= 0 for m in (p.response_minutes, p.resolution_minutes)):
        raise Invalid("response_minutes and resolution_minutes are positive numbers of minutes")
    if p.warn_percent is not None and not 1 <= p.warn_percent <= 99:
        raise Invalid("warn_percent is 1 to 99 (null for no warning)")
    if p.type_key is not None and not await session.scalar(
        select(IncidentType.id).where(IncidentType.key == p.type_key)
    ):
        raise Invalid(f"type: no incident type {p.type_key!r}")
    if p.service_id is not None and not await catalog.services_by_id(session=session, ids=[p.service_id]):
        raise Invalid(f"service_id: no service with id {p.service_id}")
    if p.notify_user_id is not None:
        try:
            await auth.get_user(session=session, user_id=p.notify_user_id)
        except NotFound:
            raise Invalid(f"notify_user_id: no user with id {p.notify_user_id}") from None
    clash = await session.scalar(
        select(SlaPolicy.name).where(
            SlaPolicy.priority == p.priority,
            SlaPolicy.type_key.is_(None) if p.type_key is None else SlaPolicy.type_key == p.type_key,
            SlaPolicy.service_id.is_(None) if p.service_id is None else SlaPolicy.service_id == p.service_id,
            SlaPolicy.id != (p.id or 0),
        )
    )
    if clash is not None:
        raise Conflict(
            f"SLA policy {clash!r} already covers P{p.priority} with the same type and service; edit that one"
        )


async def calendar_id_for(session: AsyncSession, key: str | None) -> int | None:
    """The id of the calendar named `key` (None = calendar time), or Invalid."""
    if key is None:
        return None
    try:
        return (await get_calendar(session=session, key=key)).id
    except NotFound as exc:
        raise Invalid(f"calendar: {exc.detail}") from None


async def _stored(session: AsyncSession, fields: Mapping[str, Any]) -> dict[str, Any]:
    """POLICY_FIELDS values from what a caller gave; a `calendar` key is turned into its calendar_id."""
    values = {k: v for k, v in fields.items() if k in POLICY_FIELDS}
    if "calendar" in fields:
        values["calendar_id"] = await calendar_id_for(session, fields["calendar"])
    return values


async def create_policy(*, session: AsyncSession, actor: Actor, fields: Mapping[str, Any]) -> SlaPolicy:
    """A new policy from POLICY_FIELDS values; the calendar may be given by key as `calendar`."""
    _require_config(actor)
    config_cache.changed(session)
    now = utcnow()
    values = {"warn_percent": 75, "notify_managers": True, "active": True} | await _stored(session, fields)
    policy = SlaPolicy(**values, created_at=now, updated_at=now)
    await _check_policy(session, policy)
    session.add(policy)
    await session.flush()
    _audit(session, actor.ref, "sla_policy.create", "sla_policy", policy.id, None, _policy_view(policy))
    return policy


async def update_policy(
    *, session: AsyncSession, actor: Actor, policy_id: int, changes: Mapping[str, Any]
) -> SlaPolicy:
    """Change the given POLICY_FIELDS (and/or `calendar` by key); None clears an optional one."""
    _require_config(actor)
    config_cache.changed(session)
    policy = await get_policy(session=session, policy_id=policy_id)
    before = _policy_view(policy)
    for name, value in (await _stored(session, changes)).items():
        setattr(policy, name, value)
    after = _policy_view(policy)
    if after != before:
        await _check_policy(session, policy)
        policy.updated_at = utcnow()
        _audit(session, actor.ref, "sla_policy.update", "sla_policy", policy.id, before, after)
    return policy


async def delete_policy(*, session: AsyncSession, actor: Actor, policy_id: int) -> None:
    """Remove a policy; running clocks keep their targets (deactivating with active=false does the same)."""
    _require_config(actor)
    config_cache.changed(session)
    policy = await get_policy(session=session, policy_id=policy_id)
    before = _policy_view(policy)
    await session.delete(policy)
    _audit(session, actor.ref, "sla_policy.delete", "sla_policy", policy_id, before, None)


def _audit(
    session: AsyncSession, actor: str, action: str, entity: str, entity_id: object, before: Any, after: Any
) -> None:
    audit.record(
        session=session,
        actor=actor,
        action=action,
        entity_type=entity,
        entity_id=entity_id,
        before=before,
        after=after,
    )


async def seed_sla(session: AsyncSession) -> None:
    """On first run, the default policies (calendar time) and an example office-hours calendar.

    Each table is seeded only while empty, so what an admin deleted stays deleted.
    """
    now = utcnow()
    if await session.scalar(select(BusinessCalendar.id).limit(1)) is None:
        cal = BusinessCalendar(**DEFAULT_CALENDAR, holidays=[], created_at=now, updated_at=now)
        session.add(cal)
        _audit(
            session,
            SEED_ACTOR,
            "business_calendar.create",
            "business_calendar",
            cal.key,
            None,
            DEFAULT_CALENDAR,
        )
    if await session.scalar(select(SlaPolicy.id).limit(1)) is None:
        for priority, name, response, resolution in DEFAULT_POLICIES:
            policy = SlaPolicy(
                name=name,
                priority=priority,
                response_minutes=response,
                resolution_minutes=resolution,
                warn_percent=75,
                notify_managers=True,
                active=True,
                created_at=now,
                updated_at=now,
            )
            session.add(policy)
            await session.flush()
            _audit(
                session, SEED_ACTOR, "sla_policy.create", "sla_policy", policy.id, None, _policy_view(policy)
            )
    await session.flush()


__all__ = [
    "DEFAULT_POLICIES",
    "POLICY_FIELDS",
    "calendar_id_for",
    "calendar_of",
    "create_calendar",
    "create_policy",
    "delete_calendar",
    "delete_policy",
    "get_calendar",
    "get_policy",
    "list_calendars",
    "list_policies",
    "seed_sla",
    "update_calendar",
    "update_policy",
]
