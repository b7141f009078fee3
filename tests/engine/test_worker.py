"""The worker's single steps: claiming, firing, settling, leases, stopping (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import time_machine

from tests.engine.conftest import KIND, MakeWorker, Recorder, schedule, timers
from tocsin.db import Database, utcnow
from tocsin.engine import service
from tocsin.engine.handlers import Again, Done, EngineContext, Fired, Outcome
from tocsin.engine.worker import Worker

pytestmark = pytest.mark.anyio


async def test_a_due_timer_fires_once_and_is_deleted(db: Database, make_worker: MakeWorker) -> None:
    handler = Recorder()
    worker = make_worker({KIND: handler})
    due = utcnow() - timedelta(seconds=1)
    await schedule(db, "incident:1", due, {"step": 1})

    [fired] = await worker.claim_due(utcnow())
    assert (fired.kind, fired.subject, fired.due_at) == (KIND, "incident:1", due)
    assert (fired.payload, fired.attempts) == ({"step": 1}, 1)
    assert fired.lease_owner.startswith(f"{worker.owner}/")
    assert await worker.claim_due(utcnow()) == [], "a leased timer is not claimed twice"

    await worker.fire(fired)
    assert handler.calls == [fired]
    assert await timers(db) == []
    assert (worker.metrics.claimed, worker.metrics.fired, worker.metrics.failed) == (1, 1, 0)
    assert worker.metrics.last_lag_seconds >= 1


async def test_a_timer_not_yet_due_is_left_alone_and_named_as_next_due(
    db: Database, make_worker: MakeWorker
) -> None:
    worker = make_worker({KIND: Recorder()})
    assert await worker.next_due() is None
    due = utcnow() + timedelta(minutes=5)
    await schedule(db, "incident:1", due)
    assert await worker.claim_due(utcnow()) == []
    assert await worker.next_due() == due


async def test_claims_take_the_earliest_first_and_no_more_than_the_batch(
    db: Database, make_worker: MakeWorker
) -> None:
    worker = make_worker({KIND: Recorder()}, batch=3)
    now = utcnow()
    for minutes in [5, 1, 4, 2, 3]:
        await schedule(db, f"s{minutes}", now - timedelta(minutes=minutes))
    assert [f.subject for f in await worker.claim_due(now)] == ["s5", "s4", "s3"]
    assert [f.subject for f in await worker.claim_due(now, limit=1)] == ["s2"]


async def test_again_moves_the_timer_and_may_replace_its_payload(
    db: Database, make_worker: MakeWorker
) -> None:
    now = utcnow()
    later, later_still = now + timedelta(minutes=5), now + timedelta(minutes=10)
    keeps = make_worker({KIND: Recorder(Again(at=later))})
    await schedule(db, "incident:1", now, {"step": 1})
    await keeps.fire(*await keeps.claim_due(now))
    [timer] = await timers(db)
    assert (timer.due_at, timer.payload, timer.lease_owner, timer.attempts) == (later, {"step": 1}, None, 0)

    replaces = make_worker({KIND: Recorder(Again(at=later_still, payload={"step": 2}))})
    await replaces.fire(*await replaces.claim_due(later))
    [timer] = await timers(db)
    assert (timer.due_at, timer.payload, timer.lease_until) == (later_still, {"step": 2}, None)


async def test_a_failing_handler_is_retried_with_doubling_backoff_and_its_error_recorded(
    db: Database, make_worker: MakeWorker
) -> None:
    async def broken(ctx: EngineContext, fired: Fired) -> Outcome:
        raise ConnectionError("mail relay refused the connection")

    worker = make_worker({KIND: broken})
    with time_machine.travel(utcnow(), tick=False) as traveller:
        await schedule(db, "incident:1", utcnow())
        await worker.fire(*await worker.claim_due(utcnow()))
        [timer] = await timers(db)
        assert timer.due_at == utcnow() + timedelta(seconds=1)
        assert timer.last_error == "ConnectionError: mail relay refused the connection"
        assert (timer.attempts, timer.lease_owner, timer.lease_until) == (1, None, None)
        assert await worker.claim_due(utcnow()) == [], "not before the backoff"

        traveller.shift(1)
        [fired] = await worker.claim_due(utcnow())
        assert fired.attempts == 2
        await worker.fire(fired)
        [timer] = await timers(db)
        assert timer.due_at == utcnow() + timedelta(seconds=2)
    assert worker.metrics.failed == 2


async def test_a_handler_that_returns_no_outcome_fails_instead_of_deleting_its_timer(
    db: Database, make_worker: MakeWorker
) -> None:
    async def forgetful(ctx: EngineContext, fired: Fired) -> Outcome:
        return None  # type: ignore[return-value]

    worker = make_worker({KIND: forgetful})
    await schedule(db, "incident:1", utcnow())
    await worker.fire(*await worker.claim_due(utcnow()))
    [timer] = await timers(db)
    assert timer.last_error is not None and "expected Done() or Again(at)" in timer.last_error


async def test_a_handler_that_outlives_its_budget_is_cancelled_and_retried(
    db: Database, make_worker: MakeWorker
) -> None:
    async def hangs(ctx: EngineContext, fired: Fired) -> Outcome:
        await asyncio.sleep(60)
        return Done()

    worker = make_worker({KIND: hangs}, lease_seconds=0.25)
    await schedule(db, "incident:1", utcnow())
    await asyncio.wait_for(worker.fire(*await worker.claim_due(utcnow())), timeout=5)
    [timer] = await timers(db)
    assert timer.last_error == "handler ran past its budget of 0.2 s"
    assert timer.lease_owner is None


async def test_an_unknown_kind_is_parked_an_hour_later_with_an_error(
    db: Database, make_worker: MakeWorker
) -> None:
    worker = make_worker({KIND: Recorder()})
    with time_machine.travel(utcnow(), tick=False):
        await schedule(db, "incident:1", utcnow(), kind="test.nobody_handles_this")
        await worker.fire(*await worker.claim_due(utcnow()))
        [timer] = await timers(db)
        assert timer.due_at == utcnow() + timedelta(hours=1)
    assert timer.last_error == "no handler registered for timer kind 'test.nobody_handles_this'"
    assert worker.metrics.failed == 1


@pytest.mark.parametrize("outcome", [Done(), Again(at=utcnow() + timedelta(days=1))], ids=["done", "again"])
async def test_rescheduling_while_the_handler_runs_is_not_lost(
    db: Database, make_worker: MakeWorker, outcome: Outcome
) -> None:
    running, finish = asyncio.Event(), asyncio.Event()

    async def slow(ctx: EngineContext, fired: Fired) -> Outcome:
        running.set()
        await finish.wait()
        return outcome

    worker = make_worker({KIND: slow})
    await schedule(db, "incident:1", utcnow())
    firing = asyncio.create_task(worker.fire(*await worker.claim_due(utcnow())))
    await running.wait()
    moved_to = utcnow() + timedelta(minutes=30)
    await schedule(db, "incident:1", moved_to, {"moved": True})  # e.g. an acknowledgement extends the timer
    finish.set()
    await firing

    [timer] = await timers(db)
    assert (timer.due_at, timer.payload) == (moved_to, {"moved": True})
    assert (timer.lease_owner, timer.attempts) == (None, 0), "released for a fresh firing"


async def test_a_timer_scheduled_in_a_rolled_back_unit_of_work_never_fires(
    db: Database, make_worker: MakeWorker
) -> None:
    worker = make_worker({KIND: Recorder()})
    db.after_commit.append(worker.wake_on_commit)
    with pytest.raises(RuntimeError, match="request failed"):
        async with db.write() as session:
            await service.schedule(session=session, kind=KIND, subject="incident:1", due_at=utcnow())
            raise RuntimeError("request failed")
    assert not worker.alarm.rung
    assert await worker.claim_due(utcnow() + timedelta(days=1)) == []

    await schedule(db, "incident:2", utcnow())
    assert worker.alarm.rung, "a committed schedule wakes the worker"


async def test_a_lease_keeps_other_workers_off_until_it_expires_and_then_the_old_outcome_is_ignored(
    db: Database, make_worker: MakeWorker
) -> None:
    first, second = Recorder(), Recorder()
    slow_worker, other_worker = make_worker({KIND: first}), make_worker({KIND: second})
    now = utcnow()
    await schedule(db, "incident:1", now)
    [stale] = await slow_worker.claim_due(now)
    assert await other_worker.claim_due(now + timedelta(seconds=29)) == []
    [fresh] = await other_worker.claim_due(now + timedelta(seconds=31))
    assert fresh.attempts == 2

    await slow_worker.fire(stale)  # finishes after its lease lapsed: its Done must not delete the new claim
    [timer] = await timers(db)
    assert timer.lease_owner == fresh.lease_owner
    await other_worker.fire(fresh)
    assert await timers(db) == []


async def test_concurrent_claims_never_hand_out_the_same_timer_twice(
    db: Database, make_worker: MakeWorker
) -> None:
    now = utcnow()
    async with db.write() as session:
        for i in range(300):
            await service.schedule(session=session, kind=KIND, subject=f"s{i}", due_at=now)
    workers = [make_worker({KIND: Recorder()}, batch=7) for _ in range(4)]

    async def claim_all(worker: Worker) -> list[int]:
        got: list[int] = []
        while batch := await worker.claim_due(now):
            got += [f.id for f in batch]
        return got

    claimed = [i for ids in await asyncio.gather(*(claim_all(w) for w in workers)) for i in ids]
    assert len(claimed) == len(set(claimed)) == 300


async def test_stopping_lets_running_handlers_finish_and_hands_back_the_leases_of_the_rest(
    db: Database, make_worker: MakeWorker
) -> None:
    started = {"quick": asyncio.Event(), "stuck": asyncio.Event()}

    async def handler(ctx: EngineContext, fired: Fired) -> Outcome:
        started[fired.subject].set()
        await asyncio.sleep(0.05 if fired.subject == "quick" else 60)
        return Done()

    worker = make_worker({KIND: handler}, drain_seconds=0.3)
    await schedule(db, "quick", utcnow())
    await schedule(db, "stuck", utcnow())
    stop = asyncio.Event()
    loop = asyncio.create_task(worker.run_forever(stop))
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), timeout=5)
    stop.set()
    await asyncio.wait_for(loop, timeout=5)

    [left] = await timers(db)
    assert (left.subject, left.lease_owner, left.lease_until) == ("stuck", None, None)
    assert worker.metrics.fired == 1
