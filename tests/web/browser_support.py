"""Browser-test plumbing: Debian's Chromium (installed with apt-get when missing), and a real `tocsin serve`
in a subprocess on a fresh migrated SQLite database with the demo data.

Playwright's sync API refuses to run inside an event loop, so browser tests are plain synchronous tests and
the server runs in its own process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
ADMIN = ("admin@tocsin.example", "tocsin-demo-admin")
REPORTER = ("rory@tocsin.example", "tocsin-demo-user")
RESPONDER = ("raj@tocsin.example", "tocsin-demo-user")


def ensure_chromium() -> Path:
    """Debian's Chromium, installed with apt-get when it is missing (never `playwright install`)."""
    if CHROMIUM.exists():
        return CHROMIUM
    problem = "not root, so apt-get cannot install it"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        steps = [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]]
        for cmd in steps:
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=900)
            if done.returncode != 0:
                problem = f"`{' '.join(cmd)}` failed: {done.stderr.strip()[-500:]}"
                break
        else:
            if CHROMIUM.exists():
                return CHROMIUM
            problem = "apt-get finished but /usr/bin/chromium is still missing"
    pytest.fail(
        f"the browser tests need Debian's Chromium at {CHROMIUM} ({problem}); run `apt-get install chromium`"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tocsin", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.fail(f"`tocsin {' '.join(args)}` failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")


@dataclass(frozen=True)
class Server:
    base_url: str
    database_url: str


@contextlib.contextmanager
def demo_server(workdir: Path) -> Iterator[Server]:
    """`tocsin serve` on a free port over a fresh migrated SQLite database holding the demo data."""
    url = f"sqlite:///{workdir / 'tocsin.db'}"
    port = _free_port()
    env = {
        **os.environ,
        "TOCSIN_DATABASE_URL": url,
        "TOCSIN_DEMO": "1",
        "TOCSIN_LOG_LEVEL": "warning",
        "TOCSIN_BASE_URL": f"http://127.0.0.1:{port}",
    }
    _cli(env, "migrate")
    _cli(env, "demo")
    log = (workdir / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tocsin", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"tocsin serve exited: {(workdir / 'server.log').read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("tocsin serve did not become ready within 30 s")
        yield Server(base, url)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
