"""A real `tocsin serve` subprocess on a migrated database, for tests that go over the network."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tocsin(database_url: str, *args: str) -> str:
    """Run a `tocsin` command against the database; its stdout, or an error with its stderr."""
    env = {**os.environ, "TOCSIN_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "tocsin", *args], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"tocsin {' '.join(args)} failed: {done.stderr}")
    return done.stdout


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    base_url: str


@contextlib.contextmanager
def running_server(
    database_url: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[RunningServer]:
    """`tocsin serve` on a free port until the block ends (killed if it does not stop in 10 s)."""
    port = free_port()
    environment = {
        **os.environ,
        "TOCSIN_DATABASE_URL": database_url,
        "TOCSIN_DEMO": "1",
        "TOCSIN_LOG_LEVEL": "warning",
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tocsin", "serve", "--port", str(port), *args], env=environment
    )
    server = RunningServer(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.base_url}/readyz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tocsin serve did not become ready (exit code {process.poll()})")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
