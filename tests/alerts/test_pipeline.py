"""The intake writer's pipeline on PostgreSQL: a batch starts while the one ahead groups and commits, reads
what that one had not committed yet, and must still end as if it had waited (tocsin.alerts.writer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from tests.alerts.flow import T0, alerts, am, incident, incident_list, integration, resolved, send
from tocsin.alerts import grouping, service, writer
from tocsin.alerts.ingest import Delivery, Turn, ingest_many
from tocsin.alerts.writer import IntakeWriter
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database
from tocsin.incidents.models import IncidentState

pytestmark = pytest.mark.anyio


async def pg_integration(db: Database, service_id: int) -> int:
    """An Alertmanager integration on PostgreSQL; the test is skipped on SQLite."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite has one writer: its intake batches never overlap")
    return await integration(db, service_id)


class Behind(Turn):
    """The turn of a batch behind another: it settles only once `ahead` is set."""

    def __init__(self) -> None:
        self.ahead = asyncio.Event()

    async def settle(self, session: AsyncSession) -> None:
        await self.ahead.wait()


async def behind_a_closing_batch(
    db: Database, monkeypatch: pytest.MonkeyPatch, ahead: Any, then: Any
) -> None:
    """Run the deliveries `ahead` up to their commit, start `then` (which reads before that commit), let
    `ahead` commit, and let `then` finish."""
    prepared = asyncio.Event()
    real_prepare = grouping.prepare

    async def prepare(*args: Any, **kwargs: Any) -> grouping.Prepared:
        found = await real_prepare(*args, **kwargs)
        prepared.set()
        return found

    monkeypatch.setattr(grouping, "prepare", prepare)
    turn = Behind()
    now = T0 + timedelta(minutes=5)

    async def behind() -> None:
        async with db.write() as s:
            await ingest_many(session=s, deliveries=[then], now=now, turn=turn)

    async with db.write() as s:
        await ingest_many(session=s, deliveries=[ahead], now=now)
        task = asyncio.create_task(behind())
        await asyncio.wait_for(prepared.wait(), 10)  # it read the incident before this commit
    turn.ahead.set()
    await asyncio.wait_for(task, 10)


async def test_an_alert_read_into_an_incident_the_batch_ahead_resolved_opens_a_new_one(
    db: Database, service_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = await pg_integration(db, service_id)
    await send(db, iid, am("a"))
    [first] = await incident_list(db)
    await behind_a_closing_batch(db, monkeypatch, Delivery(iid, [resolved("a")]), Delivery(iid, [am("b")]))
    assert (await incident(db, first.id)).state == IncidentState.resolved  # auto-resolved by the batch ahead
    [_, second] = await incident_list(db)
    assert second.state == IncidentState.new
    assert {a.dedup_key: a.incident_id for a in await alerts(db)} == {"a": first.id, "b": second.id}


async def test_an_alert_joining_an_incident_the_batch_ahead_mitigated_makes_it_unmitigated(
    db: Database, service_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = await pg_integration(db, service_id)
    async with db.write() as s:
        await service.put_alert_settings(session=s, actor=SYSTEM, service_id=service_id, auto_resolve=False)
    await send(db, iid, am("a"))
    [only] = await incident_list(db)
    await behind_a_closing_batch(db, monkeypatch, Delivery(iid, [resolved("a")]), Delivery(iid, [am("b")]))
    again = await incident(db, only.id)
    assert (again.state, again.mitigated_at) == (IncidentState.new, None)
    assert {a.incident_id for a in await alerts(db)} == {only.id}


class Contains(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and str(self) in other

    __hash__ = str.__hash__


Apply = Callable[..., Awaitable[None]]


def watch(intake: IntakeWriter, wrap: Callable[[Apply], Apply]) -> None:
    intake._apply = wrap(intake._apply)  # type: ignore[method-assign]


async def test_batches_overlap_and_commit_in_the_order_they_formed(db: Database, service_id: int) -> None:
    iid = await pg_integration(db, service_id)
    intake = IntakeWriter(db, max_events=20)
    started: list[int] = []
    ended: list[int] = []
    open_now = 0
    most = 0

    def wrap(apply: Apply) -> Apply:
        async def counted(batch: list[Any], **kwargs: Any) -> None:
            nonlocal open_now, most
            number = len(started)
            started.append(number)
            open_now += 1
            most = max(most, open_now)
            try:
                await apply(batch, **kwargs)
            finally:
                open_now -= 1
                ended.append(number)

        return counted

    watch(intake, wrap)
    intake.start()
    try:
        await asyncio.gather(
            *(intake.submit(Delivery(iid, [am(f"k{i}-{j}") for j in range(5)])) for i in range(60))
        )
    finally:
        await intake.stop()
    assert len(started) >= 15  # 300 alerts in batches of at most 20
    assert most == 2  # the next batch starts while one commits, never more
    assert ended == sorted(ended)
    stored = await alerts(db)
    assert len(stored) == 300
    [storm] = await incident_list(db)
    assert {a.incident_id for a in stored} == {storm.id}


async def test_a_deadlock_between_the_batch_ahead_and_the_one_behind_is_broken_and_both_are_stored(
    db: Database, service_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = await pg_integration(db, service_id)
    await send(db, iid, am("b"))
    behind_wrote = asyncio.Event()
    real_written = writer._Turn.alerts_written

    def alerts_written(turn: writer._Turn) -> None:
        if turn.previous is not None:
            behind_wrote.set()
        real_written(turn)

    real_settle = grouping.settle
    calls = 0
    ahead_settling = asyncio.Event()

    async def settle(session: AsyncSession, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        ahead_settling.set()
        if calls == 1:  # the batch ahead wants the alert row the batch behind has just updated
            await asyncio.wait_for(behind_wrote.wait(), 10)
            await session.execute(text("SELECT id FROM alerts WHERE dedup_key = 'b' FOR UPDATE"))
        await real_settle(session, *args, **kwargs)

    monkeypatch.setattr(writer._Turn, "alerts_written", alerts_written)
    monkeypatch.setattr(grouping, "settle", settle)
    intake = IntakeWriter(db)
    intake.start()
    with capture_logs() as logs:
        try:
            ahead = asyncio.create_task(intake.submit(Delivery(iid, [am("a")])))
            # Once the batch ahead has written its alert, the next one forms without it.
            await asyncio.wait_for(ahead_settling.wait(), 10)
            await asyncio.wait_for(asyncio.gather(ahead, intake.submit(Delivery(iid, [am("b")]))), 20)
        finally:
            await asyncio.wait_for(intake.stop(), 20)  # a wait PostgreSQL cannot see would hang here
    assert [e["error"] for e in logs if "retrying" in e["event"]] == [Contains("deadlock detected")]
    assert sorted((a.dedup_key, a.count) for a in await alerts(db)) == [("a", 1), ("b", 2)]
