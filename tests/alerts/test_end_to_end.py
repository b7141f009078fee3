"""Intake against a real `tocsin serve`: mail to its SMTP listener; no accepted alert lost to a kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.alerts.e2e import prepare_database
from tests.conftest import throwaway_pg
from tests.server import free_port, running_server
from tocsin.alerts.models import Alert, IntegrationKind
from tocsin.db import make_sync_engine

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, not shared with any other test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'e2e.db'}"
        return
    with throwaway_pg("tocsin_e2e") as url:
        yield url


def stored(url: str) -> tuple[dict[str, int], int]:
    """Alert rows per dedup key, and the number of incidents."""
    engine = make_sync_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(Alert.dedup_key, func.count()).group_by(Alert.dedup_key)).all()
        incidents = conn.execute(select(func.count(func.distinct(Alert.incident_id)))).scalar_one()
    engine.dispose()
    return {str(k): int(n) for k, n in rows}, int(incidents)


def mail(port: int, to: str, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "nagios@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("CRITICAL - 99% used")
    deadline = time.monotonic() + 20
    while True:  # `tocsin smtpd` may still be starting
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.send_message(message)
            return
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_mail_to_a_running_server_opens_an_alert(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mail.db'}"
    key = prepare_database(url, ["mail"], IntegrationKind.email)["mail"]
    port = free_port()
    with running_server(url, "--smtp-port", str(port)):
        mail(port, f"{key}+disk-web1@alerts.example", "PROBLEM: disk full on web1")
        found, incidents = stored(url)
    assert found == {"disk-web1": 1} and incidents == 1


def test_tocsin_smtpd_runs_the_mail_listener_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'smtpd.db'}"
    key = prepare_database(url, ["mail"], IntegrationKind.email)["mail"]
    port = free_port()
    env = {**os.environ, "TOCSIN_DATABASE_URL": url, "TOCSIN_LOG_LEVEL": "warning"}
    process = subprocess.Popen([sys.executable, "-m", "tocsin", "smtpd", "--port", str(port)], env=env)
    try:
        mail(port, f"{key}@alerts.example", "PROBLEM: load on web2")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    found, _ = stored(url)
    assert len(found) == 1


def webhook(fingerprint: str) -> bytes:
    alert = {
        "status": "firing",
        "labels": {"alertname": "CrashTest", "instance": fingerprint},
        "annotations": {"summary": f"crash test {fingerprint}"},
        "startsAt": "2024-03-01T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }
    return json.dumps({"version": "4", "status": "firing", "receiver": "tocsin", "alerts": [alert]}).encode()


async def fire(
    base_url: str, path: str, clients: int, stop: asyncio.Event, start: int
) -> tuple[set[str], int]:
    """Send single-alert webhooks, each twice (as Alertmanager's HA peers do), until `stop`; the fingerprints
    answered 2xx, and how many requests were sent."""
    accepted: set[str] = set()
    sent = 0
    counter = iter(range(start, start + 1_000_000))

    async def client() -> None:
        nonlocal sent
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            while not stop.is_set():
                fingerprint = f"{next(counter):016x}"
                for _ in range(2):
                    sent += 1
                    try:
                        r = await http.post(path, content=webhook(fingerprint))
                    except httpx.HTTPError:
                        await asyncio.sleep(0.01)
                        continue
                    if 200 <= r.status_code < 300:
                        accepted.add(fingerprint)

    await asyncio.gather(*(client() for _ in range(clients)))
    return accepted, sent


async def fire_then_kill(
    base_url: str, path: str, process_kill: object, seconds: float
) -> tuple[set[str], int]:
    stop = asyncio.Event()
    running = asyncio.ensure_future(fire(base_url, path, 8, stop, 0))
    await asyncio.sleep(seconds)
    assert callable(process_kill)
    process_kill()  # SIGKILL mid-run: requests in flight get no answer, or a broken connection
    await asyncio.sleep(0.3)
    stop.set()
    return await running


def test_every_alert_answered_2xx_survives_a_kill_9_and_ha_duplicates_make_no_duplicates(
    fresh_url: str,
) -> None:
    key = prepare_database(fresh_url, ["crash"])["crash"]
    path = f"/intake/alertmanager/{key}"
    with running_server(fresh_url) as server:
        accepted, sent = asyncio.run(
            fire_then_kill(server.base_url, path, lambda: server.process.send_signal(signal.SIGKILL), 2.0)
        )
        server.process.wait(timeout=10)
    assert accepted and sent > len(accepted)
    with running_server(fresh_url) as server:  # restarted: HA peers deliver some of the same alerts again
        replay = sorted(accepted)[:200]

        async def again() -> list[int]:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
                answers = await asyncio.gather(*(http.post(path, content=webhook(fp)) for fp in replay))
            return [a.status_code for a in answers]

        assert set(asyncio.run(again())) == {202}
        time.sleep(0.1)
    found, incidents = stored(fresh_url)
    print(f"kill -9: {len(accepted)} alerts accepted of {sent} requests; {len(found)} stored")
    lost = accepted - set(found)
    assert lost == set(), f"{len(lost)} of {len(accepted)} alerts answered 2xx are missing after kill -9"
    assert max(found.values()) == 1, "an alert delivered twice was stored twice"
    assert incidents == 1, "a storm of one alertname groups into one incident"
