"""The worker's SQL on the timers table: claim due rows, settle firings, find the next due time, release.

Every function runs inside the caller's transaction. Claims lock the chosen rows with FOR UPDATE SKIP LOCKED
on PostgreSQL, so concurrent workers each get different rows; on SQLite the writer lock (BEGIN IMMEDIATE)
already makes the claim the only writer, and SQLAlchemy leaves the FOR UPDATE clause out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from tocsin.engine.handlers import Fired
from tocsin.engine.models import Timer
from tocsin.engine.outcomes import Settlement

TIMERS = cast(Table, Timer.__table__)
_c = TIMERS.c


# Built once: these run for every claim and every wake-up.
_NOW = bindparam("b_now", type_=_c.due_at.type)
_CLAIMABLE = or_(_c.lease_until.is_(None), _c.lease_until < _NOW)
_NEXT_DUE = select(_c.due_at).where(_CLAIMABLE).order_by(_c.due_at).limit(1)
# One statement: the subquery locks the rows it picks (skipping rows other claims hold) and its LIMIT keeps
# it from being flattened into a join, so PostgreSQL evaluates it once.
_DUE = (
    select(_c.id)
    .where(_c.due_at <= _NOW, _CLAIMABLE)
    .order_by(_c.due_at, _c.id)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    update(TIMERS)
    .where(_c.id.in_(_DUE.scalar_subquery()))
    .values(lease_owner=bindparam("b_owner"), lease_until=bindparam("b_until"), attempts=_c.attempts + 1)
    .returning(_c.id, _c.kind, _c.subject, _c.due_at, _c.payload, _c.attempts)
)


async def claim(
    session: AsyncSession, *, now: datetime, lease_owner: str, lease_until: datetime, limit: int
) -> list[Fired]:
    """Lease up to `limit` due, unleased (or lease-expired) timers, earliest first, counting the attempt."""
    params = {"b_now": now, "b_limit": limit, "b_owner": lease_owner, "b_until": lease_until}
    rows = (await session.execute(_CLAIM, params)).all()
    fired = [
        Fired(
            id=r.id,
            kind=r.kind,
            subject=r.subject,
            due_at=r.due_at,
            payload=r.payload,
            attempts=r.attempts,
            lease_owner=lease_owner,
        )
        for r in rows
    ]
    return sorted(fired, key=lambda f: (f.due_at, f.id))  # RETURNING order is unspecified


async def next_due(session: AsyncSession, *, now: datetime) -> datetime | None:
    """The earliest due time among timers nobody holds a live lease on (walks the due_at index)."""
    return cast(datetime | None, await session.scalar(_NEXT_DUE, {"b_now": now}))


_held = (_c.id == bindparam("b_id")) & (_c.lease_owner == bindparam("b_owner"))
_DELETE = delete(TIMERS).where(_held)
_AGAIN = (
    update(TIMERS)
    .where(_held)
    .values(due_at=bindparam("b_due"), lease_owner=None, lease_until=None, attempts=0, last_error=None)
)
_AGAIN_WITH_PAYLOAD = _AGAIN.values(payload=bindparam("b_payload"))
_RETRY = (
    update(TIMERS)
    .where(_held)
    .values(due_at=bindparam("b_due"), lease_owner=None, lease_until=None, last_error=bindparam("b_error"))
)


async def settle(session: AsyncSession, settlements: Sequence[Settlement]) -> None:
    """Apply firings' outcomes, each only if its lease is still held: schedule() in the meantime releases
    the lease (the moved timer survives a Done), and a lease that expired and was re-claimed elsewhere
    belongs to the newer firing."""
    groups: dict[Executable, list[dict[str, Any]]] = {}
    for s in settlements:
        params: dict[str, Any] = {"b_id": s.timer_id, "b_owner": s.lease_owner}
        stmt: Executable
        if s.due_at is None:
            stmt = _DELETE
        elif s.error is not None:
            stmt, params = _RETRY, {**params, "b_due": s.due_at, "b_error": s.error}
        elif s.replace_payload:
            stmt, params = _AGAIN_WITH_PAYLOAD, {**params, "b_due": s.due_at, "b_payload": s.payload}
        else:
            stmt, params = _AGAIN, {**params, "b_due": s.due_at}
        groups.setdefault(stmt, []).append(params)
    for stmt, rows in groups.items():
        await session.execute(stmt, rows)


async def release(session: AsyncSession, *, owner: str) -> int:
    """Drop every lease taken by `owner` (its claims are `owner/<n>`) so other workers fire them at once."""
    stmt = (
        update(TIMERS)
        .where(_c.lease_owner.startswith(f"{owner}/", autoescape=True))
        .values(lease_owner=None, lease_until=None)
    )
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
