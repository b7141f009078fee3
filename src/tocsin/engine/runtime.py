"""Entry points: the engine inside the web app's event loop, or as a standalone `tocsin worker` process.

In the app's lifespan::

    handle = start_in_process(db, settings, handlers)
    try:
        yield
    finally:
        await handle.stop()

And for `tocsin worker`: ``asyncio.run(run_worker(settings, handlers))``, which returns after SIGTERM or
SIGINT once running handlers have finished and unfinished leases are handed back.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from tocsin.audit import service as audit
from tocsin.config import Settings
from tocsin.db import Database
from tocsin.engine.handlers import EngineContext, Handler
from tocsin.engine.worker import Worker

log = structlog.get_logger(__name__)

# SQLite has no cross-process notification: a separate worker process looks for new timers this often.
SQLITE_WORKER_POLL_SECONDS = 0.5


@dataclass
class EngineHandle:
    """A worker running as a task of the app's event loop; `await stop()` on shutdown."""

    worker: Worker
    task: asyncio.Task[None]
    db: Database
    stopping: asyncio.Event

    async def stop(self) -> None:
        """Stop claiming, let running handlers finish, release leases; unhook from the database."""
        self.stopping.set()
        try:
            await self.task
        finally:
            with contextlib.suppress(ValueError):
                self.db.after_commit.remove(self.worker.wake_on_commit)


def start_in_process(
    db: Database, settings: Settings, handlers: Mapping[str, Handler], **options: Any
) -> EngineHandle:
    """Start a worker on `db` in the running event loop; commits on `db` that schedule a timer wake it.

    `options` are Worker keyword arguments (concurrency, batch, lease_seconds, poll_seconds, ...). On
    PostgreSQL the worker also LISTENs, so timers scheduled by other processes fire on time; on SQLite
    those are found by the safety-net re-check unless `poll_seconds` is given.
    """
    worker = Worker(EngineContext(db=db, settings=settings), handlers, **options)
    db.after_commit.append(worker.wake_on_commit)
    stopping = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stopping), name="tocsin engine")
    task.add_done_callback(_report_crash)
    return EngineHandle(worker=worker, task=task, db=db, stopping=stopping)


async def run_worker(
    settings: Settings,
    handlers: Mapping[str, Handler],
    stop: asyncio.Event | None = None,
    *,
    database: Database | None = None,
    **options: Any,
) -> None:
    """Run a standalone worker until SIGTERM/SIGINT (or `stop` is set), then stop gracefully.

    Uses `database` (disposed at the end), or opens its own audit-sealed one. On SQLite it polls every
    SQLITE_WORKER_POLL_SECONDS unless `poll_seconds` says otherwise; on PostgreSQL it LISTENs instead.
    """
    stop = stop or asyncio.Event()
    db = database or Database(
        settings.database_url, pool_size=settings.db_pool_size, before_commit=[audit.seal]
    )
    if db.sqlite:
        options.setdefault("poll_seconds", SQLITE_WORKER_POLL_SECONDS)
    worker = Worker(EngineContext(db=db, settings=settings), handlers, **options)
    db.after_commit.append(worker.wake_on_commit)
    loop = asyncio.get_running_loop()
    signals = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or Windows
            loop.add_signal_handler(sig, stop.set)
            signals.append(sig)
    try:
        await worker.run_forever(stop)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        await db.dispose()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("engine.worker.crashed", error=f"{type(exc).__name__}: {exc}", exc_info=exc)
