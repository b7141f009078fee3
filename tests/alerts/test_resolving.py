"""Resolves and flapping: an alert that cycles too often stays open, quietly, until it settles."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import select

from tests.alerts.flow import (
    T0,
    alert_entries,
    alerts,
    am,
    incident,
    incident_list,
    integration,
    resolved,
    send,
)
from tocsin.alerts import resolving, timers
from tocsin.alerts.flapping import MAX_WINDOW_MINUTES
from tocsin.alerts.models import AlertFlap, AlertStatus
from tocsin.config import Settings
from tocsin.db import Database
from tocsin.engine import service as engine
from tocsin.engine.handlers import EngineContext
from tocsin.engine.models import Timer
from tocsin.engine.worker import Worker
from tocsin.incidents.models import IncidentState

pytestmark = pytest.mark.anyio
MIN = timedelta(minutes=1)


async def cycle(db: Database, iid: int, key: str, at: timedelta) -> None:
    await send(db, iid, am(key), now=T0 + at)
    await send(db, iid, resolved(key), now=T0 + at + MIN)


async def test_the_third_cycle_within_the_window_holds_the_resolve_and_marks_the_alert_flapping(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id)
    await cycle(db, iid, "k", 0 * MIN)
    await cycle(db, iid, "k", 5 * MIN)
    await send(db, iid, am("k"), now=T0 + 10 * MIN)
    held = await send(db, iid, resolved("k"), now=T0 + 11 * MIN)
    *old, last = await alerts(db)
    assert [a.status for a in old] == [AlertStatus.resolved] * 2
    assert held.flapping == [last.id] and held.resolved == []
    assert (last.status, last.flapping, last.held_resolve_at) == (AlertStatus.triggered, True, T0 + 11 * MIN)
    [flap_timer] = await _timers(db, resolving.TIMER)
    assert (flap_timer.subject, flap_timer.due_at) == (str(last.id), T0 + 41 * MIN)
    texts = [e.text for i in await incident_list(db) for e in await alert_entries(db, i.id)]
    assert texts[-1] == 'Alert "DiskFull on k" flapping (resolve held until it stays quiet)'


async def test_a_flapping_alert_fires_and_resolves_without_new_alerts_incidents_or_entries(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id, config={"flap_cycles": 1})
    await send(db, iid, am("k"))
    await send(db, iid, resolved("k"), now=T0 + MIN)
    [opened] = await incident_list(db)
    entries = len(await alert_entries(db, opened.id))
    for minute in range(2, 12, 2):
        fired = await send(db, iid, am("k"), now=T0 + minute * MIN)
        await send(db, iid, resolved("k"), now=T0 + (minute + 1) * MIN)
        assert fired.opened == []
    [alert] = await alerts(db)
    assert (alert.count, alert.flapping, alert.status) == (6, True, AlertStatus.triggered)
    assert len(await alert_entries(db, opened.id)) == entries
    assert (await incident(db, opened.id)).state == IncidentState.new


async def test_once_quiet_for_a_window_the_flapping_alert_resolves_and_so_does_its_incident(
    db: Database, settings: Settings, service_id: int
) -> None:
    iid = await integration(db, service_id, config={"flap_cycles": 1, "flap_window_minutes": 10})
    await send(db, iid, am("k"))
    await send(db, iid, resolved("k"), now=T0 + MIN)
    worker = Worker(EngineContext(db=db, settings=settings), timers.HANDLERS, listen=False)
    with time_machine.travel(T0 + 5 * MIN, tick=False):
        assert await worker.claim_due(T0 + 5 * MIN) == []
    with time_machine.travel(T0 + 11 * MIN, tick=False):
        [fired] = await worker.claim_due(T0 + 11 * MIN)
        await worker.fire(fired)
    [alert] = await alerts(db)
    assert (alert.status, alert.resolved_at, alert.held_resolve_at) == (
        AlertStatus.resolved,
        T0 + 11 * MIN,
        None,
    )
    [opened] = await incident_list(db)
    assert (await incident(db, opened.id)).state == IncidentState.resolved


async def test_a_trigger_after_a_held_resolve_keeps_the_alert_open_when_the_timer_fires(
    db: Database, settings: Settings, service_id: int
) -> None:
    iid = await integration(db, service_id, config={"flap_cycles": 1, "flap_window_minutes": 10})
    await send(db, iid, am("k"))
    await send(db, iid, resolved("k"), now=T0 + MIN)
    await send(db, iid, am("k"), now=T0 + 2 * MIN)
    worker = Worker(EngineContext(db=db, settings=settings), timers.HANDLERS, listen=False)
    with time_machine.travel(T0 + 12 * MIN, tick=False):
        [fired] = await worker.claim_due(T0 + 12 * MIN)
        await worker.fire(fired)
    [alert] = await alerts(db)
    assert (alert.status, alert.flapping, alert.held_resolve_at) == (AlertStatus.triggered, True, None)
    assert await _timers(db, resolving.TIMER) == []


async def test_flap_detection_can_be_turned_off_per_integration(db: Database, service_id: int) -> None:
    iid = await integration(db, service_id, config={"flap_cycles": 0})
    for minute in range(0, 20, 2):
        await cycle(db, iid, "k", minute * MIN)
    assert not any(a.flapping for a in await alerts(db)) and len(await alerts(db)) == 10


async def _timers(db: Database, kind: str) -> list[Timer]:
    async with db.read() as s:
        return await engine.pending(session=s, kind=kind)


async def _memory(db: Database) -> set[str]:
    async with db.read() as s:
        return set(await s.scalars(select(AlertFlap.dedup_key)))


async def test_resolve_times_no_flapping_window_reaches_are_forgotten_daily(
    db: Database, settings: Settings, service_id: int
) -> None:
    iid = await integration(db, service_id)
    await cycle(db, iid, "old", 0 * MIN)
    [prune] = await _timers(db, resolving.PRUNE_TIMER)
    assert prune.due_at == T0 + MIN + resolving.PRUNE_EVERY
    week = timedelta(minutes=MAX_WINDOW_MINUTES)
    await cycle(db, iid, "recent", week)  # a week later: this process makes sure of the timer again
    [still] = await _timers(db, resolving.PRUNE_TIMER)
    assert still.due_at == prune.due_at  # ensured, never postponed by new activity
    assert await _memory(db) == {"old", "recent"}
    worker = Worker(EngineContext(db=db, settings=settings), timers.HANDLERS, listen=False)
    at = T0 + week + 2 * MIN
    with time_machine.travel(at, tick=False):
        [fired] = [f for f in await worker.claim_due(at) if f.kind == resolving.PRUNE_TIMER]
        await worker.fire(fired)
    assert await _memory(db) == {"recent"}  # "old" resolved a week and a minute before: no window reaches it
    assert await _timers(db, resolving.PRUNE_TIMER) == []
    await cycle(db, iid, "recent", week + 120 * MIN)  # this process looks again after an hour
    assert [t.due_at for t in await _timers(db, resolving.PRUNE_TIMER)] == [
        T0 + week + 121 * MIN + resolving.PRUNE_EVERY
    ]


async def test_pruning_works_through_a_large_memory_a_batch_at_a_time(db: Database, service_id: int) -> None:
    iid = await integration(db, service_id)
    async with db.write() as s:
        s.add_all(  # oldest first, as kept: only the newest counts
            AlertFlap(
                integration_id=iid,
                dedup_key=f"k{i}",
                resolved_times=[(T0 - 60 * MIN).isoformat(), (T0 + i * MIN).isoformat()],
            )
            for i in range(25)
        )
    later = T0 + timedelta(minutes=MAX_WINDOW_MINUTES) + 20 * MIN  # keys k0..k19 are older than a week
    deleted = []
    while True:
        async with db.write() as s:
            deleted.append(await resolving.prune(s, later, limit=8))
        if deleted[-1] < 8:
            break
    assert deleted == [8, 8, 4]
    assert await _memory(db) == {f"k{i}" for i in range(20, 25)}
