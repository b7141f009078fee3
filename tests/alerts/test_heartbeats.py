"""Heartbeats on the timer engine: the deadline timer follows check-ins, a missed one opens an incident."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import time_machine

from tests.alerts.conftest import Make
from tests.alerts.flow import alerts, incident, incident_list
from tests.conftest import People
from tocsin.alerts import timers
from tocsin.alerts.heartbeat import HEARTBEAT_KEY, HEARTBEAT_TIMER
from tocsin.alerts.models import AlertStatus
from tocsin.config import Settings
from tocsin.db import Database, utcnow
from tocsin.engine import service as engine
from tocsin.engine.handlers import EngineContext
from tocsin.engine.models import Timer
from tocsin.engine.worker import Worker
from tocsin.incidents.models import IncidentState

pytestmark = pytest.mark.anyio
CONFIG = {"interval_seconds": 300, "grace_seconds": 60}


async def heartbeat_timers(db: Database) -> list[Timer]:
    async with db.read() as s:
        return await engine.pending(session=s, kind=HEARTBEAT_TIMER)


async def run_due(db: Database, settings: Settings, at: datetime) -> int:
    """Move the clock to `at` and let a worker fire what is due then."""
    worker = Worker(EngineContext(db=db, settings=settings), timers.HANDLERS, listen=False)
    with time_machine.travel(at, tick=False):
        due = await worker.claim_due(at)
        for fired in due:
            await worker.fire(fired)
    return len(due)


async def test_creating_a_heartbeat_sets_its_deadline_timer(make_integration: Make, db: Database) -> None:
    made = await make_integration("heartbeat", CONFIG)
    [timer] = await heartbeat_timers(db)
    created = datetime.fromisoformat(made["created_at"])
    assert (timer.subject, timer.due_at) == (str(made["id"]), created + timedelta(seconds=360))


async def test_a_missed_check_in_opens_an_alert_and_an_incident_and_the_next_check_in_resolves_them(
    people: People, make_integration: Make, db: Database, settings: Settings
) -> None:
    made = await make_integration("heartbeat", CONFIG, name="nightly backup")
    [timer] = await heartbeat_timers(db)
    assert await run_due(db, settings, timer.due_at - timedelta(seconds=1)) == 0
    assert await run_due(db, settings, timer.due_at + timedelta(seconds=1)) == 1
    [alert] = await alerts(db)
    assert (alert.dedup_key, alert.status, alert.labels["alertname"]) == (
        HEARTBEAT_KEY,
        AlertStatus.triggered,
        "HeartbeatMissed",
    )
    assert alert.summary.startswith("nightly backup: missed its check-in")
    [opened] = await incident_list(db)
    assert alert.incident_id == opened.id and await heartbeat_timers(db) == []

    back = timer.due_at + timedelta(minutes=3)
    with time_machine.travel(back, tick=False):
        assert (await people.anonymous.get(f"/intake/heartbeat/{made['key']}")).status_code == 200
    [alert] = await alerts(db)
    assert alert.status == AlertStatus.resolved
    assert (await incident(db, opened.id)).state == IncidentState.resolved
    [moved] = await heartbeat_timers(db)
    assert moved.due_at == back + timedelta(seconds=360)


async def test_check_ins_on_time_keep_moving_the_deadline_and_nothing_fires(
    people: People, make_integration: Make, db: Database, settings: Settings
) -> None:
    made = await make_integration("heartbeat", CONFIG)
    start = utcnow()
    for minutes in (4, 8, 12):
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            assert (await people.anonymous.post(f"/intake/heartbeat/{made['key']}")).status_code == 200
        assert await run_due(db, settings, start + timedelta(minutes=minutes, seconds=30)) == 0
    [timer] = await heartbeat_timers(db)
    assert timer.due_at == start + timedelta(minutes=12, seconds=360)
    assert await alerts(db) == []


async def test_deactivating_a_heartbeat_removes_its_timer_and_reactivating_restores_it(
    people: People, make_integration: Make, db: Database
) -> None:
    made = await make_integration("heartbeat", CONFIG)
    url = f"/api/v1/integrations/{made['id']}"
    assert (await people.admin.client.patch(url, json={"active": False})).status_code == 200
    assert await heartbeat_timers(db) == []
    assert (await people.admin.client.patch(url, json={"active": True})).status_code == 200
    assert len(await heartbeat_timers(db)) == 1


async def test_a_timer_that_fires_early_waits_for_the_deadline(
    make_integration: Make, db: Database, settings: Settings
) -> None:
    await make_integration("heartbeat", CONFIG)
    [timer] = await heartbeat_timers(db)
    async with db.write() as s:  # as if the timer were left at an old deadline
        await engine.schedule(
            session=s, kind=HEARTBEAT_TIMER, subject=timer.subject, due_at=timer.due_at - timedelta(minutes=2)
        )
    assert await run_due(db, settings, timer.due_at - timedelta(minutes=1)) == 1
    [again] = await heartbeat_timers(db)
    assert again.due_at == timer.due_at and await alerts(db) == []
