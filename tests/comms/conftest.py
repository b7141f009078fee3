"""Helpers for the comms tests: fire due reminder timers the way the engine does."""

from __future__ import annotations

from tocsin.comms import cadence
from tocsin.config import Settings
from tocsin.db import Database, utcnow
from tocsin.engine.handlers import EngineContext
from tocsin.engine.worker import Worker


async def fire_reminders(db: Database, settings: Settings) -> int:
    """Claim what is due now and fire the reminders among it (real timer rows, the real worker)."""
    worker = Worker(EngineContext(db=db, settings=settings), cadence.HANDLERS, listen=False)
    ours = [f for f in await worker.claim_due(utcnow()) if f.kind == cadence.REMINDER]
    for fired in ours:
        await worker.fire(fired)
    return len(ours)
