"""`tocsin worker` as the multi-process escalation tests run it: the real wiring (open_database, all the
timer handlers), with a lease and a safety-net re-check short enough for a test to wait out.

    python -m tests.oncall.worker_process DATABASE_URL LEASE_SECONDS RECHECK_SECONDS
"""

from __future__ import annotations

import asyncio
import sys

from tocsin.config import Settings
from tocsin.engine.runtime import run_worker
from tocsin.wiring import open_database, timer_handlers


def main(argv: list[str]) -> None:
    url, lease, recheck = argv
    settings = Settings(
        database_url=url,
        demo=True,
        db_pool_size=4,
        allow_private_targets=True,
        http_timeout_seconds=10,
        base_url="https://tocsin.example.com",
    )
    asyncio.run(
        run_worker(
            settings,
            timer_handlers(),
            database=open_database(url, pool_size=settings.db_pool_size),
            lease_seconds=float(lease),
            recheck_seconds=float(recheck),
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
