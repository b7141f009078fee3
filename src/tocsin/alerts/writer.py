"""Group commit for intake: one writer task applies the deliveries of many concurrent requests in one
transaction, then answers each request. A request is answered only after its events are committed.

Batches form by themselves: while one transaction commits, new deliveries queue up and go into the next,
so a lone request waits for one commit and a storm shares each commit among hundreds. A failed batch is
retried delivery by delivery, so one poisonous payload fails only its own request; a delivery that still
fails is stored without routing (no rules, grouping or incidents) rather than refused, since what a sender
delivered must not be lost to a routing fault. Its alerts are grouped when they are next sent.

On PostgreSQL two batches overlap, each on its own connection: once a batch has written its alert rows,
the next one starts (reads its rules and groups, stores its triggers) while the first groups its alerts
into incidents and commits. The next one acknowledges, resolves and groups only after the first has
committed (`_Turn`), and confirms the incidents it read before then (`grouping.recheck`); if the first
rolled back, the next one is applied again after the first's retries. That keeps PostgreSQL busy while
Python prepares a batch, and the other way round: about a quarter more alerts a second in a storm. SQLite
has a single writer: its batches follow each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.ingest import ALONE, Delivery, Restart, Turn, ingest_many
from tocsin.db import Database, on_commit, utcnow
from tocsin.incidents.store import NO_KEY_LOCKS

log = structlog.get_logger(__name__)
# Advisory locks of the two-integer form (a space and a key), apart from the audit chain's single-bigint lock.
LOCK_SPACE = 7270002
_HOLD = text("SELECT pg_advisory_xact_lock(:space, :token)")
_AWAIT = text("SELECT pg_advisory_xact_lock_shared(:space, :token)")


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
        previous: _Turn | None = None
        running: set[asyncio.Task[None]] = set()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch, size = [first], max(1, len(first.delivery.events))
            while size < self.max_events and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                size += max(1, len(item.delivery.events))
            pipelined = self.db.dialect == "postgresql"
            turn = _Turn(previous, held=True) if pipelined else _Turn(None, held=False)
            task = asyncio.create_task(self._commit(batch, turn))
            running.add(task)
            task.add_done_callback(running.discard)
            if not pipelined:
                await task
            else:  # the next batch may start once this one has written its alerts and the one ahead ended
                await turn.written
                if previous is not None:
                    await previous.ended
                if turn.outcome.done() and not turn.outcome.result():
                    await turn.ended  # the next batch goes after this one's retries, not into a restart
            previous = turn
        if running:
            await asyncio.gather(*running)

    async def _apply(self, batch: list[_Pending], *, routing: bool = True, turn: Turn = ALONE) -> None:
        async with self.db.write() as session:
            await ingest_many(
                session=session,
                deliveries=[p.delivery for p in batch],
                now=utcnow(),
                routing=routing,
                turn=turn,
            )

    async def _commit(self, batch: list[_Pending], turn: _Turn) -> None:
        try:
            try:
                await self._apply(batch, turn=turn)
            except Exception as exc:  # any failure of the shared transaction: isolate it below
                if turn.outcome.done() and turn.outcome.result():  # it failed after its commit
                    log.error("intake batch failed after its commit", size=len(batch), error=repr(exc))
                    for pending in batch:
                        _succeed(pending)
                    return
                turn.failed()
                await turn.behind_the_batch_ahead()  # whose retries come first
                if isinstance(exc, Restart):
                    log.debug("intake batch applied again after the batch ahead", size=len(batch))
                    await self._commit_again(batch)
                else:
                    await self._commit_one_by_one(batch, exc)
                return
        finally:
            turn.end()
        for pending in batch:
            _succeed(pending)

    async def _commit_again(self, batch: list[_Pending]) -> None:
        try:
            await self._apply(batch)
        except Exception as exc:
            await self._commit_one_by_one(batch, exc)
            return
        for pending in batch:
            _succeed(pending)

    async def _commit_one_by_one(self, batch: list[_Pending], exc: Exception) -> None:
        log.warning(
            "intake batch failed; retrying its deliveries one by one", size=len(batch), error=repr(exc)
        )
        for pending in batch:
            await self._commit_alone(pending)

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


class _Turn(Turn):
    """A batch's place. On PostgreSQL it is an advisory lock the batch holds from its first statement: the
    batch behind waits for the one ahead by asking for that lock, so every wait between the two is one
    PostgreSQL sees, and a deadlock through them (the batch ahead waiting for a row the batch behind
    holds) is detected and broken in a second like any other. If the batch ahead rolled back, the one
    behind rolls back too (Restart) and is applied again once the one ahead has been retried."""

    def __init__(self, previous: _Turn | None, *, held: bool) -> None:
        loop = asyncio.get_running_loop()
        self.previous, self.held = previous, held
        self.token = secrets.randbits(31)  # distinct among the batches in flight, in every process
        self.written: asyncio.Future[None] = loop.create_future()  # its alert rows are written
        self.outcome: asyncio.Future[bool] = loop.create_future()  # its transaction committed, or not
        self.ended: asyncio.Future[None] = loop.create_future()  # its deliveries are answered

    async def begin(self, session: AsyncSession) -> None:
        on_commit(session, self.committed)  # known as soon as it commits, whatever fails after
        if self.held:
            session.info[NO_KEY_LOCKS] = True
            await session.execute(_HOLD, {"space": LOCK_SPACE, "token": self.token})

    def alerts_written(self) -> None:
        if not self.written.done():
            self.written.set_result(None)

    async def settle(self, session: AsyncSession) -> None:
        ahead = self.previous
        if ahead is None or ahead.ended.done():  # its deliveries are all committed or given up
            return
        await session.execute(_AWAIT, {"space": LOCK_SPACE, "token": ahead.token})
        # Its transaction has ended: whether it committed is known at once (no lock stands in the way).
        if not await asyncio.shield(ahead.outcome):
            raise Restart

    async def behind_the_batch_ahead(self) -> None:
        if self.previous is not None:
            await asyncio.shield(self.previous.ended)

    def committed(self) -> None:
        self._decide(True)

    def failed(self) -> None:
        self.alerts_written()
        self._decide(False)

    def end(self) -> None:
        self.failed()  # where nothing was decided yet (cancelled): not committed
        if not self.ended.done():
            self.ended.set_result(None)

    def _decide(self, committed: bool) -> None:
        if not self.outcome.done():
            self.outcome.set_result(committed)


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
