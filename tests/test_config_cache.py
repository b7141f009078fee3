"""The per-process copies of configuration: fresh after a change here, never holding a rolled-back change,
and at most `TTL` seconds behind a change made by another process."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tocsin import config_cache
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database
from tocsin.incidents import configuration
from tocsin.incidents.matrix import DEFAULT

pytestmark = pytest.mark.anyio

ALL_P4 = [(i, u, 4) for i in (1, 2, 3) for u in (1, 2, 3)]


async def matrix_now(db: Database) -> dict[tuple[int, int], int]:
    async with db.read() as s:
        return await configuration.get_matrix(session=s)


class Boom(Exception):
    pass


async def test_a_change_made_here_is_seen_by_the_next_unit_of_work(db: Database) -> None:
    assert await matrix_now(db) == DEFAULT
    async with db.write() as s:
        await configuration.replace_matrix(session=s, actor=SYSTEM, cells=ALL_P4)
    assert set((await matrix_now(db)).values()) == {4}


async def test_a_rolled_back_change_never_reaches_the_copy(db: Database) -> None:
    assert await matrix_now(db) == DEFAULT  # a copy exists
    with pytest.raises(Boom):
        async with db.write() as s:
            await configuration.replace_matrix(session=s, actor=SYSTEM, cells=ALL_P4)
            inside = await configuration.get_matrix(session=s)
            assert set(inside.values()) == {4}, "the unit of work sees its own change"
            raise Boom
    assert await matrix_now(db) == DEFAULT


async def test_a_change_by_another_process_is_seen_within_the_ttl(
    db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_cache, "TTL", 1.0)
    assert await matrix_now(db) == DEFAULT
    other = Database(database_url, pool_size=1)  # writes the table directly, as another process would
    try:
        async with other.write() as s:
            await s.execute(text("UPDATE priority_matrix SET priority = 4"))
    finally:
        await other.dispose()
    assert await matrix_now(db) == DEFAULT, "within the TTL the copy is used"
    await asyncio.sleep(1.1)
    assert set((await matrix_now(db)).values()) == {4}


async def test_a_copy_taken_while_a_change_is_uncommitted_is_dropped_by_its_commit(db: Database) -> None:
    """Another unit of work may read (and keep) the old rows after `changed()` but before the commit;
    the commit drops that copy again."""
    assert await matrix_now(db) == DEFAULT
    async with db.write() as s:
        await configuration.replace_matrix(session=s, actor=SYSTEM, cells=ALL_P4)
        await s.flush()
        assert await matrix_now(db) == DEFAULT, "others still see the committed rows, and keep a copy"
    assert set((await matrix_now(db)).values()) == {4}
