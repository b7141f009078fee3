"""Group commit: many callers' small writes carried by one transaction, each caller waiting for its commit.

Finishing handlers settle their timers this way, so a burst of thousands of firings costs a few dozen
transactions instead of thousands (on SQLite, where writers queue on one lock, that is the difference
between keeping up and falling behind).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """`await submit(item)` returns once a `write(batch)` holding the item committed, or raises its error."""

    def __init__(self, write: Callable[[list[T]], Awaitable[None]]) -> None:
        self._write = write
        self._queue: list[tuple[T, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="tocsin engine group commit")
        await future

    async def idle(self) -> None:
        """Wait until the writes already submitted are done."""
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await self._flusher

    async def _flush(self) -> None:
        # Items submitted while a batch is being written form the next batch.
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._write([item for item, _ in batch])
            except Exception as exc:
                _resolve(batch, exc)
            except BaseException:
                # Cancelled (shutdown): nobody will write the rest, so nobody may wait for it.
                waiting, self._queue = batch + self._queue, []
                _resolve(waiting, RuntimeError("group commit cancelled before writing"))
                raise
            else:
                _resolve(batch, None)


def _resolve(waiting: list[tuple[T, asyncio.Future[None]]], error: Exception | None) -> None:
    for _, future in waiting:
        if future.done():  # its caller was cancelled
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
