"""Recording changes into the audit chain and verifying it.

Services call `record()` during a unit of work; the entries are buffered on the session and chained by
`seal()` right before commit, under a lock (an advisory lock taken in order on PostgreSQL, see
`models.HEAD_FUNCTION`; the write lock on SQLite), so concurrent processes never fork the chain and the lock
is held only for the final insert.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, func, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit.chain import GENESIS, Link, jsonable, row_hash
from tocsin.audit.models import HEAD_FUNCTION, AuditEntry, AuditHead
from tocsin.db import dialect_of, upsert_insert, utcnow, write_deferred

_BUFFER = "tocsin_audit"
# Built once: every write runs them.
_LAST = select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
_INSERT = insert(cast(Table, AuditEntry.__table__))
# The head, with the log's last sequence number (an index lookup in the same round trip), for a head row
# left behind the log (restored from an older backup, or edited).
_HEAD = select(AuditHead.seq, AuditHead.hash, select(func.max(AuditEntry.seq)).scalar_subquery()).where(
    AuditHead.id == 1
)
_HEAD_LOCKED = text(f"SELECT seq, hash, last_seq FROM {HEAD_FUNCTION}()")


@dataclass(frozen=True)
class Pending:
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: Any
    after: Any


def record(
    *,
    session: AsyncSession,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: object,
    before: Any = None,
    after: Any = None,
) -> None:
    """Queue one audit entry; it is chained and written when the unit of work commits."""
    session.info.setdefault(_BUFFER, []).append(
        Pending(actor, action, entity_type, str(entity_id), jsonable(before), jsonable(after))
    )


async def seal(session: AsyncSession) -> None:
    """Append the session's queued entries to the chain; called by the unit of work just before commit."""
    pending: list[Pending] = session.info.pop(_BUFFER, [])
    if not pending:
        return
    await session.flush()
    await write_deferred(session)  # before the chain's lock: every writer waits for it
    dialect = dialect_of(session)
    seq, prev = await _head(session, dialect)
    now = utcnow()
    rows = []
    for p in pending:
        seq += 1
        link = Link(seq, now, p.actor, p.action, p.entity_type, p.entity_id, p.before, p.after)
        digest = row_hash(prev, link)
        rows.append(
            {
                "seq": seq,
                "at": now,
                "actor": p.actor,
                "action": p.action,
                "entity_type": p.entity_type,
                "entity_id": p.entity_id,
                "before": p.before,
                "after": p.after,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    # Core, not the ORM: nothing reads these rows back in the unit of work.
    if dialect == "postgresql" and len(rows) == 1:
        await session.execute(_pg_append_one(), rows[0] | {"head_seq": seq, "head_hash": prev})
        return
    await session.execute(_INSERT, rows)
    await session.execute(_head_upsert(dialect), {"id": 1, "seq": seq, "hash": prev})


@functools.cache
def _pg_append_one() -> Any:
    """PostgreSQL: insert one entry and move the head in one statement (the head's upsert is a
    data-modifying WITH), which saves a round trip on most units of work. (A multi-row VALUES would not
    be cached by SQLAlchemy, and compiling it costs more than the round trip.)"""
    table = cast(Table, AuditEntry.__table__)
    head = postgresql.insert(cast(Table, AuditHead.__table__)).values(
        id=1, seq=bindparam("head_seq"), hash=bindparam("head_hash")
    )
    head = head.on_conflict_do_update(
        index_elements=["id"], set_={"seq": head.excluded.seq, "hash": head.excluded.hash}
    )
    row = {c.key: bindparam(c.key, type_=c.type) for c in table.columns}
    return insert(table).values(row).add_cte(head.cte("head"))


async def _head(session: AsyncSession, dialect: str) -> tuple[int, str]:
    """The chain's last sequence number and hash, locked until commit so no other writer can extend the
    chain meanwhile: on PostgreSQL by the lock `HEAD_FUNCTION` takes (one round trip); on SQLite the single
    writer already holds the database lock."""
    head = (await session.execute(_HEAD if dialect != "postgresql" else _HEAD_LOCKED)).first()
    if head is None or (head[2] is not None and head[2] > head[0]):
        # No head row (a new database, or its head was removed), or one behind the log: go on from the log,
        # which would otherwise refuse the next sequence number. A head ahead of the log (its newest rows
        # deleted) is kept, so the gap stays for `verify` to report.
        head = (await session.execute(_LAST)).first()
    return (head[0], head[1]) if head is not None else (0, GENESIS)


@functools.cache
def _head_upsert(dialect: str) -> Any:
    stmt = upsert_insert(dialect)(AuditHead.__table__)
    return stmt.on_conflict_do_update(
        index_elements=["id"], set_={"seq": stmt.excluded.seq, "hash": stmt.excluded.hash}
    )


@dataclass(frozen=True)
class Verdict:
    length: int
    first_bad: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def _rows(conn: Connection, batch: int = 5000) -> Iterator[AuditEntry]:
    after = 0
    while True:
        rows = conn.execute(
            select(AuditEntry.__table__).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        for r in rows:
            yield AuditEntry(**r._mapping)
        after = rows[-1].seq


def verify(conn: Connection) -> Verdict:
    """Recompute the whole chain; name the first sequence number whose row or link does not hold."""
    prev, expected, count = GENESIS, 1, 0
    for row in _rows(conn):
        if row.seq != expected:
            return Verdict(count, expected, f"row {expected} is missing (next row found is {row.seq})")
        if row.prev_hash != prev:
            return Verdict(count, row.seq, f"row {row.seq} does not link to the row before it")
        link = Link(
            row.seq, row.at, row.actor, row.action, row.entity_type, row.entity_id, row.before, row.after
        )
        digest = row_hash(prev, link)
        if digest != row.hash:
            return Verdict(count, row.seq, f"row {row.seq} was altered (its hash does not match its content)")
        prev, expected, count = digest, expected + 1, count + 1
    head = conn.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).first()
    if head is not None and (head.seq != count or head.hash != prev):
        return Verdict(
            count,
            count + 1 if head.seq > count else head.seq,
            f"the chain ends at row {count} but its recorded head is row {head.seq}",
        )
    return Verdict(count, None, None)


async def entries_for(
    *, session: AsyncSession, entity_type: str, entity_id: object, limit: int = 200
) -> list[AuditEntry]:
    rows = await session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity_type == entity_type, AuditEntry.entity_id == str(entity_id))
        .order_by(AuditEntry.seq.desc())
        .limit(limit)
    )
    return list(rows)
