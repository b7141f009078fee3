"""Group commit: concurrent deliveries share one transaction; a poisonous one fails alone."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from tocsin.alerts import grouping, service, timers
from tocsin.alerts.adapters.base import Action, AlertEvent
from tocsin.alerts.ingest import Delivery
from tocsin.alerts.models import Alert, IntegrationKind
from tocsin.alerts.triage import REROUTE_TIMER
from tocsin.alerts.writer import DeliveryFailed, IntakeWriter, WriterClosed
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database
from tocsin.engine import service as engine

pytestmark = pytest.mark.anyio


async def integration_id(db: Database, service_id: int) -> int:
    async with db.write() as s:
        row, _ = await service.create_integration(
            session=s, actor=SYSTEM, service_id=service_id, name="g", kind=IntegrationKind.generic
        )
        return row.id


def delivery(iid: int, key: str) -> Delivery:
    return Delivery(iid, [AlertEvent(dedup_key=key, action=Action.trigger, summary=key)])


async def count(db: Database) -> int:
    async with db.read() as s:
        return int(await s.scalar(select(func.count(Alert.id))) or 0)


async def test_concurrent_deliveries_are_committed_together_and_each_answered(
    db: Database, service_id: int
) -> None:
    iid = await integration_id(db, service_id)
    writer = IntakeWriter(db)
    batches: list[int] = []
    apply = writer._apply

    async def counting(batch: list, **kwargs: object) -> None:  # type: ignore[type-arg]
        batches.append(len(batch))
        await apply(batch, **kwargs)

    writer._apply = counting  # type: ignore[method-assign]
    writer.start()
    try:
        await asyncio.gather(*(writer.submit(delivery(iid, f"k{i}")) for i in range(50)))
    finally:
        await writer.stop()
    assert await count(db) == 50
    assert sum(batches) == 50 and len(batches) < 50


async def test_a_poisonous_delivery_fails_only_its_own_request(db: Database, service_id: int) -> None:
    iid = await integration_id(db, service_id)
    writer = IntakeWriter(db)
    writer.start()
    try:
        results = await asyncio.gather(
            writer.submit(delivery(iid, "good-1")),
            writer.submit(delivery(999_999, "no such integration")),  # breaks the foreign key
            writer.submit(delivery(iid, "good-2")),
            return_exceptions=True,
        )
    finally:
        await writer.stop()
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], DeliveryFailed)
    assert await count(db) == 2


async def test_stopping_drains_the_queue_then_refuses(db: Database, service_id: int) -> None:
    iid = await integration_id(db, service_id)
    writer = IntakeWriter(db)
    writer.start()
    pending = [asyncio.ensure_future(writer.submit(delivery(iid, f"k{i}"))) for i in range(5)]
    await asyncio.sleep(0)
    await writer.stop()
    await asyncio.gather(*pending)
    assert await count(db) == 5
    with pytest.raises(WriterClosed):
        await writer.submit(delivery(iid, "late"))


async def test_a_routing_failure_stores_the_alerts_unrouted_and_a_timer_routes_them_later(
    db: Database, service_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    iid = await integration_id(db, service_id)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("routing is broken")

    monkeypatch.setattr(grouping, "settle", broken)
    writer = IntakeWriter(db)
    writer.start()
    try:
        await asyncio.gather(*(writer.submit(delivery(iid, f"k{i}")) for i in range(3)))
    finally:
        await writer.stop()
    assert await count(db) == 3
    async with db.read() as s:
        assert len(await engine.pending(session=s, kind=REROUTE_TIMER)) == 1
        assert set(await s.scalars(select(Alert.incident_id))) == {None}
    monkeypatch.undo()
    async with db.write() as s:
        assert await timers.route_waiting(s) is None
    async with db.read() as s:
        assert len(set(await s.scalars(select(Alert.incident_id)))) == 3  # summaries differ: 3 groups
