"""Scheduling and cancelling timers inside the caller's unit of work.

A timer is identified by (kind, subject): scheduling the same pair again moves it. Writing it in the same
transaction as its cause is what makes it durable; the commit wakes the engine (in-process event, and
NOTIFY on PostgreSQL, which is delivered only if the transaction commits).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, literal_column, null, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.db import defer, dialect_of, upsert_insert, utcnow
from tocsin.engine.models import Timer

WAKE_KEY = "tocsin_engine_wake"  # session.info key: earliest due time scheduled in this unit of work
NOTIFY_CHANNEL = "tocsin_timers"
# Timers due further ahead than this are not announced with NOTIFY; workers re-check at least this often.
NOTIFY_HORIZON = timedelta(minutes=5)


_QUEUED = "tocsin_engine_queued"  # session.info: {(kind, subject): (due_at, payload)} written at commit
_ENSURED = "tocsin_engine_ensured"  # session.info: {(kind, subject): due_at} created at commit if absent


@functools.cache
def _upsert(dialect: str) -> Any:
    """One statement for any number of timers: insert, or move an existing one and release its lease."""
    table = Timer.__table__
    stmt = upsert_insert(dialect)(table)
    return stmt.on_conflict_do_update(
        index_elements=["kind", "subject"],
        set_={
            "due_at": stmt.excluded.due_at,
            "payload": stmt.excluded.payload,
            "attempts": literal_column("0"),
            "lease_owner": null(),
            "lease_until": null(),
            "last_error": null(),
        },
    )


async def schedule(
    *, session: AsyncSession, kind: str, subject: str, due_at: datetime, payload: Any = None
) -> None:
    """Create or move the (kind, subject) timer to `due_at`; a held lease is released so it fires anew.

    The timer is written when the unit of work commits (see `db.defer`), together with every other timer
    it scheduled, in one statement; scheduling the same pair twice keeps the last.
    """
    queued = session.info.get(_QUEUED)
    if queued is None:
        queued = session.info[_QUEUED] = {}
        defer(session, flush)
    queued[(kind, subject)] = (due_at, payload)
    earliest = session.info.get(WAKE_KEY)
    if earliest is None or due_at < earliest:
        session.info[WAKE_KEY] = due_at


async def ensure(*, session: AsyncSession, kind: str, subject: str, due_at: datetime) -> None:
    """Create the (kind, subject) timer at `due_at` unless it exists already: for housekeeping that must run
    some time after activity, which new activity must not keep postponing. Written at commit, like
    `schedule` (which wins over `ensure` for the same pair in one unit of work)."""
    ensured = session.info.get(_ENSURED)
    if ensured is None:
        ensured = session.info[_ENSURED] = {}
        defer(session, flush)
    ensured.setdefault((kind, subject), due_at)
    earliest = session.info.get(WAKE_KEY)
    if earliest is None or due_at < earliest:
        session.info[WAKE_KEY] = due_at


@functools.cache
def _insert_absent(dialect: str) -> Any:
    return upsert_insert(dialect)(Timer.__table__).on_conflict_do_nothing(index_elements=["kind", "subject"])


async def flush(session: AsyncSession) -> None:
    """Write the timers scheduled (or ensured) so far in this unit of work, in one statement each: at
    commit, or before reading timers."""
    queued: dict[tuple[str, str], tuple[datetime, Any]] = session.info.pop(_QUEUED, None) or {}
    ensured: dict[tuple[str, str], datetime] = session.info.pop(_ENSURED, None) or {}
    absent = {key: due for key, due in ensured.items() if key not in queued}
    if not queued and not absent:
        return
    dialect = dialect_of(session)
    now = utcnow()
    if queued:
        rows = [
            {"kind": k, "subject": s, "due_at": due, "payload": payload, "attempts": 0, "created_at": now}
            for (k, s), (due, payload) in queued.items()
        ]
        await session.execute(_upsert(dialect), rows)
    if absent:
        rows = [
            {"kind": k, "subject": s, "due_at": due, "payload": None, "attempts": 0, "created_at": now}
            for (k, s), due in absent.items()
        ]
        await session.execute(_insert_absent(dialect), rows)
    earliest = min([due for due, _ in queued.values()] + list(absent.values()))
    if dialect == "postgresql" and earliest <= now + NOTIFY_HORIZON:
        # Delivered only if the transaction commits; the payload lets listening workers ignore timers due
        # after they would wake anyway. Timers due later need no NOTIFY (a round trip, and a wake-up of
        # every worker): each worker re-reads the next due time at least every NOTIFY_HORIZON.
        await session.execute(
            text("SELECT pg_notify(:c, :due)"), {"c": NOTIFY_CHANNEL, "due": earliest.isoformat()}
        )


def _unqueue(session: AsyncSession, matches: Callable[[str, str], bool]) -> None:
    for name in (_QUEUED, _ENSURED):
        queued = session.info.get(name)
        if queued:
            for key in [key for key in queued if matches(*key)]:
                del queued[key]


async def cancel(*, session: AsyncSession, kind: str, subject: str) -> None:
    """Remove the (kind, subject) timer if it exists (a no-op otherwise)."""
    _unqueue(session, lambda k, s: k == kind and s == subject)
    await session.execute(delete(Timer).where(Timer.kind == kind, Timer.subject == subject))


async def cancel_prefix(*, session: AsyncSession, kind: str, subject_prefix: str) -> None:
    """Remove every timer of `kind` whose subject starts with the prefix (e.g. all steps of one incident)."""
    _unqueue(session, lambda k, s: k == kind and s.startswith(subject_prefix))
    await session.execute(
        delete(Timer).where(Timer.kind == kind, Timer.subject.startswith(subject_prefix, autoescape=True))
    )


async def pending(
    *, session: AsyncSession, kind: str | None = None, subject: str | None = None
) -> list[Timer]:
    """Timers not yet fired, earliest first, optionally of one kind and/or subject."""
    await flush(session)
    stmt = select(Timer).order_by(Timer.due_at, Timer.id)
    if kind is not None:
        stmt = stmt.where(Timer.kind == kind)
    if subject is not None:
        stmt = stmt.where(Timer.subject == subject)
    return list(await session.scalars(stmt))
