"""SQLite statements run on the event loop's thread, yet nothing slow or waiting ever holds the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tocsin.db import Database

pytestmark = pytest.mark.anyio

# About a second of work for SQLite on a small machine, far beyond the read budget.
SLOW_COUNT = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) SELECT count(*) FROM c"
)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'inline.db'}", pool_size=2)
    async with database.write() as s:
        await s.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"))
    yield database
    await database.dispose()


class Ticker:
    """Counts how often the event loop got to run it while something else was going on."""

    def __init__(self) -> None:
        self.ticks = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            self.ticks += 1
            await asyncio.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()


async def while_ticking(work: asyncio.Future[object] | object) -> tuple[object, int]:
    ticker = Ticker()
    task = asyncio.create_task(ticker.run())
    try:
        result = await work  # type: ignore[misc]
    finally:
        ticker.stop()
        await task
    return result, ticker.ticks


async def test_short_queries_run_inline_and_return_their_rows(sqlite_db: Database) -> None:
    async with sqlite_db.write() as s:
        await s.execute(text("INSERT INTO notes (body) VALUES ('a'), ('b'), ('c')"))
    async with sqlite_db.read() as s:
        result = await s.execute(text("SELECT body FROM notes ORDER BY id"))
        assert result.fetchone() == ("a",)
        assert result.fetchmany(1) == [("b",)]
        assert result.fetchall() == [("c",)]
        assert (await s.execute(text("SELECT count(*) FROM notes WHERE body = 'zz'"))).scalar() == 0


async def test_a_long_query_moves_to_a_thread_and_the_loop_keeps_running(sqlite_db: Database) -> None:
    async def count() -> int:
        async with sqlite_db.read() as s:
            began = time.perf_counter()
            value = (await s.execute(text(SLOW_COUNT), {"n": 3_000_000})).scalar_one()
            assert time.perf_counter() - began > 0.1, "the query was meant to be slow"
            return int(value)

    value, ticks = await while_ticking(count())
    assert value == 3_000_000, "the query ran again in full on the thread"
    # Held, the loop would tick once or twice; free, about every 5 ms (fewer on a loaded machine).
    assert ticks >= 5, f"the loop ran only {ticks} times while the query ran: it was held"


async def test_an_interrupted_query_inside_a_write_keeps_the_writes_before_it(sqlite_db: Database) -> None:
    async with sqlite_db.write() as s:
        await s.execute(text("INSERT INTO notes (body) VALUES ('kept')"))
        slow = (await s.execute(text(SLOW_COUNT), {"n": 2_000_000})).scalar_one()
        assert slow == 2_000_000
        seen = (await s.execute(text("SELECT count(*) FROM notes"))).scalar_one()
        assert seen == 1, "the write before the interrupted query is still in the transaction"
    async with sqlite_db.read() as s:
        assert (await s.execute(text("SELECT body FROM notes"))).scalars().all() == ["kept"]


async def test_a_writer_waiting_for_another_process_lock_does_not_hold_the_loop(
    sqlite_db: Database, tmp_path: Path
) -> None:
    held, release = threading.Event(), threading.Event()

    def other_process() -> None:  # another connection, as `tocsin user create` would hold it
        conn = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO notes (body) VALUES ('theirs')")
        held.set()
        release.wait(5)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=other_process)
    thread.start()
    assert held.wait(5)

    async def write() -> None:
        async with sqlite_db.write() as s:
            await s.execute(text("INSERT INTO notes (body) VALUES ('ours')"))

    timer = threading.Timer(0.4, release.set)
    timer.start()
    _, ticks = await while_ticking(write())
    thread.join()
    assert ticks >= 5, f"the loop ran only {ticks} times in 0.4 s of waiting for the lock"
    async with sqlite_db.read() as s:
        rows = (await s.execute(text("SELECT body FROM notes ORDER BY id"))).scalars().all()
    assert rows == ["theirs", "ours"]


async def test_errors_are_sqlites_own(sqlite_db: Database) -> None:
    async with sqlite_db.read() as s:
        with pytest.raises(Exception, match="no such table"):
            await s.execute(text("SELECT * FROM missing"))


async def test_every_connection_has_the_pragmas_the_server_relies_on(sqlite_db: Database) -> None:
    """WAL, a busy timeout, foreign keys, NORMAL sync, and a small page cache: a busy server holds up to
    25 connections, and 2 MiB of pages each took its memory past 200 MB."""
    names = ("journal_mode", "busy_timeout", "foreign_keys", "synchronous", "cache_size")
    async with sqlite_db.read() as s:
        got = {n: (await s.execute(text(f"PRAGMA {n}"))).scalar() for n in names}
    assert got == {
        "journal_mode": "wal",
        "busy_timeout": 10000,
        "foreign_keys": 1,
        "synchronous": 1,
        "cache_size": -512,
    }
