"""Sub-second firing: the alarm, in-process commit wake-ups, PostgreSQL LISTEN/NOTIFY, SQLite polling.

Latency is asserted generously (under a second) so the suite is never timing-flaky; bench/engine.py
measures it precisely.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from tests.engine.conftest import KIND, MakeWorker, Recorder, schedule
from tocsin.audit import service as audit
from tocsin.config import Settings
from tocsin.db import Database, utcnow
from tocsin.engine.handlers import Done, EngineContext, Fired, Outcome
from tocsin.engine.wake import Alarm
from tocsin.engine.worker import Worker

pytestmark = pytest.mark.anyio

ON_TIME = timedelta(seconds=1)


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop))
    await asyncio.sleep(0.1)  # let it find nothing due and go to sleep
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def fired_late_by(handler: Recorder, due_at: datetime) -> timedelta:
    await asyncio.wait_for(handler.called.wait(), timeout=5)
    return handler.started[0] - due_at


async def test_the_alarm_wakes_only_for_something_earlier_than_the_planned_wake() -> None:
    alarm = Alarm()
    alarm.awake()
    alarm.ring(utcnow() + timedelta(days=1))
    assert alarm.rung, "while awake every ring counts: the pass may have read the timers before this commit"

    alarm.awake()
    sleeper = asyncio.create_task(alarm.sleep(10))
    await asyncio.sleep(0.01)
    alarm.ring(utcnow() + timedelta(minutes=1))
    await asyncio.sleep(0.01)
    assert not sleeper.done(), "a timer due after the planned wake does not wake the worker"
    alarm.ring(utcnow() + timedelta(seconds=1))
    await asyncio.wait_for(sleeper, timeout=1)


async def test_a_timer_due_in_200_ms_fires_on_time_when_the_commit_wakes_the_worker(
    db: Database, make_worker: MakeWorker
) -> None:
    handler = Recorder()
    worker = make_worker({KIND: handler})  # no LISTEN, no poll: only the commit hook can wake it
    db.after_commit.append(worker.wake_on_commit)
    async with running(worker):
        due = utcnow() + timedelta(milliseconds=200)
        await schedule(db, "incident:1", due)
        lag = await fired_late_by(handler, due)
    assert timedelta(0) <= lag < ON_TIME


async def test_postgres_notify_from_another_process_wakes_a_listening_worker(pg_db: Database) -> None:
    handler = Recorder()
    settings = Settings(database_url=pg_db.url, demo=True)
    worker = Worker(EngineContext(db=pg_db, settings=settings), {KIND: handler}, listen=True)
    other = Database(pg_db.url, pool_size=1, before_commit=[audit.seal])
    try:
        async with running(worker):
            await asyncio.wait_for(worker.listening.wait(), timeout=5)
            due = utcnow() + timedelta(milliseconds=200)
            await schedule(other, "incident:1", due)
            lag = await fired_late_by(handler, due)
    finally:
        await other.dispose()
    assert timedelta(0) <= lag < ON_TIME


async def test_the_listener_reconnects_after_its_connection_is_killed(pg_db: Database) -> None:
    handler = Recorder()
    settings = Settings(database_url=pg_db.url, demo=True)
    worker = Worker(EngineContext(db=pg_db, settings=settings), {KIND: handler}, listen=True)
    other = Database(pg_db.url, pool_size=1, before_commit=[audit.seal])
    try:
        async with running(worker):
            await asyncio.wait_for(worker.listening.wait(), timeout=5)
            async with other.write() as session:
                killed = await session.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                    )
                )
            assert killed == 1
            await asyncio.sleep(0.1)
            await asyncio.wait_for(worker.listening.wait(), timeout=5)
            due = utcnow() + timedelta(milliseconds=200)
            await schedule(other, "incident:1", due)
            lag = await fired_late_by(handler, due)
    finally:
        await other.dispose()
    assert lag < ON_TIME


async def test_a_sqlite_worker_finds_timers_another_process_scheduled_by_polling(sqlite_url: str) -> None:
    handler = Recorder()
    worker_db = Database(sqlite_url, pool_size=2, before_commit=[audit.seal])
    other = Database(sqlite_url, pool_size=2, before_commit=[audit.seal])
    settings = Settings(database_url=sqlite_url, demo=True)
    worker = Worker(EngineContext(db=worker_db, settings=settings), {KIND: handler}, poll_seconds=0.2)
    try:
        async with running(worker):
            due = utcnow() + timedelta(milliseconds=100)
            await schedule(other, "incident:1", due)
            lag = await fired_late_by(handler, due)
    finally:
        await other.dispose()
        await worker_db.dispose()
    assert lag < ON_TIME


async def test_a_retry_after_backoff_fires_on_time_without_any_wake_up(
    db: Database, make_worker: MakeWorker
) -> None:
    calls: list[datetime] = []
    retried = asyncio.Event()

    async def flaky(ctx: EngineContext, fired: Fired) -> Outcome:
        calls.append(utcnow())
        if len(calls) == 1:
            raise ConnectionError("try again")
        retried.set()
        return Done()

    worker = make_worker({KIND: flaky})
    await schedule(db, "incident:1", utcnow())
    async with running(worker):
        await asyncio.wait_for(retried.wait(), timeout=5)
    first, second = calls
    assert timedelta(seconds=1) <= second - first < timedelta(seconds=2)


async def test_only_timers_due_within_the_horizon_are_announced(pg_db: Database) -> None:
    """A NOTIFY per commit costs a round trip and wakes every worker; a timer due later than
    NOTIFY_HORIZON is found by the workers' re-check instead, which runs more often than that."""
    import psycopg

    from tocsin.engine.service import NOTIFY_CHANNEL, NOTIFY_HORIZON
    from tocsin.engine.wake import psycopg_conninfo

    async with await psycopg.AsyncConnection.connect(psycopg_conninfo(pg_db.url), autocommit=True) as conn:
        await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        soon = utcnow() + NOTIFY_HORIZON - timedelta(seconds=30)
        await schedule(pg_db, "incident:far", utcnow() + NOTIFY_HORIZON + timedelta(minutes=1))
        await schedule(pg_db, "incident:soon", soon)
        heard = []
        async with asyncio.timeout(2):
            async for notify in conn.notifies():
                heard.append(notify.payload)
                break
        await asyncio.sleep(0.2)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                async for notify in conn.notifies():
                    heard.append(notify.payload)
    assert heard == [soon.isoformat()]


async def test_a_worker_must_recheck_within_the_horizon(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    settings = Settings(database_url=sqlite_url, demo=True)
    try:
        with pytest.raises(ValueError, match="recheck_seconds is at most 150"):
            Worker(EngineContext(db=db, settings=settings), {}, recheck_seconds=151)
        assert Worker(EngineContext(db=db, settings=settings), {}, recheck_seconds=150).recheck_seconds == 150
    finally:
        await db.dispose()
