"""Engine fixtures: workers on the test database, a second process's view of it, timer helpers."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PgResetter
from tocsin.audit import service as audit
from tocsin.config import Settings
from tocsin.db import Database, utcnow
from tocsin.engine import service
from tocsin.engine.handlers import Done, EngineContext, Fired, Handler, Outcome
from tocsin.engine.models import Timer
from tocsin.engine.worker import Worker

KIND = "test.ping"

MakeWorker = Callable[..., Worker]


@pytest.fixture
def make_worker(db: Database, settings: Settings) -> MakeWorker:
    """Workers on the test database; no LISTEN unless asked, so each test says which wake-up it relies on."""

    def make(handlers: Mapping[str, Handler], **options: Any) -> Worker:
        options.setdefault("listen", False)
        return Worker(EngineContext(db=db, settings=settings), handlers, **options)

    return make


@pytest.fixture
async def other_process_db(database_url: str) -> AsyncIterator[Database]:
    """The same database through another engine, as another process would see it: its commits do not
    reach our workers' in-process hooks."""
    database = Database(database_url, pool_size=2, before_commit=[audit.seal])
    yield database
    await database.dispose()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """The PostgreSQL test database, emptied, for what only PostgreSQL does (LISTEN/NOTIFY)."""
    resetter: PgResetter = request.getfixturevalue("pg_database")
    resetter.reset()
    return resetter.url


@pytest.fixture
async def pg_db(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url, pool_size=5, before_commit=[audit.seal])
    yield database
    await database.dispose()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "engine.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


async def schedule(
    db: Database, subject: str, due_at: datetime, payload: Any = None, kind: str = KIND
) -> None:
    async with db.write() as session:
        await service.schedule(session=session, kind=kind, subject=subject, due_at=due_at, payload=payload)


async def timers(db: Database) -> list[Timer]:
    async with db.read() as session:
        return await service.pending(session=session)


class Recorder:
    """A handler that notes each firing (and when it started), then returns `outcome`."""

    def __init__(self, outcome: Outcome | None = None) -> None:
        self.outcome = outcome or Done()
        self.calls: list[Fired] = []
        self.started: list[datetime] = []
        self.called = asyncio.Event()

    async def __call__(self, ctx: EngineContext, fired: Fired) -> Outcome:
        self.started.append(utcnow())
        self.calls.append(fired)
        self.called.set()
        return self.outcome
