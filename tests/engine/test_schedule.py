"""Scheduling inside a unit of work: the timers it sets are written together when it commits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from tocsin.db import Database
from tocsin.engine import service

from .conftest import KIND, timers

pytestmark = pytest.mark.anyio

T0 = datetime(2030, 1, 1, 12, tzinfo=UTC)


@contextmanager
def timer_writes(db: Database) -> Iterator[list[str]]:
    """The statements that write the timers table while the block runs."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO TIMERS"):
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)


async def test_every_timer_of_a_unit_of_work_is_written_in_one_statement(db: Database) -> None:
    with timer_writes(db) as writes:
        async with db.write() as s:
            for i in range(5):
                await service.schedule(
                    session=s, kind=KIND, subject=f"s{i}", due_at=T0 + timedelta(minutes=i)
                )
    assert len(writes) == 1
    assert [(t.subject, t.due_at) for t in await timers(db)] == [
        (f"s{i}", T0 + timedelta(minutes=i)) for i in range(5)
    ]


async def test_the_last_schedule_of_a_pair_wins_and_a_cancel_undoes_a_queued_one(db: Database) -> None:
    async with db.write() as s:
        await service.schedule(session=s, kind=KIND, subject="moved", due_at=T0, payload={"v": 1})
        await service.schedule(
            session=s, kind=KIND, subject="moved", due_at=T0 + timedelta(hours=1), payload={"v": 2}
        )
        await service.schedule(session=s, kind=KIND, subject="dropped", due_at=T0)
        await service.cancel(session=s, kind=KIND, subject="dropped")
        for step in range(3):
            await service.schedule(session=s, kind=KIND, subject=f"inc-7/step-{step}", due_at=T0)
        await service.cancel_prefix(session=s, kind=KIND, subject_prefix="inc-7/")
    assert [(t.subject, t.due_at, t.payload) for t in await timers(db)] == [
        ("moved", T0 + timedelta(hours=1), {"v": 2})
    ]


async def test_a_unit_of_work_reading_its_timers_sees_the_ones_it_queued(db: Database) -> None:
    async with db.write() as s:
        await service.schedule(session=s, kind=KIND, subject="early", due_at=T0)
        inside = await service.pending(session=s, kind=KIND)
        assert [t.subject for t in inside] == ["early"]
        await service.schedule(session=s, kind=KIND, subject="early", due_at=T0 + timedelta(days=1))
    assert [t.due_at for t in await timers(db)] == [T0 + timedelta(days=1)]


async def test_moving_a_timer_written_earlier_releases_its_lease(db: Database) -> None:
    async with db.write() as s:
        await service.schedule(session=s, kind=KIND, subject="held", due_at=T0)
    async with db.write() as s:
        (timer,) = await service.pending(session=s, kind=KIND)
        timer.lease_owner, timer.lease_until, timer.attempts = "someone", T0, 3
    async with db.write() as s:
        await service.schedule(session=s, kind=KIND, subject="held", due_at=T0 + timedelta(minutes=5))
    (timer,) = await timers(db)
    assert (timer.due_at, timer.lease_owner, timer.lease_until, timer.attempts) == (
        T0 + timedelta(minutes=5),
        None,
        None,
        0,
    )


async def test_json_that_orjson_refuses_is_still_stored_whole(db: Database) -> None:
    """JSON columns are written with orjson, which refuses integers beyond 64 bits and non-string keys;
    those values go through json instead and come back unchanged."""
    payload = {"big": 2**70, "nested": {"list": [1, "two", None, 3.5]}, "text": "é\u2603"}
    async with db.write() as s:
        await service.schedule(session=s, kind=KIND, subject="json", due_at=T0, payload=payload)
        await service.schedule(session=s, kind=KIND, subject="keys", due_at=T0, payload={1: "one"})
    stored = {t.subject: t.payload for t in await timers(db)}
    assert stored == {"json": payload, "keys": {"1": "one"}}
