"""Escalation across `tocsin worker` processes on PostgreSQL: a storm paged exactly once, and a kill -9.

Deliveries really go out, over HTTP, to a local webhook receiver, which counts them by idempotency key
(looking inside bundles, which carry several messages to one destination).
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import _build_schema, throwaway_pg
from tests.notify.receivers import HttpReceiver, serve
from tocsin.auth import service as auth
from tocsin.auth.models import Role
from tocsin.auth.permissions import SYSTEM
from tocsin.catalog import service as catalog
from tocsin.incidents import service as incidents
from tocsin.notify import contacts
from tocsin.notify.models import ChannelKind, Urgency
from tocsin.oncall import service
from tocsin.oncall.models import TargetKind
from tocsin.wiring import open_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 20
# Deliveries and their timeline entries still to do (SLA clocks and other domains' timers stay pending).
PENDING = "SELECT count(*) FROM timers WHERE kind IN ('notify.deliver', 'escalation.result')"
# Deliveries the worker had claimed (the message is being sent) under a lease it still holds. A timer that is
# leased but whose message is not yet claimed may rightly ride earlier in another worker's bundle.
IN_FLIGHT = (
    "FROM timers t JOIN outbox o ON o.id::text = t.subject WHERE t.kind = 'notify.deliver'"
    " AND t.lease_owner IS NOT NULL AND o.attempts > 0 AND o.sending_until IS NOT NULL"
)


class GatedReceiver(HttpReceiver):
    """While the gate is shut, requests hang until it opens and then get a 503 (nothing is recorded)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        if not self.gate.is_set():
            with self.lock:
                self.attempts += 1
            self.gate.wait(60)
            return 503, {}
        return super().answer(path, headers, body)


@pytest.fixture
def receiver() -> Iterator[GatedReceiver]:
    r = GatedReceiver()
    server = serve(r)
    yield r
    r.gate.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with throwaway_pg("tocsin_escalation") as url:
        _build_schema(url)
        yield url


def arrivals(receiver: HttpReceiver) -> list[tuple[str, float]]:
    """(idempotency key, arrival time) of every message received, each message a bundle carried included."""
    out = []
    for r in list(receiver.received):
        document = r.json
        for message in document["messages"] if document.get("event") == "bundle" else [document]:
            out.append((message["idempotency_key"], r.at))
    return out


def delivered(receiver: HttpReceiver) -> Counter[str]:
    """How often each message arrived, by idempotency key."""
    return Counter(key for key, _ in arrivals(receiver))


async def build(url: str, receiver: HttpReceiver) -> list[int]:
    """PEOPLE people, each reachable on their own webhook, each the single step of a policy a service runs.
    Returns the services' ids."""
    db = open_database(url, pool_size=2)
    service_ids = []
    async with db.write() as s:
        for i in range(PEOPLE):
            user = await auth.create_user(
                session=s, actor=SYSTEM, email=f"p{i}@example.com", name=f"Person {i}", role=Role.responder
            )
            method, _ = await contacts.create_contact_method(
                session=s,
                actor=SYSTEM,
                user_id=user.id,
                kind=ChannelKind.webhook,
                address=receiver.url(f"/p{i}"),
            )
            await contacts.create_rule(
                session=s, actor=SYSTEM, user_id=user.id, contact_method_id=method.id, urgency=Urgency.high
            )
            policy = await service.create_policy(
                session=s,
                actor=SYSTEM,
                name=f"Policy {i}",
                steps=[service.StepSpec(60, [service.Target(TargetKind.user, user.id)])],
            )
            svc = await catalog.create_service(session=s, actor=SYSTEM, slug=f"svc-{i}", name=f"Service {i}")
            await service.set_service_escalation(
                session=s, actor=SYSTEM, service_key=svc.id, policy_id=policy.id
            )
            service_ids.append(svc.id)
    await db.dispose()
    return service_ids


async def open_incidents(url: str, service_ids: list[int], count: int) -> list[int]:
    """`count` P1 incidents in one transaction, so they all start escalating at the same commit."""
    db = open_database(url, pool_size=2)
    async with db.write() as s:
        made = [
            await incidents.create_incident(
                session=s,
                actor=SYSTEM,
                title=f"Storm {n}",
                impact=1,
                urgency=1,
                service_ids=[service_ids[n % len(service_ids)]],
            )
            for n in range(count)
        ]
    await db.dispose()
    return [i.id for i in made]


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path  # its stdout and stderr


@contextmanager
def workers(
    url: str, count: int, logs: Path, *, lease: float = 30, recheck: float = 30
) -> Iterator[list[WorkerProcess]]:
    started = []
    for _ in range(count):
        log = logs / f"worker-{len(list(logs.iterdir()))}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.oncall.worker_process", url, str(lease), str(recheck)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(WorkerProcess(process, log))
    try:
        yield started
    finally:
        for w in started:
            if w.process.poll() is None:
                w.process.kill()
            w.process.wait()


def stop(procs: list[WorkerProcess]) -> list[int]:
    """Stop the workers gracefully; returns how many timers each fired (from its parting log line)."""
    for w in procs:
        w.process.send_signal(signal.SIGTERM)
    fired = []
    for w in procs:
        w.process.wait(timeout=30)
        text = re.sub(r"\x1b\[[0-9;]*m", "", w.log.read_text())  # console colours, if any
        assert w.process.returncode == 0, text[-3000:]
        found = re.search(r"engine\.worker\.stopped.*?fired=(\d+)", text)
        fired.append(int(found.group(1)) if found else 0)
    return fired


def query(url: str, sql: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


def wait_until(done: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def listening(url: str, count: int) -> bool:
    sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'"
    return bool(query(url, sql) == count)


def expected_keys(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {k for (k,) in conn.execute("SELECT idempotency_key FROM outbox")}


def test_three_workers_page_a_storm_of_a_thousand_incidents_exactly_once(
    pg_url: str, receiver: GatedReceiver, tmp_path: Path
) -> None:
    service_ids = asyncio.run(build(pg_url, receiver))
    with workers(pg_url, 3, tmp_path) as procs:
        wait_until(lambda: listening(pg_url, 3), "three listening workers")
        ids = asyncio.run(open_incidents(pg_url, service_ids, 1000))
        wait_until(lambda: len(delivered(receiver)) >= 1000, "a page per incident", timeout=300)
        wait_until(
            lambda: query(pg_url, PENDING) == 0,
            "deliveries and their timeline entries",
        )
        fired = stop(procs)
    assert sum(n > 0 for n in fired) >= 2, f"the work was shared ({fired}), so the exclusion was tested"
    keys = expected_keys(pg_url)
    assert len(keys) == 1000, "one page per incident was queued"
    counts = delivered(receiver)
    assert set(counts) == keys
    assert [k for k, n in counts.items() if n != 1] == [], "every page arrived exactly once"
    assert receiver.rejected == [], "every delivery was signed with its contact method's secret"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        per_incident = Counter(
            (incident_id, kind)
            for incident_id, kind in conn.execute(
                "SELECT incident_id, kind FROM incident_timeline WHERE kind IN ('escalation', 'notification')"
            )
        )
        statuses = {status for (status,) in conn.execute("SELECT DISTINCT status FROM outbox")}
    assert {per_incident[(i, "escalation")] for i in ids} == {1}, "one step entry each"
    assert {per_incident[(i, "notification")] for i in ids} == {1}, "one delivery entry each"
    assert statuses <= {"sent", "bundled"}, "every message went out, alone or in a bundle"


def test_a_killed_workers_pages_go_out_once_its_leases_expire(
    pg_url: str, receiver: GatedReceiver, tmp_path: Path
) -> None:
    service_ids = asyncio.run(build(pg_url, receiver))
    receiver.gate.clear()  # the doomed worker's deliveries hang
    with workers(pg_url, 1, tmp_path, lease=4) as (doomed,):
        wait_until(lambda: listening(pg_url, 1), "the worker to listen")
        asyncio.run(open_incidents(pg_url, service_ids, 30))
        wait_until(
            lambda: query(pg_url, f"SELECT count(*) {IN_FLIGHT}") > 0 and receiver.attempts > 0,
            "deliveries in flight",
        )
        doomed.process.kill()  # SIGKILL: no drain, no lease handed back
        doomed.process.wait()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        held: dict[str, datetime] = dict(conn.execute(f"SELECT t.subject, t.lease_until {IN_FLIGHT}"))
        outbox_of = dict(conn.execute("SELECT id::text, idempotency_key FROM outbox"))
    assert held, "the worker died holding leases"
    receiver.gate.set()
    with workers(pg_url, 2, tmp_path, lease=4, recheck=0.5) as procs:
        wait_until(lambda: len(delivered(receiver)) >= 30, "every page")
        wait_until(
            lambda: query(pg_url, PENDING) == 0,
            "the rest",
        )
        stop(procs)
    counts = delivered(receiver)
    assert set(counts) == expected_keys(pg_url) and len(counts) == 30
    assert [k for k, n in counts.items() if n != 1] == [], "the interrupted pages went out once"
    arrived = dict(arrivals(receiver))
    late = [
        outbox_of[subject]
        for subject, until in held.items()
        if subject in outbox_of and outbox_of[subject] in arrived
    ]
    assert late, "some of the held deliveries were retried by the survivors"
    for subject, until in held.items():
        key = outbox_of.get(subject)
        if key in arrived:
            assert arrived[key] >= until.timestamp(), "retried only once the killed worker's lease expired"
