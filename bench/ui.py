"""Web UI benchmark: server-rendered queue and incident pages at N incidents, over real HTTP with a session.

Seeds N incidents (default 100,000, with bench/api.py's seed()) into a fresh SQLite database and a throwaway
PostgreSQL database, serves each with `tocsin serve` in a subprocess, logs in through the login form like a
browser (cookie + CSRF), and fetches pages from concurrent clients. Prints
`BENCH ui.<db>.<queue|incident>.<p50_ms|p99_ms|per_s>`: the queue is a filtered first page or a later page
(keyset cursor), the incident page a random incident with its timeline, SLA clocks and action forms.

    .venv/bin/python bench/ui.py [--incidents 100000] [--requests 1000] [--concurrency 1] [--db sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time

import httpx
from api import seed
from harness import Run, bench, drive, fresh_database, machine_speed, note, pg_available, serve, tocsin_cli

QUEUES = [
    {},  # the default view: open incidents, newest first
    {"f": "1", "state": ["in_progress", "new"], "priority": "2"},
    {"f": "1", "state": "on_hold", "team": "2"},
    {"f": "1", "priority": "1", "type": "it_service", "sort": "priority"},
    {"f": "1", "state": "closed", "sort": "updated_at"},
]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(client: httpx.AsyncClient) -> None:
    page = await client.get("/login")
    token = _CSRF.search(page.text)
    assert token, "no CSRF field on the login page"
    r = await client.post(
        "/login",
        data={"csrf_token": token.group(1), "email": "admin@tocsin.example", "password": "tocsin-demo-admin"},
    )
    if r.status_code != 303:
        raise RuntimeError(f"login failed: {r.status_code} {r.text[:200]}")


def report(prefix: str, run: Run) -> None:
    bench(f"{prefix}.p50_ms", round(run.p50, 2), "ms")
    bench(f"{prefix}.p99_ms", round(run.pct(99), 2), "ms")
    bench(f"{prefix}.per_s", round(run.per_s, 1), "req/s")
    if run.errors:
        note(f"{prefix}: {run.errors} requests failed")


async def measure(
    base_url: str, n: int, requests: int, concurrency: int, db: str, rng: random.Random
) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await sign_in(client)
        first = await client.get("/incidents", params={"f": "1", "state": "closed"})
        later = re.search(r'href="\?([^"]*cursor=[^"]*)" role="button" [^>]*rel="next"', first.text)
        cursor_page = httpx.QueryParams(later.group(1).replace("&amp;", "&")) if later else None
        for _ in range(30):  # warm-up: connections, caches, template compilation
            await client.get("/incidents")
            await client.get(f"/incidents/INC-{rng.randint(1, n)}")

        async def queue(i: int) -> bool:
            params = cursor_page if cursor_page is not None and i % 6 == 5 else QUEUES[i % len(QUEUES)]
            r = await client.get("/incidents", params=params)
            return r.status_code == 200 and "queue-rows" in r.text

        async def incident(i: int) -> bool:
            r = await client.get(f"/incidents/INC-{rng.randint(1, n)}")
            return r.status_code == 200 and 'id="timeline"' in r.text

        report(f"ui.{db}.queue", await drive(requests, concurrency, queue))
        report(f"ui.{db}.incident", await drive(requests, concurrency, incident))


def run_db(kind: str, args: argparse.Namespace) -> None:
    rng = random.Random(7)
    with fresh_database(kind) as url:
        tocsin_cli(url, "migrate")
        tocsin_cli(url, "demo")
        began = time.perf_counter()
        seed(url, args.incidents, rng)
        note(f"{kind}: seeded {args.incidents} incidents in {time.perf_counter() - began:.1f} s")
        with serve(url, env={"TOCSIN_DEMO": "1"}) as server:
            asyncio.run(measure(server.base_url, args.incidents, args.requests, args.concurrency, kind, rng))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=1000, help="requests per page kind")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="concurrent clients (1: the figures are server time)"
    )
    parser.add_argument("--db", default="sqlite,postgres")
    args = parser.parse_args()
    machine_speed()
    note(f"{args.incidents} incidents, {args.requests} requests per page, {args.concurrency} clients")
    for kind in args.db.split(","):
        if kind == "postgres" and not pg_available():
            note("PostgreSQL unreachable: skipping the postgres run")
            continue
        run_db(kind, args)


if __name__ == "__main__":
    main()
