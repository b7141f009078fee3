"""The audit chain: sealing entries on commit, and verify naming the first broken link."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import insert, text

from tocsin.audit import service as audit
from tocsin.audit.chain import Link, row_hash
from tocsin.audit.models import AuditEntry
from tocsin.auth import service as auth
from tocsin.auth.models import Role
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database, make_sync_engine, utcnow
from tocsin.wiring import open_database

pytestmark = pytest.mark.anyio


async def _make_users(db: Database, n: int) -> None:
    for i in range(n):
        await _create_user(db, f"u{i}@example.com")


async def _create_user(db: Database, email: str) -> None:
    async with db.write() as s:
        await auth.create_user(session=s, actor=SYSTEM, email=email, name=email, role=Role.viewer)


def _verify(url: str) -> audit.Verdict:
    engine = make_sync_engine(url)
    with engine.connect() as conn:
        verdict = audit.verify(conn)
    engine.dispose()
    return verdict


def _tamper(url: str, sql: str) -> None:
    engine = make_sync_engine(url)
    with engine.begin() as conn:
        conn.execute(text(sql))
    engine.dispose()


async def test_every_write_is_chained_and_the_intact_chain_verifies(db: Database, database_url: str) -> None:
    seeded = _verify(database_url).length
    await _make_users(db, 5)
    verdict = _verify(database_url)
    assert verdict.ok and verdict.length == seeded + 5


async def test_a_rolled_back_unit_of_work_leaves_no_audit_row(db: Database, database_url: str) -> None:
    seeded = _verify(database_url).length
    try:
        async with db.write() as s:
            await auth.create_user(session=s, actor=SYSTEM, email="x@example.com", name="X", role=Role.viewer)
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert _verify(database_url).length == seeded


async def test_editing_a_row_is_named_by_its_sequence_number(db: Database, database_url: str) -> None:
    n = _verify(database_url).length
    await _make_users(db, 6)
    _tamper(database_url, f"UPDATE audit_log SET actor = 'user:999' WHERE seq = {n + 4}")
    verdict = _verify(database_url)
    assert not verdict.ok and verdict.first_bad == n + 4 and "altered" in (verdict.reason or "")


async def test_deleting_a_middle_row_is_detected(db: Database, database_url: str) -> None:
    n = _verify(database_url).length
    await _make_users(db, 6)
    _tamper(database_url, f"DELETE FROM audit_log WHERE seq = {n + 3}")
    verdict = _verify(database_url)
    assert verdict.first_bad == n + 3 and "missing" in (verdict.reason or "")


async def test_deleting_the_newest_rows_is_detected_through_the_head(db: Database, database_url: str) -> None:
    n = _verify(database_url).length
    await _make_users(db, 6)
    _tamper(database_url, f"DELETE FROM audit_log WHERE seq >= {n + 5}")
    verdict = _verify(database_url)
    assert verdict.first_bad == n + 5


async def test_rehashing_a_row_breaks_the_next_link(db: Database, database_url: str) -> None:
    n = _verify(database_url).length
    await _make_users(db, 4)
    _tamper(
        database_url,
        f"UPDATE audit_log SET hash = CASE WHEN substr(hash, 1, 1) = 'f' THEN 'e' ELSE 'f' END "
        f"|| substr(hash, 2) WHERE seq = {n + 2}",
    )
    verdict = _verify(database_url)
    assert verdict.first_bad == n + 2


async def test_concurrent_writers_never_fork_the_chain(database_url: str) -> None:
    """Two engines, as two processes would have, writing at once: first on a chain with no head row yet
    (PostgreSQL takes an advisory lock), then on one with a head (whose row lock serialises them)."""
    _tamper(database_url, "DELETE FROM audit_log")
    _tamper(database_url, "DELETE FROM audit_head")
    engines = [open_database(database_url, pool_size=5) for _ in range(2)]

    async def create(i: int) -> None:
        async with engines[i % 2].write() as s:
            await auth.create_user(
                session=s, actor=SYSTEM, email=f"c{i}@example.com", name=f"C{i}", role=Role.viewer
            )

    try:
        await asyncio.gather(*(create(i) for i in range(20)))
        await asyncio.gather(*(create(i) for i in range(20, 40)))
    finally:
        for engine in engines:
            await engine.dispose()
    verdict = _verify(database_url)
    assert (verdict.ok, verdict.length) == (True, 40)


async def test_a_head_row_behind_the_log_does_not_stop_writes(db: Database, database_url: str) -> None:
    """A head restored from an older backup (or edited) must not make every audited write fail on the
    next sequence number: the chain goes on from the log, intact."""
    await _make_users(db, 3)
    _tamper(
        database_url,
        "UPDATE audit_head SET seq = seq - 2, hash = (SELECT hash FROM audit_log WHERE seq = "
        "(SELECT max(seq) - 2 FROM audit_log)) WHERE id = 1",
    )
    length = _verify(database_url).length
    async with db.write() as s:
        await auth.create_user(session=s, actor=SYSTEM, email="late@example.com", name="L", role=Role.viewer)
    verdict = _verify(database_url)
    assert (verdict.ok, verdict.length) == (True, length + 1)


async def _waiting_on_locks(url: str) -> int:
    """Sessions of this database waiting for a lock (PostgreSQL)."""
    engine = make_sync_engine(url)
    with engine.connect() as conn:
        count = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    engine.dispose()
    return int(count)


async def _until_waiting(url: str, n: int) -> None:
    for _ in range(500):
        if await _waiting_on_locks(url) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{n} writers never queued for the chain's lock")


async def test_writers_get_the_chain_in_the_order_they_asked(db: Database, database_url: str) -> None:
    """PostgreSQL: writers waiting for the chain are served first come, first served. A row lock on the
    head, which each writer updates, let later arrivals go first (a few waited ten times the median)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite's single writer queues in order by itself (an asyncio lock)")
    await _make_users(db, 1)  # a head row exists
    holder = open_database(database_url, pool_size=2)
    writers = [open_database(database_url, pool_size=2) for _ in range(4)]
    order = [f"w{i}@example.com" for i in range(4)]
    try:
        async with holder.write() as held:  # a writer in the middle of its commit, holding the chain
            await auth.create_user(
                session=held, actor=SYSTEM, email="h@example.com", name="H", role=Role.viewer
            )
            await audit.seal(held)  # takes the lock and moves the head, as every writer does
            tasks = []
            for i, writer in enumerate(writers):
                tasks.append(asyncio.create_task(_create_user(writer, order[i])))
                await _until_waiting(database_url, i + 1)
        await asyncio.gather(*tasks)
    finally:
        for engine in [holder, *writers]:
            await engine.dispose()
    engine = make_sync_engine(database_url)
    with engine.connect() as conn:
        sealed = [
            row[0]
            for row in conn.execute(
                text(
                    "SELECT after->>'email' FROM audit_log WHERE action = 'user.create' "
                    "AND after->>'email' LIKE 'w%' ORDER BY seq"
                )
            )
        ]
    engine.dispose()
    assert sealed == order
    assert _verify(database_url).ok


async def test_a_writer_that_locks_only_the_head_row_still_keeps_others_out(
    db: Database, database_url: str
) -> None:
    """PostgreSQL, rolling upgrade: a process of the previous version locks only the head row, then extends
    the chain. A writer of this version must wait for it and go on from its link, or the two would fork
    the chain (the second would fail on the sequence number the first took)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL has processes locking the chain on their own")
    await _make_users(db, 1)
    engine = make_sync_engine(database_url)
    with engine.begin() as old:
        seq, prev = old.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")).one()
        writer = asyncio.create_task(_create_user(db, "after@example.com"))
        await _until_waiting(database_url, 1)
        assert not writer.done()
        now = utcnow()
        link = Link(seq + 1, now, "old", "test.old", "test", "1", None, {"by": "the old version"})
        digest = row_hash(prev, link)
        old.execute(
            insert(AuditEntry),
            {
                "seq": seq + 1,
                "at": now,
                "actor": "old",
                "action": "test.old",
                "entity_type": "test",
                "entity_id": "1",
                "before": None,
                "after": {"by": "the old version"},
                "prev_hash": prev,
                "hash": digest,
            },
        )
        old.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"),
            {"s": seq + 1, "h": digest},
        )
    await writer  # the row lock went with the old process's transaction
    engine.dispose()
    verdict = _verify(database_url)
    assert (verdict.ok, verdict.length) == (True, seq + 2)
