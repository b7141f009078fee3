"""The timer worker: claim due timers, fire their handlers, settle the outcome, sleep until the next one.

Each step is a small method the tests call directly; `run_forever` is the loop around them. The loop
never polls on a fixed period: it sleeps until the earliest due time or until its alarm rings (a local
commit that scheduled a timer, PostgreSQL NOTIFY from another process, a handler finishing). Two bounded
waits remain: a safety-net re-check every `recheck_seconds` (a crashed worker's lease expiring is announced
by nobody), and, only when asked for with `poll_seconds`, a short poll for SQLite databases written by
another process, which has no cross-process notification.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import socket
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog

from tocsin.db import utcnow
from tocsin.engine import outcomes, store
from tocsin.engine.groupcommit import GroupCommit
from tocsin.engine.handlers import EngineContext, Fired, Handler
from tocsin.engine.metrics import Metrics
from tocsin.engine.service import NOTIFY_HORIZON
from tocsin.engine.wake import Alarm, listen

log = structlog.get_logger(__name__)

# A handler may use this share of its lease; the rest covers writing its outcome before the lease lapses.
HANDLER_BUDGET_SHARE = 0.8
# When due rows are locked by another worker's claim, look again this soon rather than spin.
CONTENDED_PAUSE_SECONDS = 0.01
ERROR_PAUSE_MAX_SECONDS = 30.0
MAX_OWNER_LENGTH = 60  # timers.lease_owner holds 80: the owner, a slash and the claim number


def default_owner() -> str:
    """host:pid:random, unique per worker, short enough to leave room for the claim number."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Fires due timers with `handlers` (by kind), up to `concurrency` at once.

    A claim leases timers for `lease_seconds` under a claim-unique owner `<owner>/<n>`; the outcome is
    written only while that lease is still ours. A handler is cancelled (and retried with backoff) once
    it has used `HANDLER_BUDGET_SHARE` of the lease, so no two workers ever run the same firing at once.

    A claim takes at most `batch` timers and never more than there are free slots, so no lease runs down
    while its timer waits in a local queue. That makes `concurrency` the bound on how many timers a
    transaction carries when the worker is behind: with 8 it fell seconds behind 1,000 timers/s, with 200
    it kept 5,000/s within tens of milliseconds (bench/engine.py).
    """

    def __init__(
        self,
        ctx: EngineContext,
        handlers: Mapping[str, Handler],
        *,
        owner: str | None = None,
        lease_seconds: float = 30,
        batch: int = 100,
        concurrency: int = 200,
        poll_seconds: float | None = None,
        recheck_seconds: float = 30,
        listen: bool | None = None,
        drain_seconds: float = 10,
    ) -> None:
        self.ctx = ctx
        self.handlers = dict(handlers)
        self.owner = owner or default_owner()
        if len(self.owner) > MAX_OWNER_LENGTH:
            raise ValueError(f"worker owner {self.owner!r} is longer than {MAX_OWNER_LENGTH} characters")
        self.lease = timedelta(seconds=lease_seconds)
        self.budget_seconds = lease_seconds * HANDLER_BUDGET_SHARE
        self.batch = batch
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        if recheck_seconds > NOTIFY_HORIZON.total_seconds() / 2:
            raise ValueError(
                f"recheck_seconds is at most {NOTIFY_HORIZON.total_seconds() / 2:.0f}: timers due more than "
                f"{NOTIFY_HORIZON.total_seconds():.0f} s ahead are not announced, so a worker must look for "
                "them well within that"
            )
        self.recheck_seconds = recheck_seconds
        self.listen = (not ctx.db.sqlite) if listen is None else listen
        self.drain_seconds = drain_seconds
        self.metrics = Metrics()
        self.alarm = Alarm()
        self.listening = asyncio.Event()  # set while the PostgreSQL LISTEN connection is up
        self._claims = itertools.count(1)
        self._running: dict[asyncio.Task[None], Fired] = {}
        self._backlog = False  # the last claim was full
        self._settler: GroupCommit[outcomes.Settlement] = GroupCommit(self._write_settlements)

    # --- wake-ups ----------------------------------------------------------------------------------

    def wake_on_commit(self, info: dict[str, Any]) -> None:
        """Install on `Database.after_commit`: a committed schedule() earlier than our next wake rings us."""
        self.alarm.on_commit(info)

    # --- single steps ------------------------------------------------------------------------------

    async def claim_due(self, now: datetime, *, limit: int | None = None) -> list[Fired]:
        """Lease up to `limit` (default `batch`) timers due by `now`, earliest first, in one short write."""
        lease_owner = f"{self.owner}/{next(self._claims)}"
        async with self.ctx.db.write() as session:
            fired = await store.claim(
                session,
                now=now,
                lease_owner=lease_owner,
                lease_until=now + self.lease,
                limit=self.batch if limit is None else limit,
            )
        self.metrics.claimed += len(fired)
        return fired

    async def fire(self, fired: Fired) -> None:
        """Run the timer's handler, then delete, move or back off the timer, if our lease still holds."""
        settlement = await self.run_handler(fired)
        try:
            await self._settler.submit(settlement)
        except Exception:
            self.metrics.settle_errors += 1
            raise

    async def run_handler(self, fired: Fired) -> outcomes.Settlement:
        """Call the handler within its budget and turn what happened into a settlement; never raises."""
        started = utcnow()
        self.metrics.observe_lag(started - fired.due_at)
        handler = self.handlers.get(fired.kind)
        if handler is None:
            self.metrics.failed += 1
            log.error("engine.timer.unknown_kind", kind=fired.kind, subject=fired.subject, timer=fired.id)
            return outcomes.unhandled(fired, now=started)
        budget = asyncio.timeout(self.budget_seconds)
        try:
            async with budget:
                outcome = await handler(self.ctx, fired)
            if not outcomes.is_outcome(outcome):
                raise TypeError(f"handler returned {outcome!r}; expected Done() or Again(at)")
        except Exception as exc:
            self.metrics.failed += 1
            error = (
                f"handler ran past its budget of {self.budget_seconds:g} s"
                if budget.expired()
                else f"{type(exc).__name__}: {exc}"
            )
            log.warning(
                "engine.timer.failed",
                kind=fired.kind,
                subject=fired.subject,
                timer=fired.id,
                attempts=fired.attempts,
                error=error,
                exc_info=not budget.expired(),
            )
            return outcomes.failed(fired, error, now=utcnow())
        self.metrics.fired += 1
        return outcomes.succeeded(fired, outcome)

    async def next_due(self, now: datetime | None = None) -> datetime | None:
        """The earliest due time of a timer no worker holds (past if something is due now), or None."""
        async with self.ctx.db.read() as session:
            return await store.next_due(session, now=now or utcnow())

    async def release_leases(self) -> int:
        """Hand back every lease this worker holds, so others fire those timers without waiting."""
        async with self.ctx.db.write() as session:
            return await store.release(session, owner=self.owner)

    async def tick(self) -> float:
        """One pass: claim and start due timers while slots are free; return how long to sleep."""
        self.alarm.awake()
        while (free := self.concurrency - len(self._running)) > 0:
            now = utcnow()
            if not self._backlog:  # after a full claim more are surely due: skip the look
                due = await self.next_due(now)
                if due is None or due > now:
                    return self._bounded(None if due is None else (due - now).total_seconds())
            limit = min(self.batch, free)
            claimed = await self.claim_due(now, limit=limit)
            for fired in claimed:
                self.start(fired)
            self._backlog = len(claimed) == limit
            if not claimed:
                return CONTENDED_PAUSE_SECONDS
        return self.recheck_seconds  # all slots busy: a finishing handler rings the alarm

    def start(self, fired: Fired) -> asyncio.Task[None]:
        """Fire in the background, counted against `concurrency`; finishing rings the alarm."""
        task = asyncio.create_task(self.fire(fired), name=f"timer {fired.kind} {fired.subject}")
        self._running[task] = fired
        task.add_done_callback(self._finished)
        return task

    async def drain(self) -> None:
        """Let running handlers finish (up to `drain_seconds`), cancel the rest, release leases we hold."""
        if self._running:
            _, late = await asyncio.wait(set(self._running), timeout=self.drain_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._settler.idle()
        try:
            released = await self.release_leases()
        except Exception as exc:  # the leases simply run out instead
            log.warning(
                "engine.worker.release_failed", owner=self.owner, error=f"{type(exc).__name__}: {exc}"
            )
            return
        if released:
            log.info("engine.worker.released", owner=self.owner, timers=released)

    # --- the loop ----------------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Claim, fire and sleep until `stop` is set; then stop claiming and drain."""
        stopper = asyncio.create_task(self._ring_when(stop))
        listener = (
            asyncio.create_task(listen(self.ctx.db.url, self.alarm, self.listening)) if self.listen else None
        )
        log.info(
            "engine.worker.started",
            owner=self.owner,
            concurrency=self.concurrency,
            listen=self.listen,
            poll_seconds=self.poll_seconds,
        )
        pause = 0.5
        try:
            while not stop.is_set():
                try:
                    delay = await self.tick()
                    pause = 0.5
                except Exception as exc:  # the database is away: keep the process, try again later
                    log.error(
                        "engine.worker.tick_failed", error=f"{type(exc).__name__}: {exc}", retry_in=pause
                    )
                    delay, pause = pause, min(pause * 2, ERROR_PAUSE_MAX_SECONDS)
                if not stop.is_set():
                    await self.alarm.sleep(delay)
        finally:
            for task in (stopper, listener):
                if task is not None:
                    task.cancel()
            await asyncio.gather(*(t for t in (stopper, listener) if t is not None), return_exceptions=True)
            await self.drain()
            log.info(
                "engine.worker.stopped",
                owner=self.owner,
                fired=self.metrics.fired,
                failed=self.metrics.failed,
            )

    async def _ring_when(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.alarm.ring()

    def _bounded(self, seconds: float | None) -> float:
        ceiling = (
            self.recheck_seconds
            if self.poll_seconds is None
            else min(self.recheck_seconds, self.poll_seconds)
        )
        return ceiling if seconds is None else min(seconds, ceiling)

    def _finished(self, task: asyncio.Task[None]) -> None:
        fired = self._running.pop(task, None)
        self.alarm.ring()
        if task.cancelled() or fired is None:
            return
        if (exc := task.exception()) is not None:
            log.error(
                "engine.timer.settle_failed",
                kind=fired.kind,
                subject=fired.subject,
                timer=fired.id,
                error=f"{type(exc).__name__}: {exc}",
                note="the lease expires and the timer fires again",
            )

    async def _write_settlements(self, settlements: list[outcomes.Settlement]) -> None:
        async with self.ctx.db.write() as session:
            await store.settle(session, settlements)
