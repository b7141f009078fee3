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

from tests.alerts.flow import (
    T0,
    alerts,
    am,
    incident,
    incident_list,
    integration,
    resolve_incident,
    resolved,
    send,
)
from tocsin.alerts import grouping, service, writer
from tocsin.alerts.adapters.base import Action
from tocsin.alerts.ingest import Delivery, Turn, ingest_many
from tocsin.alerts.writer import IntakeWriter
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database
from tocsin.incidents.models import IncidentState
from tocsin.incidents.store import NO_KEY_LOCKS

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
        self.waiting = asyncio.Event()

    async def settle(self, session: AsyncSession) -> None:
        self.waiting.set()
        await self.ahead.wait()


async def behind(db: Database, monkeypatch: pytest.MonkeyPatch, ahead: Delivery, then: Delivery) -> None:
    """Apply `ahead` up to its commit, start `then` behind it, which reads what it reads before that
    commit (and, if it acknowledges or resolves, waits for it), let `ahead` commit, and let `then` finish."""
    turn = Behind()
    real_prepare = grouping.prepare

    async def prepare(*args: Any, **kwargs: Any) -> grouping.Prepared:
        found = await real_prepare(*args, **kwargs)
        turn.waiting.set()  # it has read the incidents it will join
        return found

    monkeypatch.setattr(grouping, "prepare", prepare)
    now = T0 + timedelta(minutes=5)

    async def apply_behind() -> None:
        async with db.write() as s:
            await ingest_many(session=s, deliveries=[then], now=now, turn=turn)

    async with db.write() as s:
        await ingest_many(session=s, deliveries=[ahead], now=now)
        task = asyncio.create_task(apply_behind())
        await asyncio.wait_for(turn.waiting.wait(), 10)
    turn.ahead.set()
    await asyncio.wait_for(task, 10)


async def test_an_alert_read_into_an_incident_the_batch_ahead_resolved_opens_a_new_one(
    db: Database, service_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = await pg_integration(db, service_id)
    await send(db, iid, am("a"))
    [first] = await incident_list(db)
    await behind(db, monkeypatch, Delivery(iid, [resolved("a")]), Delivery(iid, [am("b")]))
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
    await behind(db, monkeypatch, Delivery(iid, [resolved("a")]), Delivery(iid, [am("b")]))
    again = await incident(db, only.id)
    assert (again.state, again.mitigated_at) == (IncidentState.new, None)
    assert {a.incident_id for a in await alerts(db)} == {only.id}


@pytest.mark.parametrize(
    ("action", "status"), [(Action.resolve, "resolved"), (Action.acknowledge, "acknowledged")]
)
async def test_resolving_or_acknowledging_an_alert_the_batch_ahead_opened_waits_for_it(
    db: Database, service_id: int, monkeypatch: pytest.MonkeyPatch, action: Action, status: str
) -> None:
    iid = await pg_integration(db, service_id)
    await behind(db, monkeypatch, Delivery(iid, [am("x")]), Delivery(iid, [am("x", action=action)]))
    assert [a.status for a in await alerts(db)] == [status]


async def test_a_resolve_sent_right_after_its_trigger_resolves_the_alert(
    db: Database, service_id: int
) -> None:
    iid = await pg_integration(db, service_id)
    intake = IntakeWriter(db)
    intake.start()
    try:
        for i in range(30):  # the trigger's batch is still committing when the resolve's batch forms
            trigger = asyncio.create_task(intake.submit(Delivery(iid, [am(f"k{i}")])))
            await asyncio.sleep(0.002)
            await asyncio.gather(trigger, intake.submit(Delivery(iid, [resolved(f"k{i}")])))
    finally:
        await intake.stop()
    assert [a.dedup_key for a in await alerts(db) if a.status != "resolved"] == []


@pytest.mark.parametrize("light", [False, True], ids=["a person", "intake in another process"])
async def test_whoever_resolves_the_incident_meanwhile_resolves_the_alert_joining_it(
    db: Database, service_id: int, monkeypatch: pytest.MonkeyPatch, light: bool
) -> None:
    """A person's lock on the incident waits for the alert's insert; a batch behind another in a second
    process locks it FOR NO KEY UPDATE, which does not: the recheck's lock makes it wait all the same."""
    iid = await pg_integration(db, service_id)
    await send(db, iid, am("a"))
    [opened] = await incident_list(db)
    paused, release = asyncio.Event(), asyncio.Event()
    real_settle = grouping.settle

    async def settle(*args: Any, **kwargs: Any) -> None:
        paused.set()  # the alert is stored with the incident, which was rechecked open
        await release.wait()
        await real_settle(*args, **kwargs)

    monkeypatch.setattr(grouping, "settle", settle)
    now = T0 + timedelta(minutes=1)

    async def intake() -> None:
        async with db.write() as s:
            await ingest_many(session=s, deliveries=[Delivery(iid, [am("b")])], now=now)

    async def person() -> None:
        async with db.write() as s:
            s.info[NO_KEY_LOCKS] = light
            await resolve_incident(s, opened.id, now)

    storing = asyncio.create_task(intake())
    await asyncio.wait_for(paused.wait(), 10)
    resolving = asyncio.create_task(person())
    await asyncio.sleep(0.3)
    assert not resolving.done()  # it waits for the alert's commit
    release.set()
    await asyncio.wait_for(asyncio.gather(storing, resolving), 10)
    assert [(a.dedup_key, a.status) for a in await alerts(db)] == [("a", "resolved"), ("b", "resolved")]


async def test_when_the_batch_ahead_fails_the_one_behind_waits_for_its_retry(
    db: Database, service_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = await pg_integration(db, service_id)
    await send(db, iid, am("x"))
    real_settle = grouping.settle
    calls = 0
    settling = asyncio.Event()

    async def settle(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # the batch ahead fails late, as a deadlock victim would
            settling.set()
            await asyncio.sleep(0.3)  # while the batch behind forms and stores its alert
            raise RuntimeError("chosen as the deadlock victim")
        await real_settle(*args, **kwargs)

    monkeypatch.setattr(grouping, "settle", settle)
    intake = IntakeWriter(db)
    applied = 0

    def wrap(apply: Apply) -> Apply:
        async def counted(batch: list[Any], **kwargs: Any) -> None:
            nonlocal applied
            applied += 1
            await apply(batch, **kwargs)

        return counted

    watch(intake, wrap)
    intake.start()
    try:
        ahead = asyncio.create_task(intake.submit(Delivery(iid, [resolved("x")])))
        await asyncio.wait_for(settling.wait(), 10)
        await asyncio.wait_for(asyncio.gather(ahead, intake.submit(Delivery(iid, [am("x")]))), 20)
        applied = 0
        for key in ("later-1", "later-2", "later-3"):  # later batches are no longer held up by the failure
            await asyncio.wait_for(intake.submit(Delivery(iid, [am(key)])), 10)
        assert applied == 3
    finally:
        await intake.stop()
    # x resolved (the retried batch ahead), then triggered again (the batch behind): a new alert
    assert [(a.dedup_key, a.status) for a in await alerts(db) if a.dedup_key == "x"] == [
        ("x", "resolved"),
        ("x", "triggered"),
    ]


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
