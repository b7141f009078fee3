"""SLA clocks on incidents, fired by the engine worker from real timer rows as time-machine moves time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from tests.conftest import People
from tocsin.auth import service as auth
from tocsin.auth.models import TeamRole
from tocsin.auth.permissions import SYSTEM
from tocsin.catalog import service as catalog
from tocsin.config import Settings
from tocsin.db import Database, utcnow
from tocsin.engine import service as engine
from tocsin.engine.handlers import Again, Done, EngineContext, Fired
from tocsin.engine.worker import Worker
from tocsin.incidents import service, sla, sla_config, sla_timers
from tocsin.incidents.models import (
    ClockState,
    EntryKind,
    HoldReason,
    Incident,
    IncidentState,
    ResolutionCode,
    SlaClock,
    SlaStatus,
    TimelineEntry,
)
from tocsin.notify.models import NotifyEvent, OutboxMessage

pytestmark = pytest.mark.anyio
T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)  # a Monday
M = timedelta(minutes=1)
RESOLVE: dict[str, Any] = {
    "resolution_code": ResolutionCode.solution_provided,
    "resolution_summary": "Restarted the pool",
}


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


async def fire_due(db: Database, settings: Settings) -> list[str]:
    """Claim what is due now and fire the SLA timers among it, as the engine does; returns their kinds."""
    worker = Worker(EngineContext(db=db, settings=settings), sla.HANDLERS, listen=False)
    ours = [f for f in await worker.claim_due(utcnow()) if f.kind in sla.HANDLERS]
    for fired in ours:
        await worker.fire(fired)
    return [f.kind for f in ours]


async def open_incident(db: Database, impact: int = 1, urgency: int = 1, **fields: Any) -> int:
    async with db.write() as s:
        incident = await service.create_incident(
            session=s, actor=SYSTEM, title="Checkout is down", impact=impact, urgency=urgency, **fields
        )
        return incident.id


async def move(db: Database, incident_id: int, target: IncidentState, **details: Any) -> None:
    async with db.write() as s:
        await service.transition(session=s, actor=SYSTEM, ref=incident_id, target=target, **details)


async def clocks(db: Database, incident_id: int) -> dict[str, SlaClock]:
    async with db.read() as s:
        views = await sla.clocks(session=s, actor=SYSTEM, ref=incident_id)
    return {str(v.clock.kind): v.clock for v in views}


async def sla_timers_of(db: Database, incident_id: int) -> list[tuple[str, str, datetime]]:
    async with db.read() as s:
        timers = await engine.pending(session=s)
    return [
        (t.kind, t.subject, t.due_at)
        for t in timers
        if t.kind in sla.HANDLERS and t.subject.startswith(f"{incident_id}:")
    ]


async def sla_entries(db: Database, incident_id: int) -> list[str]:
    async with db.read() as s:
        rows = await s.scalars(
            select(TimelineEntry.text)
            .where(TimelineEntry.incident_id == incident_id, TimelineEntry.kind == EntryKind.sla)
            .order_by(TimelineEntry.id)
        )
        return list(rows)


async def outbox(db: Database, incident_id: int) -> list[tuple[str, int | None]]:
    async with db.read() as s:
        rows = await s.execute(
            select(OutboxMessage.event, OutboxMessage.user_id)
            .where(OutboxMessage.incident_id == incident_id)
            .order_by(OutboxMessage.id)
        )
        return [(str(e), u) for e, u in rows]


async def status_of(db: Database, incident_id: int) -> SlaStatus | None:
    async with db.read() as s:
        return await s.scalar(select(Incident.sla_status).where(Incident.id == incident_id))


async def make_manager(db: Database, people: People) -> None:
    async with db.write() as s:
        await auth.set_member(
            session=s,
            actor=SYSTEM,
            team_id=people.team_a,
            user_id=people.manager.user_id,
            team_role=TeamRole.manager,
        )


async def test_a_new_incident_starts_both_clocks_from_its_priority_policy(db: Database, clock: Any) -> None:
    inc = await open_incident(db)
    got = await clocks(db, inc)
    assert {k: (c.state, c.target_minutes, c.due_at, c.warn_at) for k, c in got.items()} == {
        "response": (ClockState.running, 15, T0 + 15 * M, T0 + timedelta(minutes=11, seconds=15)),
        "resolution": (ClockState.running, 60, T0 + 60 * M, T0 + 45 * M),
    }
    assert sorted(await sla_timers_of(db, inc)) == [
        ("sla.warn", f"{inc}:resolution", T0 + 45 * M),
        ("sla.warn", f"{inc}:response", T0 + timedelta(minutes=11, seconds=15)),
    ]
    assert await status_of(db, inc) == SlaStatus.running


async def test_the_warning_comes_at_75_percent_and_the_breach_at_100_with_timeline_entries_and_outbox_rows(
    db: Database, settings: Settings, people: People, clock: Any
) -> None:
    await make_manager(db, people)
    inc = await open_incident(db, team_id=people.team_a, assignee_id=people.responder.user_id)

    clock.move_to(T0 + 11 * M)
    assert await fire_due(db, settings) == []
    clock.move_to(T0 + timedelta(minutes=11, seconds=15))
    assert await fire_due(db, settings) == ["sla.warn"]
    assert await sla_entries(db, inc) == [
        "Response SLA at risk: 75% of 15 min used, due 2024-06-03 12:15 UTC"
    ]
    assert await outbox(db, inc) == [("sla_warning", people.responder.user_id)], "the assignee hears first"
    assert await status_of(db, inc) == SlaStatus.at_risk
    assert (await clocks(db, inc))["response"].warned_at == utcnow()
    assert ("sla.breach", f"{inc}:response", T0 + 15 * M) in await sla_timers_of(db, inc)

    clock.move_to(T0 + 15 * M)
    assert await fire_due(db, settings) == ["sla.breach"]
    response = (await clocks(db, inc))["response"]
    assert (response.state, response.breached_at, response.met_at) == (ClockState.breached, T0 + 15 * M, None)
    assert (await sla_entries(db, inc))[-1] == "Response SLA breached (target 15 min)"
    assert (await outbox(db, inc))[1:] == [
        ("sla_breached", people.responder.user_id),
        ("sla_breached", people.manager.user_id),
    ]
    assert await status_of(db, inc) == SlaStatus.breached
    assert not [t for t in await sla_timers_of(db, inc) if t[1].endswith("response")]


async def test_acknowledging_in_time_meets_the_response_target_and_nothing_fires_for_it(
    db: Database, settings: Settings, clock: Any
) -> None:
    inc = await open_incident(db)
    clock.move_to(T0 + 5 * M)
    await move(db, inc, IncidentState.acknowledged)
    response = (await clocks(db, inc))["response"]
    assert (response.state, response.met_at, response.breached_at) == (ClockState.met, T0 + 5 * M, None)
    assert [t[1] for t in await sla_timers_of(db, inc)] == [f"{inc}:resolution"]

    clock.move_to(T0 + 20 * M)
    await fire_due(db, settings)
    assert await sla_entries(db, inc) == []
    assert (await clocks(db, inc))["response"].state == ClockState.met


async def test_on_hold_pauses_both_clocks_and_resuming_shifts_the_due_time_by_the_pause(
    db: Database, settings: Settings, clock: Any
) -> None:
    inc = await open_incident(db)
    clock.move_to(T0 + 10 * M)
    await move(db, inc, IncidentState.on_hold, hold_reason=HoldReason.awaiting_vendor)
    resolution = (await clocks(db, inc))["resolution"]
    assert (resolution.state, resolution.due_at, resolution.paused_at) == (
        ClockState.paused,
        None,
        T0 + 10 * M,
    )
    assert await sla_timers_of(db, inc) == [], "nothing fires while on hold"
    assert await status_of(db, inc) == SlaStatus.paused

    clock.move_to(T0 + 40 * M)
    await move(db, inc, IncidentState.in_progress)
    resolution = (await clocks(db, inc))["resolution"]
    assert (resolution.state, resolution.due_at, resolution.warn_at) == (
        ClockState.running,
        T0 + 90 * M,
        T0 + 75 * M,
    )
    assert await sla_timers_of(db, inc) == [("sla.warn", f"{inc}:resolution", T0 + 75 * M)]

    clock.move_to(T0 + 89 * M)
    await move(db, inc, IncidentState.resolved, **RESOLVE)
    resolution = (await clocks(db, inc))["resolution"]
    assert (resolution.state, resolution.met_at) == (ClockState.met, T0 + 89 * M)
    assert await status_of(db, inc) == SlaStatus.met


async def test_a_business_hours_policy_counts_across_the_weekend_only_office_hours(
    db: Database, settings: Settings, clock: Any
) -> None:
    async with db.write() as s:
        await sla_config.create_calendar(
            session=s,
            actor=SYSTEM,
            key="london_office",
            name="London office",
            time_zone="Europe/London",
            windows=[
                {"day": d, "start": "09:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu", "fri")
            ],
        )
        await sla_config.create_policy(
            session=s,
            actor=SYSTEM,
            fields={
                "name": "Facilities P3",
                "priority": 3,
                "type_key": "facility",
                "response_minutes": 240,
                "resolution_minutes": 960,
                "calendar": "london_office",
            },
        )
    friday_3pm_bst = datetime(2024, 6, 7, 14, 0, tzinfo=UTC)
    clock.move_to(friday_3pm_bst)
    inc = await open_incident(db, impact=2, urgency=2, type_key="facility")
    response = (await clocks(db, inc))["response"]
    # 2 h on Friday, then 2 h on Monday from 09:00 BST (08:00 UTC)
    assert (response.target_minutes, response.due_at) == (240, datetime(2024, 6, 10, 10, 0, tzinfo=UTC))

    clock.move_to(datetime(2024, 6, 8, 12, 0, tzinfo=UTC))  # Saturday: nothing due
    assert await fire_due(db, settings) == []
    async with db.read() as s:
        [view] = [v for v in await sla.clocks(session=s, actor=SYSTEM, ref=inc) if v.clock.kind == "response"]
    assert view.remaining == timedelta(hours=2), "the weekend does not count"
    other = await open_incident(db, impact=2, urgency=2)  # an it_service P3 keeps the calendar-time default
    assert (await clocks(db, other))["response"].due_at == datetime(2024, 6, 8, 16, 0, tzinfo=UTC)


async def test_raising_the_priority_retargets_running_clocks_from_their_start(
    db: Database, settings: Settings, clock: Any
) -> None:
    inc = await open_incident(db, impact=2, urgency=2)  # P3: response 4 h
    assert (await clocks(db, inc))["response"].due_at == T0 + 240 * M
    clock.move_to(T0 + 20 * M)
    async with db.write() as s:
        await service.update_incident(session=s, actor=SYSTEM, ref=inc, impact=1, urgency=1)
    response = (await clocks(db, inc))["response"]
    assert (response.target_minutes, response.due_at) == (15, T0 + 15 * M), "counted from the start"
    assert (await clocks(db, inc))["resolution"].due_at == T0 + 60 * M
    assert await fire_due(db, settings) == ["sla.warn"], "the response warning point has passed already"
    assert await fire_due(db, settings) == ["sla.breach"]
    assert await sla_entries(db, inc) == [
        "Response SLA at risk: 75% of 15 min used, due 2024-06-03 12:15 UTC",
        "Response SLA breached (target 15 min)",
    ]


async def test_reopening_starts_a_new_resolution_cycle_and_keeps_the_breached_one(
    db: Database, settings: Settings, clock: Any
) -> None:
    inc = await open_incident(db)
    await move(db, inc, IncidentState.in_progress)
    clock.move_to(T0 + 61 * M)
    await fire_due(db, settings)
    await fire_due(db, settings)
    assert (await clocks(db, inc))["resolution"].state == ClockState.breached
    await move(db, inc, IncidentState.resolved, **RESOLVE)
    clock.move_to(T0 + 120 * M)
    await move(db, inc, IncidentState.in_progress, reason="It came back")
    resolution = (await clocks(db, inc))["resolution"]
    assert (resolution.cycle, resolution.state, resolution.due_at) == (2, ClockState.running, T0 + 180 * M)
    async with db.read() as s:
        views = await sla.clocks(session=s, actor=SYSTEM, ref=inc, history=True)
    assert [(str(v.clock.kind), v.clock.cycle, v.clock.state, v.clock.met_at) for v in views] == [
        ("response", 1, ClockState.met, T0),
        ("resolution", 1, ClockState.breached, T0 + 61 * M),
        ("resolution", 2, ClockState.running, None),
    ]
    assert await status_of(db, inc) == SlaStatus.running


async def test_a_target_met_after_its_due_time_but_before_the_timer_fired_is_still_a_breach(
    db: Database, clock: Any
) -> None:
    inc = await open_incident(db)
    clock.move_to(T0 + 20 * M)
    await move(db, inc, IncidentState.acknowledged)
    response = (await clocks(db, inc))["response"]
    assert (response.state, response.breached_at, response.met_at) == (
        ClockState.breached,
        T0 + 15 * M,
        T0 + 20 * M,
    )
    assert await sla_entries(db, inc) == ["Response SLA breached (target 15 min)"]
    assert await outbox(db, inc) == [], "nobody is paged about a breach already over"


async def test_cancelling_stops_the_clocks_and_their_timers(db: Database, clock: Any) -> None:
    inc = await open_incident(db)
    await move(db, inc, IncidentState.cancelled, reason="Duplicate report")
    assert {c.state for c in (await clocks(db, inc)).values()} == {ClockState.stopped}
    assert await sla_timers_of(db, inc) == []
    assert await status_of(db, inc) is None


async def test_handlers_recheck_the_clock_so_a_stale_or_repeated_firing_does_no_harm(
    db: Database, settings: Settings, people: People, clock: Any
) -> None:
    inc = await open_incident(db, assignee_id=people.responder.user_id)
    ctx = EngineContext(db=db, settings=settings)

    def fired(kind: str, due: datetime) -> Fired:
        return Fired(1, kind, f"{inc}:response", due, None, 1, "test")

    early = await sla_timers.fire_breach(ctx, fired("sla.breach", T0))
    assert early == Again(at=T0 + 15 * M), "fired before the due time: wait for it"
    clock.move_to(T0 + 16 * M)
    assert await sla_timers.fire_breach(ctx, fired("sla.breach", T0 + 15 * M)) == Done()
    assert await sla_timers.fire_breach(ctx, fired("sla.breach", T0 + 15 * M)) == Done()
    assert await sla_timers.fire_warning(ctx, fired("sla.warn", T0 + 15 * M)) == Done()
    assert await sla_entries(db, inc) == ["Response SLA breached (target 15 min)"]
    assert await outbox(db, inc) == [("sla_breached", people.responder.user_id)]
    assert await sla_timers.fire_breach(ctx, Fired(1, "sla.breach", "junk", T0, None, 1, "t")) == Done()


async def test_a_breach_also_reaches_the_policys_configured_user_and_a_warning_reaches_managers_if_unassigned(
    db: Database, settings: Settings, people: People, clock: Any
) -> None:
    await make_manager(db, people)
    async with db.write() as s:
        [p1] = await sla_config.list_policies(session=s, priority=1)
        await sla_config.update_policy(
            session=s,
            actor=SYSTEM,
            policy_id=p1.id,
            changes={"notify_user_id": people.admin.user_id, "notify_managers": False},
        )
    inc = await open_incident(db, team_id=people.team_a)
    clock.move_to(T0 + 15 * M)
    await fire_due(db, settings)
    await fire_due(db, settings)
    events = await outbox(db, inc)
    assert (NotifyEvent.sla_warning, people.manager.user_id) in events
    assert [e for e in events if e[0] == NotifyEvent.sla_breached] == [("sla_breached", people.admin.user_id)]


async def test_seeding_again_adds_nothing_and_keeps_what_an_admin_changed(db: Database) -> None:
    async with db.write() as s:
        [p4] = await sla_config.list_policies(session=s, priority=4)
        await sla_config.update_policy(
            session=s, actor=SYSTEM, policy_id=p4.id, changes={"resolution_minutes": 4320}
        )
        await sla_config.seed_sla(s)
    async with db.read() as s:
        policies = await sla_config.list_policies(session=s)
        calendars = await sla_config.list_calendars(session=s)
    assert [(p.priority, p.resolution_minutes) for p in policies] == [(1, 60), (2, 240), (3, 1440), (4, 4320)]
    assert [c.key for c in calendars] == ["office_hours"]


async def test_adding_a_service_with_its_own_policy_retargets_and_a_priority_gaining_a_policy_starts_clocks(
    db: Database, clock: Any
) -> None:
    async with db.write() as s:
        payments = await catalog.create_service(session=s, actor=SYSTEM, slug="payments", name="Payments")
        await sla_config.create_policy(
            session=s,
            actor=SYSTEM,
            fields={"name": "Payments P2", "priority": 2, "service_id": payments.id, "response_minutes": 5},
        )
        [p4] = await sla_config.list_policies(session=s, priority=4)
        await sla_config.update_policy(session=s, actor=SYSTEM, policy_id=p4.id, changes={"active": False})
    p2 = await open_incident(db, impact=1, urgency=2)
    p4_inc = await open_incident(db, impact=3, urgency=3)
    assert await clocks(db, p4_inc) == {} and await status_of(db, p4_inc) is None
    clock.move_to(T0 + 2 * M)
    async with db.write() as s:
        await service.update_incident(session=s, actor=SYSTEM, ref=p2, service_ids=[payments.id])
        await service.update_incident(session=s, actor=SYSTEM, ref=p4_inc, impact=1, urgency=1)
    p2_clocks = await clocks(db, p2)
    assert (p2_clocks["response"].due_at, p2_clocks["resolution"].state) == (T0 + 5 * M, ClockState.stopped)
    assert {k: c.due_at for k, c in (await clocks(db, p4_inc)).items()} == {
        "response": T0 + 15 * M,
        "resolution": T0 + 60 * M,
    }, "started from the incident's creation"
