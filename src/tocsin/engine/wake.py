"""Waking a sleeping worker: an alarm rung by in-process commits, finished handlers and PostgreSQL NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

import psycopg
import structlog
from sqlalchemy.engine import make_url

from tocsin.db import utcnow
from tocsin.engine.service import NOTIFY_CHANNEL, WAKE_KEY

log = structlog.get_logger(__name__)

RECONNECT_MAX_SECONDS = 30.0


class Alarm:
    """What a worker sleeps on: `ring(at)` wakes it unless it already plans to wake by `at`.

    While the worker is awake (between `awake()` and `sleep()`) every ring counts, so a timer committed
    while the worker was reading the next due time still cuts the following sleep short.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._sleeping_until: datetime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def rung(self) -> bool:
        """Whether a ring is pending: the next sleep returns at once."""
        return self._event.is_set()

    def awake(self) -> None:
        """Start a pass over the timers: forget earlier rings."""
        self._loop = asyncio.get_running_loop()
        self._event.clear()
        self._sleeping_until = None

    async def sleep(self, seconds: float) -> None:
        """Sleep for `seconds` at most; a ring for an earlier time ends it."""
        if seconds <= 0:
            return
        self._sleeping_until = utcnow() + timedelta(seconds=seconds)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._event.wait()
        finally:
            self._sleeping_until = None

    def ring(self, at: datetime | None = None) -> None:
        """Wake the worker (for something due at `at`; None: unconditionally). Safe from any thread."""
        if at is not None and self._sleeping_until is not None and at >= self._sleeping_until:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is None or running is self._loop:
            self._event.set()
        else:
            self._loop.call_soon_threadsafe(self._event.set)

    def on_commit(self, info: dict[str, Any]) -> None:
        """A `Database.after_commit` hook: ring when the unit of work scheduled a timer."""
        due = info.get(WAKE_KEY)
        if isinstance(due, datetime):
            self.ring(due)


def _due_from(payload: str) -> datetime | None:
    try:
        return datetime.fromisoformat(payload) if payload else None
    except ValueError:
        return None


def psycopg_conninfo(database_url: str) -> str:
    """The plain libpq URL psycopg connects with, whatever SQLAlchemy driver the settings named."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(database_url: str, alarm: Alarm, listening: asyncio.Event) -> None:
    """Ring `alarm` on every NOTIFY on the timers channel, until cancelled.

    A dedicated autocommit connection; when it breaks, reconnect with backoff and ring once, since
    notifications sent while disconnected are lost. `listening` is set while LISTEN is in effect.
    """
    conninfo = psycopg_conninfo(database_url)
    pause = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, connect_timeout=10
            ) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                listening.set()
                alarm.ring()
                pause = 0.5
                async for notify in conn.notifies():
                    alarm.ring(_due_from(notify.payload))
        except Exception as exc:  # whatever broke the connection, a worker must not go deaf for good
            log.warning(
                "engine.listen.disconnected", error=f"{type(exc).__name__}: {exc}".strip(), retry_in=pause
            )
        listening.clear()
        await asyncio.sleep(pause)
        pause = min(pause * 2, RECONNECT_MAX_SECONDS)
