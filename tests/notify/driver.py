"""Fires `notify.deliver` timers the way the engine does (real timer rows), so tests can drain the outbox."""

from __future__ import annotations

from typing import Any

from tocsin.db import utcnow
from tocsin.engine import service as engine
from tocsin.engine.handlers import Again, EngineContext, Fired
from tocsin.notify.delivery import HANDLERS
from tocsin.notify.service import DELIVER


async def fire_due(ctx: EngineContext) -> int:
    """Fire every timer due now, earliest first; returns how many fired."""
    return await drain(ctx, clock=None)


async def drain(ctx: EngineContext, *, clock: Any = None, max_steps: int = 1000) -> int:
    """Fire timers until none is left; with a time-machine `clock`, jump to each next due time."""
    for fired in range(max_steps):
        async with ctx.db.read() as s:
            timers = await engine.pending(session=s, kind=DELIVER)
        if not timers:
            return fired
        timer = timers[0]
        if timer.due_at > utcnow():
            if clock is None:
                return fired
            clock.move_to(timer.due_at)
        outcome = await HANDLERS[DELIVER](
            ctx,
            Fired(
                id=timer.id,
                kind=timer.kind,
                subject=timer.subject,
                due_at=timer.due_at,
                payload=timer.payload,
                attempts=timer.attempts + 1,
                lease_owner="test",
            ),
        )
        async with ctx.db.write() as s:
            if isinstance(outcome, Again):
                await engine.schedule(session=s, kind=DELIVER, subject=timer.subject, due_at=outcome.at)
            else:
                await engine.cancel(session=s, kind=DELIVER, subject=timer.subject)
    raise AssertionError(f"timers still due after {max_steps} firings")
