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
from urllib.parse import urlsplit

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


def machine_speed(name: str = "machine.python_loop_s") -> None:
    """Print how long this machine takes for a fixed pure-Python loop, so figures from different
    machines (or a busy one) can be compared: about 1 s on a recent desktop core. The benchmarks print it
    again after each database's run: a shared (virtual) machine can change speed in the middle of a run,
    and figures taken while it ran at half speed are not comparable with the others."""
    began = time.perf_counter()
    total = 0
    for i in range(20_000_000):
        total += i
    bench(name, round(time.perf_counter() - began, 2), "s")


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


# --- a minimal keep-alive HTTP/1.1 client -------------------------------------------------------------


TIMEOUT_S = 60  # for one response: a request that takes longer counts as failed


class Connection:
    """One keep-alive HTTP/1.1 connection, as cheap a client as this process can be.

    Client and server share the machine's cores, so every millisecond the client spends is one the server
    does not get, and counts in the latency measured. httpx took about 1 ms of CPU per request, a third of
    what the server spends on a create: this client writes the request bytes in one go and reads the answer
    by Content-Length, with no parsing beyond the status line."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._headers = f"Host: {self.host}\r\n{extra}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
        """(status, body) of one request; status 0 when the connection failed (it reopens next time).

        A connection the server has closed meanwhile (uvicorn closes one idle for 5 s) is reopened before
        the request is sent, as httpx does, rather than failing it. Responses must carry Content-Length
        (every Tocsin API response does); a chunked one is refused rather than misread."""
        if self.writer is None or self.reader is None or self.reader.at_eof() or self.writer.is_closing():
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {target} HTTP/1.1\r\n{self._headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write((head + "\r\n").encode() + (body or b""))
        try:
            async with asyncio.timeout(TIMEOUT_S):
                status_and_headers = await self.reader.readuntil(b"\r\n\r\n")
                lines = status_and_headers.split(b"\r\n")
                length, closing = 0, False
                for line in lines[1:]:
                    name = line[:18].lower()
                    if name.startswith(b"content-length:"):
                        length = int(line[15:].strip())
                    elif name.startswith(b"connection:") and b"close" in line.lower():
                        closing = True
                    elif name.startswith(b"transfer-encoding:"):
                        raise RuntimeError(f"{method} {target}: chunked responses are not supported")
                answer = await self.reader.readexactly(length) if length and method != "HEAD" else b""
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            await self.close()
            return 0, b""
        if closing:
            await self.close()
        return int(lines[0].split()[1]), answer

    async def post(self, target: str, body: bytes) -> int:
        return (await self.request("POST", target, body))[0]

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None


class Pool:
    """`size` connections shared by as many concurrent callers (`drive`'s workers): each call takes a free
    one for the length of its request."""

    def __init__(self, base_url: str, size: int, headers: dict[str, str] | None = None) -> None:
        self._free = [Connection(base_url, headers) for _ in range(size)]

    async def request(self, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
        connection = self._free.pop()
        try:
            return await connection.request(method, target, body)
        finally:
            self._free.append(connection)

    async def close(self) -> None:
        for connection in self._free:
            await connection.close()


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
