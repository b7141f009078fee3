"""API benchmark: create, get-by-reference and a filtered first page of the list, over real HTTP.

Seeds N incidents (default 100,000) into a fresh SQLite database and a throwaway PostgreSQL database, serves
each with `tocsin serve` in a subprocess, and drives it with concurrent clients from this process (client and
server share the machine's cores). Prints `BENCH api.<db>.<op>.<p50_ms|p99_ms|per_s>` for `--concurrency`
clients (default 4), op create, get, list, search, then create_paging; the same figures as
`api.<db>.<op>_c<N>.*` at saturation (`--saturation`, default 16 clients, before create_paging); and
`api.<db>.server_rss_mb`.

Every operation first runs 100 untimed calls, and the client's garbage collector is kept out of the
timings (see `harness.drive`). The clients are `harness.Pool` keep-alive connections, not httpx: they share
the cores with the server, and httpx's 1 ms of CPU per request was a third of the server's for a create
(figures from before that change are about 25% slower at p99 for the same server).

`create` files incidents on a demo service with no escalation policy (the record alone: validation,
priority, SLA clocks, timeline, audit). `create_paging` files them on the checkout API, whose policy pages
on-call at once: the same create plus the escalation run, and the in-process engine paging meanwhile.
`search` is the list's text filter (`q`), half the time for a host name, half for text no incident has.

    .venv/bin/python bench/api.py [--incidents 100000] [--requests 2000] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from harness import (
    Pool,
    Run,
    bench,
    drive,
    fresh_database,
    machine_speed,
    note,
    pg_available,
    serve,
    tocsin_cli,
)
from sqlalchemy import text

from tocsin.db import make_sync_engine
from tocsin.incidents.matrix import DEFAULT as DEFAULT_MATRIX
from tocsin.incidents.models import Incident, IncidentService, TimelineEntry

STATES = (
    ["closed"] * 70
    + ["resolved"] * 10
    + ["new"] * 5
    + ["acknowledged"] * 5
    + ["in_progress"] * 8
    + ["on_hold"] * 2
)
TYPES = ["it_service"] * 6 + ["devops"] * 2 + ["facility", "quality"]


WARMUP = 100  # untimed calls of each operation first (see harness.drive)


def seed(url: str, n: int, rng: random.Random) -> None:
    """Bulk-insert n incidents with one timeline entry each, spread over the last two years."""
    engine = make_sync_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        teams = [r[0] for r in conn.exec_driver_sql("SELECT id FROM teams")]
        users = [r[0] for r in conn.exec_driver_sql("SELECT id FROM users")]
        services = [r[0] for r in conn.exec_driver_sql("SELECT id FROM services")]
        start_id = (conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM incidents").scalar() or 0) + 1
    batch = 5000
    for offset in range(0, n, batch):
        incidents: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        for i in range(offset, min(n, offset + batch)):
            iid = start_id + i
            created = now - timedelta(days=730) * (1 - i / n) - timedelta(seconds=rng.randint(0, 600))
            impact, urgency = rng.randint(1, 3), rng.randint(1, 3)
            state = rng.choice(STATES)
            done = state in ("resolved", "closed")
            incidents.append(
                {
                    "id": iid,
                    "title": f"Incident {iid}: {rng.choice(['latency', 'errors', 'outage', 'leak'])} "
                    f"on host-{rng.randint(1, 500)}",
                    "description": "seeded by bench/api.py",
                    "type_key": rng.choice(TYPES),
                    "impact": impact,
                    "urgency": urgency,
                    "priority": DEFAULT_MATRIX[(impact, urgency)],
                    "state": state,
                    "resolution_code": "solution_provided" if done else None,
                    "resolution_summary": "fixed" if done else None,
                    "team_id": rng.choice(teams),
                    "assignee_id": rng.choice(users) if rng.random() < 0.8 else None,
                    "reporter_id": rng.choice(users),
                    "created_at": created,
                    "updated_at": created,
                    "reported_at": created,
                    "acknowledged_at": created + timedelta(minutes=5) if state != "new" else None,
                    "resolved_at": created + timedelta(hours=2) if done else None,
                    "closed_at": created + timedelta(days=7) if state == "closed" else None,
                }
            )
            links.append({"incident_id": iid, "service_id": rng.choice(services)})
            entries.append(
                {
                    "incident_id": iid,
                    "at": created,
                    "actor": "system",
                    "actor_name": "bench",
                    "kind": "created",
                    "visibility": "stakeholder",
                    "text": "Incident created",
                }
            )
        with engine.begin() as conn:
            conn.execute(Incident.__table__.insert(), incidents)
            conn.execute(IncidentService.__table__.insert(), links)
            conn.execute(TimelineEntry.__table__.insert(), entries)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('incidents', 'id'), (SELECT MAX(id) FROM incidents))"
            )
        else:
            conn.exec_driver_sql("ANALYZE")
    if engine.dialect.name == "postgresql":
        # The maintenance a bulk load calls for, done now rather than by autovacuum during the measurement
        # (it would find 300,000 new rows, and the trigram indexes' pending lists, a minute later).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def report(prefix: str, run: Run) -> None:
    bench(f"{prefix}.p50_ms", round(run.p50, 2), "ms")
    bench(f"{prefix}.p99_ms", round(run.pct(99), 2), "ms")
    bench(f"{prefix}.per_s", round(run.per_s, 1), "req/s")
    if run.errors:
        note(f"{prefix}: {run.errors} requests failed")


def routes(url: str) -> dict[str, tuple[int, int]]:
    """(team id, service id) to create incidents on: `quiet`, a demo service and team with no escalation
    policy (the plain create), and `paging`, the checkout API, whose policy pages on-call at once."""
    engine = make_sync_engine(url)
    with engine.connect() as conn:
        query = text("SELECT owner_team_id, id FROM services WHERE slug = :slug")
        ids = {
            kind: (int(row[0]), int(row[1]))
            for kind, slug in (("quiet", "hq-building"), ("paging", "checkout-api"))
            for row in [conn.execute(query, {"slug": slug}).one()]
        }
    engine.dispose()
    return ids


async def measure(
    base_url: str,
    token: str,
    n_incidents: int,
    requests: int,
    concurrency: int,
    db: str,
    rng: random.Random,
    suffix: str = "",
    *,
    targets: dict[str, tuple[int, int]],
    paging: bool = False,
) -> None:
    pool = Pool(base_url, concurrency, {"Authorization": f"Bearer {token}"})
    try:
        for _ in range(50):  # warm-up: connections, caches, statement preparation
            await pool.request("GET", "/api/v1/incidents?state=in_progress&priority=2")

        def creating(team_id: int, service_id: int) -> Callable[[int], Awaitable[bool]]:
            async def create(i: int) -> bool:
                body = {
                    "title": f"bench create {i}",
                    "impact": 1 + i % 3,
                    "urgency": 1 + (i // 3) % 3,
                    "team_id": team_id,
                    "service_ids": [service_id],
                    "description": "created by bench/api.py",
                }
                status, _ = await pool.request("POST", "/api/v1/incidents", json.dumps(body).encode())
                return status == 201

            return create

        async def get(i: int) -> bool:
            status, _ = await pool.request("GET", f"/api/v1/incidents/INC-{rng.randint(1, n_incidents)}")
            return status == 200

        filters = [
            {"state": "in_progress", "priority": 2},
            {"state": "new"},
            {"team_id": 2, "state": "on_hold"},
            {"priority": 1, "type": "it_service"},
            {"assignee": 3, "state": "acknowledged"},
        ]

        async def page(i: int) -> bool:
            query = urlencode({**filters[i % len(filters)], "limit": 50})
            status, answer = await pool.request("GET", f"/api/v1/incidents?{query}")
            return status == 200 and answer.startswith(b'{"items":[{')  # a page with at least one incident

        if paging:  # last of all: its pages keep the in-process engine busy for a while after
            paged = creating(*targets["paging"])
            report(
                f"api.{db}.create_paging{suffix}", await drive(requests, concurrency, paged, warmup=WARMUP)
            )
            return
        report(
            f"api.{db}.create{suffix}",
            await drive(requests, concurrency, creating(*targets["quiet"]), warmup=WARMUP),
        )
        report(f"api.{db}.get{suffix}", await drive(requests, concurrency, get, warmup=WARMUP))
        report(f"api.{db}.list{suffix}", await drive(requests, concurrency, page, warmup=WARMUP))

        async def search(i: int) -> bool:  # text in title or description: a host, or nothing at all
            q = f"host-{rng.randint(1, 500)}" if i % 2 else f"no such text {i}"
            status, _ = await pool.request("GET", f"/api/v1/incidents?{urlencode({'q': q, 'limit': 50})}")
            return status == 200

        report(f"api.{db}.search{suffix}", await drive(requests, concurrency, search, warmup=WARMUP))
    finally:
        await pool.close()


def run_db(kind: str, args: argparse.Namespace) -> None:
    rng = random.Random(42)
    with fresh_database(kind) as url:
        tocsin_cli(url, "migrate")
        tocsin_cli(url, "demo")
        token = tocsin_cli(
            url, "token", "create", "--user", "admin@tocsin.example", "--name", "bench"
        ).strip()
        began = time.perf_counter()
        seed(url, args.incidents, rng)
        note(f"{kind}: seeded {args.incidents} incidents in {time.perf_counter() - began:.1f} s")
        targets = routes(url)
        with serve(url) as server:
            runs = [(args.concurrency, "", False)]
            runs += [(args.saturation, f"_c{args.saturation}", False)] if args.saturation else []
            runs += [(args.concurrency, "", True)]
            for clients, suffix, paging in runs:
                asyncio.run(
                    measure(
                        server.base_url,
                        token,
                        args.incidents,
                        args.requests,
                        clients,
                        kind,
                        rng,
                        suffix,
                        targets=targets,
                        paging=paging,
                    )
                )
            bench(f"api.{kind}.server_rss_mb", round(server.rss_mb(), 1), "MB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000, help="requests per operation")
    parser.add_argument("--concurrency", type=int, default=4, help="clients for the main figures")
    parser.add_argument("--saturation", type=int, default=16, help="clients for the saturation run (0: skip)")
    parser.add_argument("--db", default="sqlite,postgres")
    args = parser.parse_args()
    machine_speed()
    note(
        f"{args.incidents} incidents, {args.requests} requests per operation, {args.concurrency} clients "
        f"(saturation run: {args.saturation})"
    )
    for kind in args.db.split(","):
        if kind == "postgres" and not pg_available():
            note("PostgreSQL unreachable: skipping the postgres run")
            continue
        run_db(kind, args)
        machine_speed(f"machine.{kind}.python_loop_s_after")


if __name__ == "__main__":
    main()
