"""Group commit for intake: one writer task applies the deliveries of many concurrent requests in one
transaction, then answers each request. A request is answered only after its events are committed.

Batches form by themselves: while one transaction commits, new deliveries queue up and go into the next,
so a lone request waits for one commit and a storm shares each commit among hundreds. A failed batch is
retried delivery by delivery, so one poisonous payload fails only its own request; a delivery that still
fails is stored without routing (no rules, grouping or incidents) rather than refused, since what a sender
delivered must not be lost to a routing fault. Its alerts are grouped when they are next sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from tocsin.alerts.ingest import Delivery, ingest_many
from tocsin.db import Database, utcnow

log = structlog.get_logger(__name__)


class WriterClosed(Exception):
    """The process is shutting down and takes no more deliveries (the sender should retry)."""


class DeliveryFailed(Exception):
    """The delivery could not be stored; nothing of it was committed (the sender should retry)."""


@dataclass(slots=True)
class _Pending:
    delivery: Delivery
    done: asyncio.Future[None]


class IntakeWriter:
    """The process's single intake writer; `start()` in the app's lifespan, `stop()` drains the queue."""

    def __init__(self, db: Database, *, max_events: int = 5000) -> None:
        self.db = db
        self.max_events = max_events
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="tocsin-intake-writer")

    async def stop(self) -> None:
        """Take nothing new, commit what is queued, end the task."""
        self._closed = True
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def submit(self, delivery: Delivery) -> None:
        """Return once the delivery is committed; raise DeliveryFailed or WriterClosed otherwise."""
        if self._closed or self._task is None:
            raise WriterClosed("intake is not running in this process")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(delivery, done))
        await done

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                return
            batch, size = [first], max(1, len(first.delivery.events))
            while size < self.max_events and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                size += max(1, len(item.delivery.events))
            await self._commit(batch)

    async def _apply(self, batch: list[_Pending], *, routing: bool = True) -> None:
        async with self.db.write() as session:
            await ingest_many(
                session=session, deliveries=[p.delivery for p in batch], now=utcnow(), routing=routing
            )

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            await self._apply(batch)
        except Exception as exc:  # any failure of the shared transaction: isolate it below
            if len(batch) == 1:
                await self._commit_alone(batch[0])
                return
            log.warning(
                "intake batch failed; retrying its deliveries one by one", size=len(batch), error=repr(exc)
            )
            for pending in batch:
                await self._commit_alone(pending)
            return
        for pending in batch:
            _succeed(pending)

    async def _commit_alone(self, pending: _Pending) -> None:
        try:
            await self._apply([pending])
        except Exception as exc:  # this delivery fails with routing: store it without
            log.error(
                "intake delivery failed with routing; storing it unrouted",
                integration_id=pending.delivery.integration_id,
                error=repr(exc),
            )
            try:
                await self._apply([pending], routing=False)
            except Exception as one:  # this delivery alone cannot be stored: only its sender hears of it
                _fail(pending, one)
                return
        _succeed(pending)


def _succeed(pending: _Pending) -> None:
    with contextlib.suppress(asyncio.InvalidStateError):  # the request may have gone away meanwhile
        pending.done.set_result(None)


def _fail(pending: _Pending, exc: Exception) -> None:
    log.error(
        "intake delivery not stored",
        integration_id=pending.delivery.integration_id,
        events=len(pending.delivery.events),
        error=repr(exc),
    )
    with contextlib.suppress(asyncio.InvalidStateError):
        pending.done.set_exception(DeliveryFailed(f"the alerts could not be stored ({type(exc).__name__})"))
