"""Several `tocsin worker` processes on one PostgreSQL database: exactly once, and recovery from kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import throwaway_pg
from tests.engine.worker_process import KIND
from tocsin.db import make_sync_engine
from tocsin.engine.store import TIMERS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_timers_db() -> Iterator[str]:
    """A throwaway PostgreSQL database with the timers table and a `fired` log the handlers write to."""
    with throwaway_pg("tocsin_engine") as url:
        engine = make_sync_engine(url)
        TIMERS.create(engine)
        engine.dispose()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE fired (subject text NOT NULL, owner text NOT NULL, at timestamptz)")
        yield url


@contextmanager
def worker_processes(
    url: str, *modes: str, lease: float = 30, recheck: float = 30, concurrency: int = 20, batch: int = 10
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Small claims by default, so the processes contend for rows many times over."""
    args = [str(lease), str(recheck), str(concurrency), str(batch)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.engine.worker_process", url, mode, *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for mode in modes
    ]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def stop_gracefully(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        _, err = p.communicate(timeout=15)
        assert p.returncode == 0, err.decode()[-2000:]


def wait_for(query: str, done: Callable[[Any], bool], url: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute(query).fetchone()
            value = row[0] if row else None
            if done(value):
                return value
            assert time.monotonic() < deadline, f"timed out waiting on {query!r} (last value {value!r})"
            time.sleep(0.02)


def listeners(url: str, count: int) -> None:
    wait_for(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        lambda n: n == count,
        url,
    )


def insert_due_timers(url: str, count: int, spread_ms: int) -> None:
    with psycopg.connect(url) as conn:  # one transaction; its NOTIFY wakes every worker on commit
        conn.execute(
            "INSERT INTO timers (kind, subject, due_at, attempts, created_at) "
            "SELECT %s, 's' || g, now() + (g %% %s) * interval '1 millisecond', 0, now() "
            "FROM generate_series(1, %s) g",
            (KIND, max(spread_ms, 1), count),
        )
        conn.execute("NOTIFY tocsin_timers")


def test_three_worker_processes_fire_a_thousand_timers_exactly_once(pg_timers_db: str) -> None:
    url = pg_timers_db
    with worker_processes(url, "record", "record", "record") as procs:
        listeners(url, 3)
        insert_due_timers(url, 1000, spread_ms=500)
        wait_for("SELECT count(*) FROM timers", lambda n: n == 0, url)
        stop_gracefully(procs)
    with psycopg.connect(url) as conn:
        counts = conn.execute(
            "SELECT count(*), count(DISTINCT subject), count(DISTINCT split_part(owner, '/', 1)) FROM fired"
        ).fetchone()
    assert counts is not None
    total, distinct, workers = counts
    assert (total, distinct) == (1000, 1000), "each timer fired exactly once"
    assert workers >= 2, "the work was shared, so the exclusion was really tested"


def test_a_killed_workers_timers_fire_elsewhere_once_its_lease_expires(pg_timers_db: str) -> None:
    url = pg_timers_db
    with worker_processes(url, "stall", lease=3, concurrency=8, batch=8) as (doomed,):
        listeners(url, 1)
        insert_due_timers(url, 20, spread_ms=0)
        wait_for("SELECT count(*) FROM timers WHERE lease_owner IS NOT NULL", lambda n: n == 8, url)
        doomed.kill()  # SIGKILL: no drain, no lease release
        doomed.wait()
    with psycopg.connect(url) as conn:
        held: dict[str, datetime] = dict(
            conn.execute("SELECT subject, lease_until FROM timers WHERE lease_owner IS NOT NULL")
        )
    with worker_processes(url, "record", recheck=0.5) as procs:
        wait_for("SELECT count(*) FROM timers", lambda n: n == 0, url)
        stop_gracefully(procs)
    with psycopg.connect(url) as conn:
        fired: dict[str, datetime] = dict(conn.execute("SELECT subject, at FROM fired"))
        total = conn.execute("SELECT count(*) FROM fired").fetchone()
    assert len(fired) == 20 and total == (20,), "each timer fired exactly once"
    assert all(fired[subject] >= lease_until for subject, lease_until in held.items()), (
        "the killed worker's timers waited for its lease to run out"
    )
