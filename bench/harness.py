"""Benchmark plumbing: fresh databases, a real `tocsin serve` subprocess, concurrent clients, figures.

Each figure is printed as `BENCH <name> <value> <unit>` (STYLE.md rule 13).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

PG_ADMIN_URL = os.environ.get("TOCSIN_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def bench(name: str, value: float, unit: str) -> None:
    print(
        f"BENCH {name} {value:.1f} {unit}" if isinstance(value, float) else f"BENCH {name} {value} {unit}",
        flush=True,
    )


def note(text: str) -> None:
    print(f"# {text}", flush=True)


def machine_speed() -> None:
    """Print how long this machine takes for a fixed pure-Python loop, so figures from different
    machines (or a busy one) can be compared: about 1 s on a recent desktop core."""
    began = time.perf_counter()
    total = 0
    for i in range(20_000_000):
        total += i
    bench("machine.python_loop_s", round(time.perf_counter() - began, 2), "s")


@contextlib.contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """An empty SQLite file or a throwaway PostgreSQL database, removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    name = f"tocsin_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_available() -> bool:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def tocsin_cli(url: str, *args: str) -> str:
    env = {**os.environ, "TOCSIN_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, "-m", "tocsin", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"tocsin {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextlib.contextmanager
def serve(url: str, *extra_args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Run `tocsin serve` on a free port until the block ends."""
    port = free_port()
    environment = {
        **os.environ,
        "TOCSIN_DATABASE_URL": url,
        "TOCSIN_SECRET_KEY": "bench-" + "x" * 32,
        "TOCSIN_LOG_LEVEL": "warning",
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tocsin", "serve", "--port", str(port), *extra_args], env=environment
    )
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.base_url}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not become ready in 30 s")
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Run:
    latencies_ms: list[float]
    seconds: float
    errors: int

    @property
    def per_s(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")


async def drive(
    total: int, concurrency: int, request: Callable[[int], Awaitable[bool]], *, warmup: int = 0
) -> Run:
    """Call request(i) for i in range(total) from `concurrency` workers; time each call.

    `warmup` calls go first, untimed (i = total, total + 1, ...): the server's first calls of a kind
    compile statements and fill caches once, which is start-up cost, not the steady state measured.

    The client's own garbage collector would otherwise stop it for tens of milliseconds now and then
    (a full collection scans everything the process holds, seed data included), and those stops would
    be counted as the server's latency: what exists now is frozen out of later collections first."""
    warmup_errors = 0
    for i in range(total, total + warmup):
        warmup_errors += 0 if await request(i) else 1
    if warmup_errors:
        note(f"{warmup_errors} of {warmup} warm-up calls failed")
    gc.collect()
    gc.freeze()
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            start = time.perf_counter()
            ok = await request(i)
            latencies.append((time.perf_counter() - start) * 1000)
            errors += 0 if ok else 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(latencies, time.perf_counter() - began, errors)
