"""Engine benchmark: how late pages reach the channel when escalation timers fall due, SQLite and PostgreSQL.

For each database and size, a fresh database is migrated and given SIZE open incidents spread over PEOPLE
services, each incident with its escalation pending (its run row and its `escalation.step` timer, as the
incident listener leaves them). Every service's policy pages the one person on its schedule, who is reachable
on a webhook served by a receiver in another process (bench/receiver.py). An in-process worker runs every
domain's real timer handlers: the step handler queues the page, the delivery handler posts it.

Two phases, with the other incidents' timers pending an hour away (a backlog the claims must see past):
- steady: RATE incidents fall due per second for SECONDS seconds. The lag of a page is its arrival at the
  receiver (handed to the channel) minus its step timer's due time. Figures
  `BENCH engine.<sqlite|postgres>.<size>.<lag_p50_ms|lag_p99_ms|lag_max_ms|missed|duplicated>`.
- storm: STORM more fall due at once: `storm_pages_per_s` (how fast the engine pages through them) and
  `storm_lag_p99_ms`.

Run: `.venv/bin/python bench/engine.py [--sizes 10k,100k] [--databases sqlite,postgres] [--rate 20]`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from inspect import signature as inspect_signature
from pathlib import Path

import httpx
from sqlalchemy import bindparam, insert, inspect, text, update

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import bench, free_port, fresh_database, machine_speed, note, pg_available, tocsin_cli

from tocsin.auth import service as auth
from tocsin.auth.models import Role
from tocsin.auth.permissions import SYSTEM
from tocsin.catalog import service as catalog
from tocsin.config import Settings
from tocsin.db import Database, make_sync_engine, utcnow
from tocsin.engine.handlers import EngineContext
from tocsin.engine.models import Timer
from tocsin.engine.service import WAKE_KEY
from tocsin.engine.store import TIMERS
from tocsin.engine.worker import Worker
from tocsin.incidents.models import Incident, IncidentService
from tocsin.notify import contacts
from tocsin.notify.models import ChannelKind, Urgency
from tocsin.oncall import service as oncall
from tocsin.oncall.models import EscalationRun, TargetKind
from tocsin.seed import seed_defaults
from tocsin.wiring import open_database, timer_handlers

SIZES = {"10k": 10_000, "100k": 100_000}  # open incidents, each with a pending escalation timer
CHUNK = 5_000
GRACE = timedelta(seconds=30)  # how long after the last due time a page still counts as sent, not missed
LATER = timedelta(hours=1)  # where the incidents not being measured have their next step
STEP = "escalation.step"
_INCIDENT = re.compile(r"^esc:(\d+):")


def build_schema(url: str) -> str:
    """`tocsin migrate`, then create_all for tables the migrations do not make yet, then the defaults."""
    how = "tocsin migrate"
    try:
        tocsin_cli(url, "migrate")
    except RuntimeError as exc:
        errors = [line for line in str(exc).splitlines() if "Error" in line] or ["no error text"]
        note(f"tocsin migrate failed: {errors[-1].strip()[:160]}")
        how = "create_all"
    from tocsin.tables import Base

    engine = make_sync_engine(url)
    missing = sorted(set(Base.metadata.tables) - set(inspect(engine).get_table_names()))
    Base.metadata.create_all(engine)
    engine.dispose()
    if missing and how != "create_all":
        how += f" + create_all for {', '.join(missing)}"

    async def seed() -> None:
        db = open_database(url, pool_size=2)
        async with db.write() as s:
            await seed_defaults(s)
        await db.dispose()

    asyncio.run(seed())
    return how


async def setup_people(db: Database, receiver: str, people: int) -> list[tuple[int, int]]:
    """`people` services, each running its own policy that pages its schedule's one person; returns
    (service id, policy id) pairs."""
    out = []
    async with db.write() as s:
        for i in range(people):
            user = await auth.create_user(
                session=s,
                actor=SYSTEM,
                email=f"oncall{i}@example.com",
                name=f"On-call {i}",
                role=Role.responder,
            )
            method, _ = await contacts.create_contact_method(
                session=s, actor=SYSTEM, user_id=user.id, kind=ChannelKind.webhook, address=f"{receiver}/p{i}"
            )
            await contacts.create_rule(
                session=s, actor=SYSTEM, user_id=user.id, contact_method_id=method.id, urgency=Urgency.high
            )
            schedule = await oncall.create_schedule(session=s, actor=SYSTEM, name=f"Primary {i}")
            await oncall.add_layer(
                session=s,
                actor=SYSTEM,
                schedule_id=schedule.id,
                name="24x7",
                participants=[user.id],
                rotation_start=datetime(2024, 1, 1),
            )
            policy = await oncall.create_policy(
                session=s,
                actor=SYSTEM,
                name=f"Escalation {i}",
                steps=[oncall.StepSpec(30, [oncall.Target(TargetKind.schedule, schedule.id)])],
            )
            svc = await catalog.create_service(
                session=s, actor=SYSTEM, slug=f"service-{i}", name=f"Service {i}"
            )
            await oncall.set_service_escalation(
                session=s, actor=SYSTEM, service_key=svc.id, policy_id=policy.id
            )
            out.append((svc.id, policy.id))
    return out


async def insert_incidents(db: Database, count: int, services: list[tuple[int, int]]) -> None:
    """Open incidents 1..count, each with its escalation pending LATER from now (bulk: this is setup)."""
    now = utcnow()
    due = now + LATER
    for start in range(1, count + 1, CHUNK):
        ids = range(start, min(start + CHUNK, count + 1))
        pairs = [(i, *services[i % len(services)]) for i in ids]
        async with db.write() as session:
            await session.execute(
                insert(Incident),
                [
                    {
                        "id": i,
                        "title": f"Incident {i}",
                        "type_key": "it_service",
                        "impact": 1,
                        "urgency": 1,
                        "priority": 1,
                        "reported_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            await session.execute(
                insert(IncidentService), [{"incident_id": i, "service_id": s} for i, s, _ in pairs]
            )
            await session.execute(
                insert(EscalationRun),
                [
                    {
                        "incident_id": i,
                        "policy_id": p,
                        "source": "service",
                        "source_id": s,
                        "urgency_mode": "by_priority",
                        "status": "running",
                        "generation": 1,
                        "round": 0,
                        "step": 0,
                        "due_at": due,
                        "paged": [],
                        "note": "",
                        "started_at": now,
                        "updated_at": now,
                    }
                    for i, s, p in pairs
                ],
            )
            await session.execute(
                insert(Timer),
                [
                    {
                        "kind": STEP,
                        "subject": f"inc:{i}",
                        "due_at": due,
                        "payload": {"policy_id": p, "round": 0, "step": 0, "run": 1},
                        "attempts": 0,
                        "created_at": now,
                    }
                    for i, _, p in pairs
                ],
            )


async def fall_due(db: Database, due: dict[int, datetime]) -> None:
    """Move these incidents' step timers to their due times, in one commit that wakes the worker."""
    c = TIMERS.c
    stmt = update(TIMERS).where(c.kind == STEP, c.subject == bindparam("s")).values(due_at=bindparam("d"))
    async with db.write() as session:
        await session.execute(stmt, [{"s": f"inc:{i}", "d": at} for i, at in due.items()])
        session.info[WAKE_KEY] = min(due.values())


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")


class Receiver:
    """bench/receiver.py in a subprocess."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        script = Path(__file__).resolve().parent / "receiver.py"
        self.process = subprocess.Popen([sys.executable, str(script), str(self.port)])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/count", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the receiver did not start")

    async def count(self, client: httpx.AsyncClient) -> int:
        return int((await client.get(f"{self.url}/count")).text)

    async def arrivals(self, client: httpx.AsyncClient) -> list[tuple[str, float]]:
        return [(k, t) for k, t in (await client.get(f"{self.url}/arrivals", timeout=60)).json()]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


async def wait_for(receiver: Receiver, expected: int, deadline: datetime) -> None:
    async with httpx.AsyncClient() as client:
        while await receiver.count(client) < expected and utcnow() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)  # the receiver is another process: polling it is the way


def lags(due: dict[int, datetime], arrivals: list[tuple[str, float]]) -> tuple[list[float], int, int]:
    """Each due incident's page lag (ms, sorted), how many were never paged, how many keys arrived twice."""
    first: dict[int, float] = {}
    for key, at in arrivals:
        found = _INCIDENT.match(key)
        if found and int(found.group(1)) in due:
            incident = int(found.group(1))
            first[incident] = min(at, first.get(incident, at))
    lag_ms = sorted((first[i] - due[i].timestamp()) * 1000 for i in first)
    duplicated = sum(n - 1 for n in Counter(key for key, _ in arrivals).values())
    return lag_ms, len(due) - len(first), duplicated


async def run(url: str, label: str, size: int, args: argparse.Namespace, receiver: Receiver) -> None:
    db = open_database(url, pool_size=10)
    began = time.perf_counter()
    services = await setup_people(db, receiver.url, args.people)
    await insert_incidents(db, size, services)
    if not db.sqlite:  # as autovacuum would have by now: plans for 100k timers, not for the empty table
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
    note(f"{label}: {size} open incidents on {args.people} services in {time.perf_counter() - began:.1f} s")
    settings = Settings(
        database_url=url, demo=True, allow_private_targets=True, base_url="https://tocsin.example"
    )
    worker = Worker(
        EngineContext(db=db, settings=settings),
        timer_handlers(),
        concurrency=args.concurrency,
        batch=args.batch,
    )
    db.after_commit.append(worker.wake_on_commit)
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run_forever(stop))

    steady = int(args.rate * args.seconds)
    first_due = utcnow() + timedelta(seconds=1)
    due = {i: first_due + timedelta(seconds=n / args.rate) for n, i in enumerate(range(1, steady + 1))}
    await fall_due(db, due)
    await wait_for(receiver, steady, max(due.values()) + GRACE)
    async with httpx.AsyncClient() as client:
        arrived = await receiver.arrivals(client)
    ordered, missed, duplicated = lags(due, arrived)
    note(f"{label}: steady {args.rate:g} pages/s for {args.seconds:g} s ({steady} pages)")
    bench(f"engine.{label}.lag_p50_ms", round(percentile(ordered, 50), 1), "ms")
    bench(f"engine.{label}.lag_p99_ms", round(percentile(ordered, 99), 1), "ms")
    bench(f"engine.{label}.lag_max_ms", round(ordered[-1] if ordered else float("nan"), 1), "ms")
    bench(f"engine.{label}.missed", missed, "pages")
    bench(f"engine.{label}.duplicated", duplicated, "pages")

    if args.storm:
        now = utcnow()
        storm = {i: now for i in range(steady + 1, min(steady + args.storm, size) + 1)}
        await fall_due(db, storm)
        await wait_for(receiver, steady + len(storm), now + timedelta(seconds=len(storm)) + GRACE)
        async with httpx.AsyncClient() as client:
            arrived = await receiver.arrivals(client)
        ordered, missed, duplicated = lags(storm, arrived)
        drained = ordered[-1] / 1000 if ordered else float("nan")
        note(f"{label}: storm of {len(storm)} pages due at once: {missed} missed, {duplicated} duplicated")
        bench(f"engine.{label}.storm_pages_per_s", round(len(ordered) / drained, 1), "pages/s")
        bench(f"engine.{label}.storm_lag_p99_ms", round(percentile(ordered, 99), 1), "ms")
    stop.set()
    await loop
    m = worker.metrics
    note(f"{label}: worker fired {m.fired}, failed {m.failed}, claimed {m.claimed}")
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10k,100k", help="comma-separated: " + ", ".join(SIZES))
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--rate", type=float, default=20.0, help="pages falling due per second (steady)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the steady phase lasts")
    parser.add_argument(
        "--storm", type=int, default=1000, help="pages falling due at once after it (0: none)"
    )
    parser.add_argument("--people", type=int, default=50, help="services, each with its one on-call person")
    defaults = inspect_signature(Worker).parameters
    parser.add_argument("--concurrency", type=int, default=defaults["concurrency"].default)
    parser.add_argument("--batch", type=int, default=defaults["batch"].default)
    args = parser.parse_args()
    machine_speed()
    note(f"worker: concurrency {args.concurrency}, batch {args.batch} (Worker defaults unless given)")
    for kind in args.databases.split(","):
        if kind == "postgres" and not pg_available():
            note("PostgreSQL unreachable: skipping postgres figures")
            continue
        for size in args.sizes.split(","):
            with fresh_database(kind) as url:
                note(f"{kind}.{size}: schema by {build_schema(url)}")
                receiver = Receiver()
                try:
                    asyncio.run(run(url, f"{kind}.{size}", SIZES[size], args, receiver))
                finally:
                    receiver.close()


if __name__ == "__main__":
    main()
