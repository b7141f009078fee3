"""The audit chain: sealing entries on commit, and verify naming the first broken link."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tocsin.audit import service as audit
from tocsin.auth import service as auth
from tocsin.auth.models import Role
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database, make_sync_engine
from tocsin.wiring import open_database

pytestmark = pytest.mark.anyio


async def _make_users(db: Database, n: int) -> None:
    for i in range(n):
        async with db.write() as s:
            await auth.create_user(
                session=s, actor=SYSTEM, email=f"u{i}@example.com", name=f"U{i}", role=Role.viewer
            )


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
