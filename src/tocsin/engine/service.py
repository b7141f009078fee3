"""Scheduling and cancelling timers inside the caller's unit of work.

A timer is identified by (kind, subject): scheduling the same pair again moves it. Writing it in the same
transaction as its cause is what makes it durable; the commit wakes the engine (in-process event, and
NOTIFY on PostgreSQL, which is delivered only if the transaction commits).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.db import dialect_of, upsert_insert, utcnow
from tocsin.engine.models import Timer

WAKE_KEY = "tocsin_engine_wake"  # session.info key: earliest due time scheduled in this unit of work
NOTIFY_CHANNEL = "tocsin_timers"


async def schedule(
    *, session: AsyncSession, kind: str, subject: str, due_at: datetime, payload: Any = None
) -> None:
    """Create or move the (kind, subject) timer to `due_at`; a held lease is released so it fires anew."""
    dialect = dialect_of(session)
    now = utcnow()
    stmt = upsert_insert(dialect)(Timer).values(
        kind=kind, subject=subject, due_at=due_at, payload=payload, attempts=0, created_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "subject"],
        set_={
            "due_at": due_at,
            "payload": payload,
            "attempts": 0,
            "lease_owner": None,
            "lease_until": None,
            "last_error": None,
        },
    )
    await session.execute(stmt)
    earliest = session.info.get(WAKE_KEY)
    if earliest is None or due_at < earliest:
        session.info[WAKE_KEY] = due_at
        if dialect == "postgresql":
            # The payload lets listening workers ignore timers due after they would wake anyway.
            await session.execute(
                text("SELECT pg_notify(:c, :due)"), {"c": NOTIFY_CHANNEL, "due": due_at.isoformat()}
            )


async def cancel(*, session: AsyncSession, kind: str, subject: str) -> None:
    """Remove the (kind, subject) timer if it exists (a no-op otherwise)."""
    await session.execute(delete(Timer).where(Timer.kind == kind, Timer.subject == subject))


async def cancel_prefix(*, session: AsyncSession, kind: str, subject_prefix: str) -> None:
    """Remove every timer of `kind` whose subject starts with the prefix (e.g. all steps of one incident)."""
    await session.execute(
        delete(Timer).where(Timer.kind == kind, Timer.subject.startswith(subject_prefix, autoescape=True))
    )


async def pending(
    *, session: AsyncSession, kind: str | None = None, subject: str | None = None
) -> list[Timer]:
    """Timers not yet fired, earliest first, optionally of one kind and/or subject."""
    stmt = select(Timer).order_by(Timer.due_at, Timer.id)
    if kind is not None:
        stmt = stmt.where(Timer.kind == kind)
    if subject is not None:
        stmt = stmt.where(Timer.subject == subject)
    return list(await session.scalars(stmt))
