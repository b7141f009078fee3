"""The entry points: the engine inside the app's event loop and the standalone worker."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.engine.conftest import KIND, Recorder, schedule, timers
from tocsin.config import Settings
from tocsin.db import Database, utcnow
from tocsin.engine.runtime import run_worker, start_in_process

pytestmark = pytest.mark.anyio


async def test_the_in_process_engine_fires_what_the_app_schedules_and_stops_cleanly(
    db: Database, settings: Settings
) -> None:
    handler = Recorder()
    handle = start_in_process(db, settings, {KIND: handler}, listen=False)
    assert handle.worker.wake_on_commit in db.after_commit
    await asyncio.sleep(0.05)
    due = utcnow() + timedelta(milliseconds=100)
    await schedule(db, "incident:1", due)
    await asyncio.wait_for(handler.called.wait(), timeout=5)

    await asyncio.wait_for(handle.stop(), timeout=5)
    assert handle.task.done() and handle.worker.wake_on_commit not in db.after_commit
    assert await timers(db) == []
    assert handler.started[0] - due < timedelta(seconds=1)


async def test_a_standalone_worker_fires_timers_from_other_processes_and_stops_when_told(
    db: Database, settings: Settings
) -> None:
    handler = Recorder()
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, {KIND: handler}, stop))
    await schedule(db, "incident:1", utcnow())  # `db` is another engine: only LISTEN or polling finds it
    await asyncio.wait_for(handler.called.wait(), timeout=5)
    stop.set()
    await asyncio.wait_for(worker, timeout=5)
    assert await timers(db) == []
