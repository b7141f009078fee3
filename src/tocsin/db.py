"""Database engines and units of work: URL normalisation, SQLite pragmas, one writer path, UTC datetimes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from tocsin import sqlite_inline

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for every table; constraint names are deterministic so migrations can name them."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC on every backend (SQLite would otherwise drop the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# JSON on every backend, JSONB on PostgreSQL (indexable, compact).
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
# Integer primary keys that are BIGINT on PostgreSQL yet still INTEGER PRIMARY KEY (rowid) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def json_dumps(value: Any) -> str:
    """How JSON columns are written: orjson, ten times faster than json (alerts store four JSON columns
    each); values orjson refuses, such as integers beyond 64 bits or non-string keys, go through json."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError included
        return json.dumps(value)


def utcnow() -> datetime:
    """The one clock: aware UTC now (time-machine moves it in tests)."""
    return datetime.now(UTC)


def async_url(url: str) -> str:
    """Pick the async driver for a plain sqlite:// or postgresql:// URL."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return str(u.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://user@host/db")


def sync_url(url: str) -> str:
    """Pick the synchronous driver (Alembic, audit verify) for the same URL."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return str(u.set(drivername="sqlite"))
    if backend in ("postgresql", "postgres"):
        return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://user@host/db")


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        from pathlib import Path

        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_hooks(engine: Engine, *, foreign_keys: bool = True) -> None:
    """WAL, busy timeout, foreign keys; BEGIN IMMEDIATE for writers so they queue instead of failing.

    Migrations run without foreign-key enforcement: batch mode rebuilds tables by copy-and-rename, which
    would otherwise cascade deletes into the rows that point at the old table.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 512 KiB of pages per connection instead of 2 MiB: a busy server holds up to 25 connections, and
        # pages dropped are read again from the operating system's file cache (no measurable slowdown).
        cursor.execute("PRAGMA cache_size=-512")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("tocsin_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_sync_engine(url: str, *, migrations: bool = False) -> Engine:
    """A synchronous engine for Alembic and command-line checks."""
    if is_sqlite(url):
        _ensure_sqlite_dir(url)
    engine = create_engine(sync_url(url))
    if is_sqlite(url):
        _install_sqlite_hooks(engine, foreign_keys=not migrations)
    return engine


class Database:
    """The process's engine plus its two doors: `read()` for queries and `write()` for units of work.

    On SQLite every writer in the process goes through one lock (and BEGIN IMMEDIATE), which keeps
    p99 latency flat instead of letting writers collide on the database lock.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        before_commit: Sequence[Callable[[AsyncSession], Awaitable[None]]] = (),
        after_commit: Sequence[Callable[[dict[str, Any]], None]] = (),
    ) -> None:
        self.url = url
        self.before_commit = list(before_commit)
        # Called with the session's `info` dict once a unit of work has committed (e.g. to wake the engine).
        self.after_commit = list(after_commit)
        self.sqlite = is_sqlite(url)
        if self.sqlite:
            _ensure_sqlite_dir(url)
            # Statements run on the event loop's thread; the few that may wait go to a thread (sqlite_inline).
            self.engine: AsyncEngine = create_async_engine(
                async_url(url),
                async_creator=sqlite_inline.creator(make_url(url).database or ":memory:"),
                pool_size=pool_size + 5,
                json_serializer=json_dumps,
            )
            _install_sqlite_hooks(self.engine.sync_engine)
        else:
            self.engine = create_async_engine(
                async_url(url),
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=False,
                json_serializer=json_dumps,
            )
        self._reader = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self._writer = async_sessionmaker(
            self.engine.execution_options(tocsin_write=True), expire_on_commit=False, autoflush=True
        )
        self._write_lock = asyncio.Lock() if self.sqlite else None

    @property
    def dialect(self) -> str:
        return "sqlite" if self.sqlite else "postgresql"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries; closed at the end (objects stay readable, detached)."""
        async with self._reader() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits once at the end (after the before-commit hooks, e.g. audit sealing),
        rolls back on any exception."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            session = await stack.enter_async_context(self._writer())
            async with session.begin():
                yield session
                await self._before_commit(session)
            info = dict(session.info)
        for hook in self.after_commit:
            hook(info)
        for callback in info.get(_ON_COMMIT, ()):
            callback()

    async def _before_commit(self, session: AsyncSession) -> None:
        for hook in self.before_commit:
            await hook(session)
        await write_deferred(session)

    async def dispose(self) -> None:
        await self.engine.dispose()


_DEFERRED = "tocsin_deferred"
_ON_COMMIT = "tocsin_on_commit"


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call `callback()` once this unit of work has committed (never if it rolls back)."""
    session.info.setdefault(_ON_COMMIT, []).append(callback)


def defer(session: AsyncSession, write: Callable[[AsyncSession], Awaitable[None]]) -> None:
    """Run `write(session)` once, just before this unit of work commits, after the before-commit hooks (or
    when one of them calls `write_deferred`, as audit sealing does): for work gathered over the unit of
    work and written in one statement (e.g. timers)."""
    session.info.setdefault(_DEFERRED, []).append(write)


async def write_deferred(session: AsyncSession) -> None:
    """Run the writes `defer()` queued so far (and any they queue). A before-commit hook that takes a
    contended lock calls this first, so the lock is not held across these writes too."""
    while writes := session.info.pop(_DEFERRED, None):
        for write in writes:
            await write(session)


def upsert_insert(dialect_name: str) -> Any:
    """The dialect's INSERT construct that supports ON CONFLICT."""
    return sqlite.insert if dialect_name == "sqlite" else postgresql.insert


__all__ = [
    "Base",
    "BigId",
    "Database",
    "JSONType",
    "UTCDateTime",
    "async_url",
    "defer",
    "json_dumps",
    "make_sync_engine",
    "on_commit",
    "sync_url",
    "upsert_insert",
    "utcnow",
    "write_deferred",
]


def dialect_of(session: AsyncSession) -> str:
    """'sqlite' or 'postgresql' for the session's engine."""
    return session.get_bind().dialect.name
