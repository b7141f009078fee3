"""A stand-in for `tocsin worker` in the multi-process tests: run_worker with a recording or stalling handler.

    python -m tests.engine.worker_process DATABASE_URL record|stall LEASE RECHECK CONCURRENCY BATCH

`record` inserts (subject, lease owner, time) into the `fired` table the test created; `stall` never returns,
so its leases are held until the process is killed.
"""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy import text

from tocsin.config import Settings
from tocsin.db import utcnow
from tocsin.engine.handlers import Done, EngineContext, Fired, Handler, Outcome
from tocsin.engine.runtime import run_worker

KIND = "test.process"


async def record(ctx: EngineContext, fired: Fired) -> Outcome:
    async with ctx.db.write() as session:
        await session.execute(
            text("INSERT INTO fired (subject, owner, at) VALUES (:s, :o, :at)"),
            {"s": fired.subject, "o": fired.lease_owner, "at": utcnow()},
        )
    return Done()


async def stall(ctx: EngineContext, fired: Fired) -> Outcome:
    await asyncio.sleep(3600)
    return Done()


def main(argv: list[str]) -> None:
    url, mode, lease, recheck, concurrency, batch = argv
    handler: Handler = record if mode == "record" else stall
    settings = Settings(database_url=url, demo=True, db_pool_size=4)
    asyncio.run(
        run_worker(
            settings,
            {KIND: handler},
            lease_seconds=float(lease),
            recheck_seconds=float(recheck),
            concurrency=int(concurrency),
            batch=int(batch),
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
