"""Maintenance windows as records: schedule, change and cancel them, and load the ones in force.

Alerts received inside a window are stored, flagged `suppressed_by=maintenance`, and open no incident. When
a window ends (or is cancelled or shortened), a timer re-examines the alerts it held that are still open:
those no longer covered by any window are routed as if they had just arrived. Reading needs Can.read_all,
changing needs Can.manage_catalog (the people who run services plan their maintenance) and is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import snapshot
from tocsin.alerts.models import MaintenanceWindow
from tocsin.alerts.refs import check_service
from tocsin.alerts.routing import Window, parse_conditions
from tocsin.audit import service as audit
from tocsin.auth.permissions import Actor, Can
from tocsin.auth.service import require
from tocsin.db import utcnow
from tocsin.engine import service as engine
from tocsin.errors import Invalid, NotFound

TIMER = "alerts.maintenance"
MAX_LENGTH = timedelta(days=90)
_FIELDS = ("name", "service_id", "matchers", "starts_at", "ends_at")


def view(window: MaintenanceWindow) -> dict[str, Any]:
    return {name: getattr(window, name) for name in _FIELDS}


def _check(values: dict[str, Any], now: datetime) -> None:
    try:
        values["matchers"] = [c.as_data() for c in parse_conditions(values.get("matchers") or [])]
    except ValueError as exc:
        raise Invalid(f"matchers: {exc}") from None
    if values.get("service_id") is None and not values["matchers"]:
        raise Invalid("a maintenance window needs a service_id, matchers, or both; it would quiet everything")
    starts, ends = values["starts_at"], values["ends_at"]
    if starts.tzinfo is None or ends.tzinfo is None:
        raise Invalid("starts_at and ends_at need a time zone (e.g. 2024-03-01T22:00:00Z)")
    if ends <= starts:
        raise Invalid("ends_at must be after starts_at")
    if ends - starts > MAX_LENGTH:
        raise Invalid(f"a maintenance window lasts at most {MAX_LENGTH.days} days")
    if ends <= now:
        raise Invalid("ends_at is in the past; a window that is over quiets nothing")


async def _release_at(session: AsyncSession, window_id: int, at: datetime) -> None:
    """When the window stops covering alerts, look again at those it held back; intake sees the change."""
    await engine.schedule(session=session, kind=TIMER, subject=str(window_id), due_at=at)
    snapshot.changed()


def _record(session: AsyncSession, actor: Actor, action: str, window_id: int, **change: Any) -> None:
    audit.record(
        session=session,
        actor=actor.ref,
        action=f"maintenance_window.{action}",
        entity_type="maintenance_window",
        entity_id=window_id,
        **change,
    )


async def list_windows(
    *, session: AsyncSession, actor: Actor, service_id: int | None = None, include_past: bool = False
) -> list[MaintenanceWindow]:
    """Windows by start time; past ones only when asked for."""
    require(actor, Can.read_all)
    stmt = select(MaintenanceWindow).order_by(MaintenanceWindow.starts_at, MaintenanceWindow.id)
    if service_id is not None:
        stmt = stmt.where(MaintenanceWindow.service_id == service_id)
    if not include_past:
        stmt = stmt.where(MaintenanceWindow.ends_at > utcnow())
    return list(await session.scalars(stmt))


async def get_window(*, session: AsyncSession, actor: Actor, window_id: int) -> MaintenanceWindow:
    require(actor, Can.read_all)
    window = await session.get(MaintenanceWindow, window_id)
    if window is None:
        raise NotFound(f"no maintenance window with id {window_id}")
    return window


async def create_window(
    *,
    session: AsyncSession,
    actor: Actor,
    name: str,
    starts_at: datetime,
    ends_at: datetime,
    service_id: int | None = None,
    matchers: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> MaintenanceWindow:
    """Schedule a window for a service and/or the alerts its matchers select."""
    require(actor, Can.manage_catalog)
    now = now or utcnow()
    values: dict[str, Any] = {
        "name": name,
        "service_id": service_id,
        "matchers": matchers or [],
        "starts_at": starts_at,
        "ends_at": ends_at,
    }
    _check(values, now)
    if service_id is not None:
        await check_service(session, service_id)
    window = MaintenanceWindow(**values, created_by=actor.ref, created_at=now, updated_at=now)
    session.add(window)
    await session.flush()
    await _release_at(session, window.id, window.ends_at)
    _record(session, actor, "create", window.id, after=view(window))
    return window


async def update_window(
    *,
    session: AsyncSession,
    actor: Actor,
    window_id: int,
    changes: dict[str, Any],
    now: datetime | None = None,
) -> MaintenanceWindow:
    """Change the given fields; shortening a window releases what it held at its new end."""
    require(actor, Can.manage_catalog)
    now = now or utcnow()
    window = await get_window(session=session, actor=actor, window_id=window_id)
    before = view(window)
    unknown = sorted(set(changes) - set(_FIELDS))
    if unknown:
        raise Invalid(f"cannot change {', '.join(unknown)}")
    values = {name: changes.get(name, getattr(window, name)) for name in _FIELDS}
    _check(values, now)
    if values["service_id"] is not None:
        await check_service(session, values["service_id"])
    for name, value in values.items():
        setattr(window, name, value)
    window.updated_at = now
    await session.flush()
    await _release_at(session, window.id, window.ends_at)
    _record(session, actor, "update", window.id, before=before, after=view(window))
    return window


async def delete_window(
    *, session: AsyncSession, actor: Actor, window_id: int, now: datetime | None = None
) -> None:
    """Cancel a window; the alerts it held that are still open are routed at once."""
    require(actor, Can.manage_catalog)
    window = await get_window(session=session, actor=actor, window_id=window_id)
    _record(session, actor, "delete", window.id, before=view(window))
    await session.delete(window)
    await session.flush()
    await _release_at(session, window_id, now or utcnow())


def as_window(row: MaintenanceWindow) -> Window:
    return Window(
        id=row.id,
        name=row.name,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        service_id=row.service_id,
        matchers=parse_conditions(row.matchers),
    )


async def windows_until(session: AsyncSession, at: datetime) -> Sequence[Window]:
    """The windows not over at `at`, in force or to come (each checks its own start and end)."""
    rows = await session.scalars(
        select(MaintenanceWindow).where(MaintenanceWindow.ends_at > at).order_by(MaintenanceWindow.id)
    )
    return [as_window(r) for r in rows]
