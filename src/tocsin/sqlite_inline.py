"""An aiosqlite look-alike that runs SQLite calls on the event loop's own thread.

aiosqlite sends every call to a helper thread and back: about 1 ms per statement on a small machine, six
times the cost of the statement itself, which made a unit of work of 25 short statements spend 25 ms
waiting. Here statements run inline, and three kinds go to a thread so the loop never waits long:

- `BEGIN IMMEDIATE`, which waits (up to busy_timeout) while another process writes;
- `COMMIT`, since a WAL checkpoint may write many pages;
- a query (SELECT, or WITH ... SELECT) still running after `READ_BUDGET`: a progress handler
  interrupts it and it runs again, from the start and in the same transaction (so on the same
  snapshot), on a thread. Only queries are interrupted; an interrupted INSERT, UPDATE or DELETE would
  roll back the whole transaction.

Writers in one process take turns on `Database`'s write lock, so their statements are short and never
wait for each other. SQLAlchemy's aiosqlite dialect drives this through
`create_async_engine(..., async_creator=creator(path))`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import Any

_WAITS = ("BEGIN IMMEDIATE", "COMMIT")
_WRITES = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)  # in a WITH statement
READ_BUDGET = 0.004  # seconds a SELECT may hold the event loop before it moves to a thread
_PROGRESS_STEPS = 2000  # SQLite VM instructions between two looks at the clock


class _Immediately:
    """Stands in for aiosqlite's request queue, which SQLAlchemy uses to set the isolation level."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:  # handed back to the awaiting caller, as aiosqlite does
            future.set_exception(error)


class InlineCursor:
    def __init__(self, connection: InlineConnection) -> None:
        self._owner = connection
        self._cursor = connection._conn.cursor()
        self._rows: list[Any] | None = None  # a SELECT's rows, fetched when it ran

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    def _run(self, args: tuple[Any, ...]) -> None:
        self._cursor.execute(*args)

    def _select(self, args: tuple[Any, ...]) -> list[Any]:
        self._cursor.execute(*args)
        return self._cursor.fetchall()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        args = (sql,) if parameters is None else (sql, parameters)
        head = sql.lstrip()[:16].upper()
        self._rows = None
        if head.startswith(_WAITS):
            await asyncio.to_thread(self._run, args)
        elif head.startswith("SELECT") or (head.startswith("WITH") and not _WRITES.search(sql)):
            try:
                with self._owner.budget(READ_BUDGET):
                    self._rows = self._select(args)
            except sqlite3.OperationalError as error:
                if not self._owner.overran or str(error) != "interrupted":
                    raise
                self._rows = await asyncio.to_thread(self._select, args)
        else:
            self._cursor.execute(*args)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        self._rows = None
        self._cursor.executemany(sql, parameters)
        return self

    def _take(self, count: int | None) -> list[Any]:
        if self._rows is None:
            return self._cursor.fetchall() if count is None else self._cursor.fetchmany(count)
        taken = self._rows if count is None else self._rows[:count]
        self._rows = [] if count is None else self._rows[count:]
        return taken

    async def fetchone(self) -> Any:
        rows = self._take(1)
        return rows[0] if rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._take(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._take(None)

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """The parts of `aiosqlite.Connection` SQLAlchemy's aiosqlite dialect uses."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection  # None once closed, as in aiosqlite
        self._tx = _Immediately()
        self._deadline: float | None = None
        self.overran = False
        connection.set_progress_handler(self._progress, _PROGRESS_STEPS)

    def _progress(self) -> int:
        if self._deadline is not None and time.perf_counter() > self._deadline:
            self.overran = True
            return 1  # interrupt the statement
        return 0

    @contextlib.contextmanager
    def budget(self, seconds: float) -> Iterator[None]:
        """Interrupt the statement run in this block once it has run for `seconds`."""
        self._deadline, self.overran = time.perf_counter() + seconds, False
        try:
            yield
        finally:
            self._deadline = None

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def commit(self) -> None:
        if self._conn.in_transaction:
            await asyncio.to_thread(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def creator(path: str) -> Callable[[], Awaitable[InlineConnection]]:
    """The `async_creator` for a SQLite file at `path`."""

    async def connect() -> InlineConnection:
        # check_same_thread off: BEGIN IMMEDIATE and COMMIT run on a helper thread, one call at a time.
        return InlineConnection(sqlite3.connect(path, check_same_thread=False))

    return connect
