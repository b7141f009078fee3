"""Intake benchmark: Alertmanager webhooks against a real `tocsin serve`, then a count of what was stored.

For each database (a fresh SQLite file, a throwaway PostgreSQL database) the script builds the schema, creates
one service with three Alertmanager integrations, starts `tocsin serve` in a subprocess and drives it with
concurrent keep-alive connections from this process:

- `am_single`: webhooks of one alert each, every alert new (a storm of one alertname: one incident);
- `am_batch100`: webhooks of 100 new alerts each;
- `dedup`: the same alert over and over (pure de-duplication: one alert, its count going up).

It prints `BENCH ingest.<db>.<scenario>.<alerts_per_s|p50_ms|p99_ms|lost>`; `lost` counts alerts that were
answered 2xx but are missing from the database afterwards (for `dedup`: accepted repeats missing from the
alert's count), which must be 0. A context line per scenario gives the share of a core the server used and
its alerts per server CPU-second: on a shared machine the throughput follows the CPU the server gets, while
the per-CPU-second figure stays comparable between runs.

The client is deliberately cheap, because it shares the machine's cores with the server (`harness.Connection`:
raw asyncio streams, one HTTP/1.1 keep-alive connection per simulated sender, request bytes prepared before
the clock starts, the response read by Content-Length with no parsing beyond the status line). It costs a few
tens of microseconds per request, a fraction of what an httpx client would take from the server.

    .venv/bin/python bench/ingest.py [--db sqlite,postgres] [--scale 1.0] [--only am_single,dedup] [--profile]
        [--concurrency 64] [--batch-concurrency 8]

Connections: 64 for single-alert webhooks, 8 for 100-alert ones. A closed loop's mean latency is what is in
flight divided by the rate, so 16 connections of 100 alerts at 10,000 alerts/s would average 160 ms.

`--profile` records the server with py-spy during each scenario when py-spy is installed in the venv
(`.venv/bin/pip install py-spy`): folded stacks under /tmp, which flamegraph.pl or speedscope read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness import Connection, Run, bench, fresh_database, machine_speed, note, pg_available, serve
from sqlalchemy import func, select

from tocsin.alerts.models import Alert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.alerts.e2e import prepare_database

ALERTNAMES = {"am_single": "BenchSingle", "am_batch100": "BenchBatch", "dedup": "BenchDedup"}


# --- payloads -----------------------------------------------------------------------------------------


def alert(alertname: str, fingerprint: str, index: int) -> dict[str, object]:
    return {
        "status": "firing",
        "labels": {
            "alertname": alertname,
            "instance": f"server-{index}.example.org",
            "job": "bench",
            "severity": "critical",
        },
        "annotations": {"summary": f"{alertname} on server-{index}", "description": "benchmark alert"},
        "startsAt": "2024-03-01T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.org:9090/graph",
        "fingerprint": fingerprint,
    }


def webhook(alerts: list[dict[str, object]]) -> bytes:
    first = alerts[0]["labels"]
    assert isinstance(first, dict)
    return json.dumps(
        {
            "version": "4",
            "groupKey": "{}:{alertname=" + json.dumps(first["alertname"]) + "}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "tocsin",
            "groupLabels": {"alertname": first["alertname"]},
            "commonLabels": {"alertname": first["alertname"], "job": "bench"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example.org:9093",
            "alerts": alerts,
        },
        separators=(",", ":"),
    ).encode()


@dataclass
class Scenario:
    name: str
    requests: int
    alerts_per_request: int
    concurrency: int
    body: Callable[[int], bytes]  # request number -> body
    fingerprints: Callable[[int], list[str]]  # request number -> the fingerprints it carries
    key: str = ""


def scenarios(scale: float, concurrency: int, batch_concurrency: int) -> list[Scenario]:
    def single(i: int) -> bytes:
        return webhook([alert(ALERTNAMES["am_single"], f"a{i:015x}", i)])

    def batch(i: int) -> bytes:
        return webhook([alert(ALERTNAMES["am_batch100"], f"b{i * 100 + j:015x}", j) for j in range(100)])

    repeated = webhook([alert(ALERTNAMES["dedup"], "d" + "0" * 15, 0)])
    return [
        Scenario("am_single", int(20_000 * scale), 1, concurrency, single, lambda i: [f"a{i:015x}"]),
        Scenario(
            "am_batch100",
            int(2_000 * scale),
            100,
            batch_concurrency,
            batch,
            lambda i: [f"b{i * 100 + j:015x}" for j in range(100)],
        ),
        Scenario(
            "dedup", int(20_000 * scale), 1, concurrency, lambda i: repeated, lambda i: ["d" + "0" * 15]
        ),
    ]


@dataclass
class Outcome:
    run: Run
    accepted: list[int] = field(default_factory=list)  # request numbers answered 2xx


async def fire(base_url: str, scenario: Scenario, bodies: list[bytes], offset: int = 0) -> Outcome:
    """Send every body once, from `scenario.concurrency` connections; time each request."""
    path = f"/intake/alertmanager/{scenario.key}"
    latencies: list[float] = []
    accepted: list[int] = []
    errors = 0
    counter = iter(range(len(bodies)))

    async def sender() -> None:
        nonlocal errors
        connection = Connection(base_url)
        try:
            for i in counter:
                start = time.perf_counter()
                status = await connection.post(path, bodies[i])
                latencies.append((time.perf_counter() - start) * 1000)
                if 200 <= status < 300:
                    accepted.append(offset + i)
                else:
                    errors += 1
        finally:
            await connection.close()

    began = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(scenario.concurrency)))
    return Outcome(Run(latencies, time.perf_counter() - began, errors), accepted)


# --- checking what was stored -------------------------------------------------------------------------


def stored(url: str, key_prefix: str) -> tuple[set[str], int, int]:
    """(fingerprints stored, their total count, distinct incidents) for one integration."""
    from tocsin.alerts.models import Integration
    from tocsin.db import make_sync_engine

    engine = make_sync_engine(url)
    with engine.connect() as conn:
        integration = conn.execute(
            select(Integration.id).where(Integration.key_prefix == key_prefix)
        ).scalar_one()
        keys = set(conn.execute(select(Alert.dedup_key).where(Alert.integration_id == integration)).scalars())
        total = conn.execute(
            select(func.coalesce(func.sum(Alert.count), 0)).where(Alert.integration_id == integration)
        ).scalar_one()
        incidents = conn.execute(
            select(func.count(func.distinct(Alert.incident_id))).where(Alert.integration_id == integration)
        ).scalar_one()
    engine.dispose()
    return keys, int(total), int(incidents)


@contextlib.contextmanager
def profiled(pid: int, name: str, enabled: bool) -> Iterator[None]:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) if enabled else None
    if spy is None:
        yield
        return
    out = f"/tmp/tocsin-ingest-{name}.folded"
    process = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--format", "raw", "--output", out, "--rate", "250"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.send_signal(2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        note(f"py-spy profile of the server: {out}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_scenario(db: str, url: str, base_url: str, pid: int, scenario: Scenario, profile: bool) -> None:
    bodies = [scenario.body(i) for i in range(scenario.requests)]
    warm = [scenario.body(scenario.requests + i) for i in range(min(200, scenario.requests // 10))]
    asyncio.run(fire(base_url, scenario, warm, offset=scenario.requests))
    with profiled(pid, f"{db}-{scenario.name}", profile):
        server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
        outcome = asyncio.run(fire(base_url, scenario, bodies))
        server_cpu, client_cpu = cpu_seconds(pid) - server_cpu, time.process_time() - client_cpu
    run = outcome.run
    accepted_alerts = len(outcome.accepted) * scenario.alerts_per_request
    keys, total, incidents = stored(url, scenario.key[:8])
    if scenario.name == "dedup":
        sent = len(outcome.accepted) + sum(1 for _ in warm)  # warm-up repeats count too
        lost = max(0, sent - total)
    else:
        wanted = {fp for i in outcome.accepted for fp in scenario.fingerprints(i)}
        lost = len(wanted - keys)
    prefix = f"ingest.{db}.{scenario.name}"
    note(
        f"{prefix}: {scenario.requests} webhooks x {scenario.alerts_per_request} alert(s) from "
        f"{scenario.concurrency} connections in {run.seconds:.2f} s; {run.errors} refused; "
        f"{len(keys)} alert rows grouped into {incidents} incident(s); CPU used: server "
        f"{server_cpu / run.seconds:.0%} of a core, this client {client_cpu / run.seconds:.0%}; "
        f"{accepted_alerts / max(server_cpu, 1e-9):.0f} alerts per server CPU-second (load average "
        f"{os.getloadavg()[0]:.1f})"
    )
    bench(f"{prefix}.alerts_per_s", round(accepted_alerts / run.seconds, 1), "alerts/s")
    bench(f"{prefix}.p50_ms", round(run.p50, 2), "ms")
    bench(f"{prefix}.p99_ms", round(run.pct(99), 2), "ms")
    bench(f"{prefix}.lost", lost, "alerts")


def run_db(db: str, args: argparse.Namespace) -> None:
    with fresh_database(db) as url:
        plan = [
            s
            for s in scenarios(args.scale, args.concurrency, args.batch_concurrency)
            if not args.only or s.name in args.only
        ]
        keys = prepare_database(url, [s.name for s in plan])
        for scenario in plan:
            scenario.key = keys[scenario.name]
        with serve(url) as server:
            for scenario in plan:
                run_scenario(db, url, server.base_url, server.process.pid, scenario, args.profile)
            bench(f"ingest.{db}.server_rss_mb", round(server.rss_mb(), 1), "MB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the number of requests")
    parser.add_argument("--concurrency", type=int, default=64, help="connections for single-alert webhooks")
    parser.add_argument(
        "--batch-concurrency",
        type=int,
        default=8,
        help="connections for 100-alert webhooks: 8 x 100 alerts in flight at 10,000 alerts/s already take "
        "80 ms on average (Little's law), so more would make a p99 under 100 ms impossible at that rate",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the server (if installed)")
    parser.add_argument(
        "--only", type=lambda v: v.split(","), default=None, help="scenarios, comma-separated"
    )
    args = parser.parse_args()
    machine_speed()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    for db in args.db.split(","):
        if db == "postgres" and not pg_available():
            note("PostgreSQL unreachable: skipping the postgres run")
            continue
        run_db(db, args)
        machine_speed(f"machine.{db}.python_loop_s_after")


if __name__ == "__main__":
    main()
