"""Escalation runs on the engine: paging step by step, stopping on acknowledgement, timeouts, idempotency.

The clock is time-machine's; the engine is a real worker with every domain's handlers, fired one due timer
at a time; deliveries really reach a local webhook receiver.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import People
from tests.notify.receivers import HttpReceiver
from tests.oncall.conftest import (
    Engine,
    World,
    actor_of,
    entries,
    keys,
    open_incident,
    outbox,
    paths,
    reachable,
)
from tocsin.auth import service as auth
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database, utcnow
from tocsin.engine import service as engine_timers
from tocsin.engine.handlers import Again, EngineContext, Fired
from tocsin.incidents import service as incidents
from tocsin.incidents.models import EntryKind, IncidentState
from tocsin.notify.models import NotifyEvent, OutboxStatus
from tocsin.oncall import escalation, runs, service
from tocsin.oncall.models import TargetKind

pytestmark = pytest.mark.anyio
MINUTES_5 = timedelta(minutes=5)


async def ours(session: AsyncSession) -> list[tuple[str, str]]:
    """Pending escalation and delivery timers (other domains, SLA clocks say, have their own)."""
    timers = await engine_timers.pending(session=session)
    return [(t.kind, t.subject) for t in timers if t.kind.startswith(("escalation.", "notify."))]


async def move(db: Database, incident_id: int, state: IncidentState) -> None:
    async with db.write() as s:
        await incidents.transition(session=s, actor=SYSTEM, ref=incident_id, target=state)


async def test_an_unanswered_incident_pages_on_call_then_the_manager_then_repeats(
    db: Database, world: World, engine: Engine, receiver: HttpReceiver
) -> None:
    with time_machine.travel(utcnow(), tick=False) as clock:
        incident = await open_incident(db, world)
        await engine.run_due()
        assert paths(receiver) == ["/responder"]
        assert receiver.received[0].headers["x-tocsin-event"] == "paged"
        assert receiver.received[0].json["urgency"] == "high", "a P1 pages with high urgency"
        for _ in range(4):
            clock.shift(MINUTES_5)
            await engine.run_due()
    assert paths(receiver) == ["/responder", "/manager", "/responder", "/manager"]
    assert [r.headers["x-tocsin-event"] for r in receiver.received] == ["paged"] + ["escalated"] * 3
    assert keys(receiver)[0].startswith(f"esc:{incident}:g1:r0:s0:u")
    assert await entries(db, incident) == [
        "Step 1 of 'Platform escalation' (round 1 of 2): paged Responder (on call for Platform primary)",
        "Step 2 of 'Platform escalation' (round 1 of 2): paged Manager",
        "Step 1 of 'Platform escalation' (round 2 of 2): paged Responder (on call for Platform primary)",
        "Step 2 of 'Platform escalation' (round 2 of 2): paged Manager",
        "Escalation 'Platform escalation' exhausted, nobody acknowledged",
    ]
    assert (
        await entries(db, incident, EntryKind.notification)
        == [
            "Paged Responder via webhook: delivered",
            "Paged Manager via webhook: delivered",
        ]
        * 2
    )
    async with db.read() as s:
        assert await ours(s) == [], "nothing is left to fire"
        state = await service.escalation_state(session=s, actor=SYSTEM, ref=incident)
    assert (state.status, state.next_step_at) == ("exhausted", None)
    assert [p["name"] for p in state.paged] == ["Responder", "Manager"] * 2


async def test_acknowledging_stops_escalation_and_withdraws_delayed_messages(
    db: Database, people: People, world: World, engine: Engine, receiver: HttpReceiver
) -> None:
    await reachable(db, people.responder.user_id, receiver.url("/responder-phone"), delay=3)
    with time_machine.travel(utcnow(), tick=False) as clock:
        incident = await open_incident(db, world)
        await engine.run_due()
        assert paths(receiver) == ["/responder"]
        queued = await outbox(db, incident)
        assert [m.status for m in queued] == [OutboxStatus.sent, OutboxStatus.pending]
        r = await people.responder.client.post(
            f"/api/v1/incidents/INC-{incident}/state", json={"state": "acknowledged"}
        )
        assert r.status_code == 200, r.text
        for _ in range(6):
            clock.shift(MINUTES_5)
            await engine.run_due()
    assert paths(receiver) == ["/responder"], "neither the manager nor the delayed rule was reached"
    assert [m.status for m in await outbox(db, incident)] == [OutboxStatus.sent, OutboxStatus.cancelled]
    assert (await entries(db, incident))[-1] == (
        "Escalation stopped: incident acknowledged; 1 pending notification withdrawn"
    )
    async with db.read() as s:
        assert await ours(s) == []
        assert (await service.escalation_state(session=s, actor=SYSTEM, ref=incident)).status == "stopped"


async def test_an_acknowledgement_not_followed_up_times_out_and_escalation_resumes(
    db: Database, people: People, world: World, engine: Engine, receiver: HttpReceiver
) -> None:
    async with db.write() as s:
        await service.set_service_escalation(
            session=s, actor=SYSTEM, service_key="platform", policy_id=world.policy_id, ack_timeout_minutes=10
        )
    with time_machine.travel(utcnow(), tick=False) as clock:
        incident = await open_incident(db, world)
        await engine.run_due()
        await move(db, incident, IncidentState.acknowledged)
        async with db.read() as s:
            state = await service.escalation_state(session=s, actor=SYSTEM, ref=incident)
        assert state.ack_timeout_at == utcnow() + timedelta(minutes=10)
        clock.shift(timedelta(minutes=9))
        await engine.run_due()
        assert len(receiver.received) == 1, "still acknowledged: nobody else is paged"
        clock.shift(timedelta(minutes=1))
        await engine.run_due()
        async with db.read() as s:
            assert (await incidents.get_incident(session=s, actor=SYSTEM, ref=incident)).state == "new"
        assert keys(receiver)[1].startswith(f"esc:{incident}:g2:r0:s0:u"), "a new run pages the first step"
        assert receiver.received[1].path == "/responder"

        await move(db, incident, IncidentState.acknowledged)
        await move(db, incident, IncidentState.in_progress)
        clock.shift(timedelta(minutes=30))
        await engine.run_due()
    assert len(receiver.received) == 2, "work started: the second acknowledgement never timed out"
    withdrawn = await entries(db, incident, EntryKind.state_changed)
    assert "Acknowledgement withdrawn: acknowledgement timed out after 10 min" in withdrawn


async def test_escalate_now_fires_the_next_step_at_once(
    db: Database, people: People, world: World, engine: Engine, receiver: HttpReceiver
) -> None:
    with time_machine.travel(utcnow(), tick=False):
        incident = await open_incident(db, world)
        await engine.run_due()
        async with db.write() as s:
            state = await service.escalate_now(session=s, actor=actor_of(people, "responder"), ref=incident)
        assert (state.round, state.step, state.next_step_at) == (0, 1, utcnow())
        await engine.run_due()
    assert paths(receiver) == ["/responder", "/manager"]
    assert (await entries(db, incident))[1:] == [
        "Escalated now: Step 2 of 'Platform escalation' (round 1 of 2) fires at once",
        "Step 2 of 'Platform escalation' (round 1 of 2): paged Manager",
    ]


async def test_reassigning_pages_the_new_target_from_the_first_step_and_hands_on_an_acknowledged_incident(
    db: Database, people: People, world: World, engine: Engine, receiver: HttpReceiver
) -> None:
    await reachable(db, people.other_responder.user_id, receiver.url("/other"))
    manager = actor_of(people, "manager")
    with time_machine.travel(utcnow(), tick=False) as clock:
        incident = await open_incident(db, world)
        await engine.run_due()
        async with db.write() as s:
            state = await service.reassign(
                session=s, actor=manager, ref=incident, user_id=people.other_responder.user_id
            )
        assert (state.source, state.target_kind, state.generation) == ("manual", "user", 2)
        await engine.run_due()
        assert paths(receiver) == ["/responder", "/other"]

        await move(db, incident, IncidentState.acknowledged)
        async with db.write() as s:
            await service.reassign(session=s, actor=manager, ref=incident, schedule_id=world.schedule_id)
            assert (await incidents.get_incident(session=s, actor=SYSTEM, ref=incident)).state == "new"
        await engine.run_due()
        clock.shift(timedelta(minutes=15))
        await engine.run_due()
    assert paths(receiver) == ["/responder", "/other", "/responder"]
    assert await entries(db, incident) == [
        "Step 1 of 'Platform escalation' (round 1 of 2): paged Responder (on call for Platform primary)",
        "Escalation reassigned to Other Responder",
        "Step 1 of the direct page: paged Other Responder",
        "Escalation stopped: incident acknowledged",
        "Escalation reassigned to whoever is on call for Platform primary",
        "Step 1 of the direct page: paged Responder (on call for Platform primary)",
        "Escalation the direct page exhausted, nobody acknowledged",
    ]


async def test_a_deactivated_or_absent_on_call_person_is_skipped_and_recorded(
    db: Database, people: People, world: World, engine: Engine, receiver: HttpReceiver
) -> None:
    async with db.write() as s:
        await auth.update_user(session=s, actor=SYSTEM, user_id=people.responder.user_id, active=False)
    with time_machine.travel(utcnow(), tick=False) as clock:
        incident = await open_incident(db, world)
        await engine.run_due()
        assert receiver.received == []
        clock.shift(MINUTES_5)
        await engine.run_due()
    assert paths(receiver) == ["/manager"], "the step moved on after its delay"
    assert (await entries(db, incident))[:2] == [
        "Step 1 of 'Platform escalation' (round 1 of 2): nobody paged "
        "(Responder (on call for Platform primary) is deactivated)",
        "Step 2 of 'Platform escalation' (round 1 of 2): paged Manager",
    ]

    async with db.write() as s:
        [layer] = (await service.get_schedule(session=s, actor=SYSTEM, schedule_id=world.schedule_id)).layers
        await service.delete_layer(session=s, actor=SYSTEM, schedule_id=world.schedule_id, layer_id=layer.id)
    with time_machine.travel(utcnow(), tick=False):
        other = await open_incident(db, world)
        await engine.run_due()
    assert await entries(db, other) == [
        "Step 1 of 'Platform escalation' (round 1 of 2): nobody paged (nobody on call for Platform primary)"
    ]


async def test_firing_the_same_step_twice_pages_nobody_twice(
    db: Database, world: World, engine: Engine, receiver: HttpReceiver
) -> None:
    incident = await open_incident(db, world)
    async with db.read() as s:
        [timer] = await engine_timers.pending(session=s, kind=runs.STEP)
    fired = Fired(timer.id, timer.kind, timer.subject, timer.due_at, timer.payload, 1, "test/1")
    ctx: EngineContext = engine.worker.ctx
    first = await escalation.step_handler(ctx, fired)
    again = await escalation.step_handler(ctx, fired)  # e.g. a crash before the outcome was written
    assert isinstance(first, Again) and isinstance(again, Again)
    assert again == first, "the replay only realigns the timer with the run"
    assert len(await outbox(db, incident)) == 1
    assert len(await entries(db, incident)) == 1


async def test_a_failed_page_is_on_the_timeline_with_its_reason(
    db: Database, world: World, engine: Engine, receiver: HttpReceiver
) -> None:
    receiver.fail_next(1, status=410)
    with time_machine.travel(utcnow(), tick=False):
        incident = await open_incident(db, world, priority_one=False)
        await engine.run_due()
    assert receiver.received == []
    [message] = await outbox(db, incident)
    assert (message.status, message.event) == (OutboxStatus.failed, NotifyEvent.paged)
    assert await entries(db, incident, EntryKind.notification) == [
        "Paged Responder via webhook: failed: HTTP 410: ok"
    ]


async def test_incidents_without_a_service_policy_run_their_teams_default_and_follow_a_service_change(
    db: Database, people: People, world: World, engine: Engine, receiver: HttpReceiver
) -> None:
    async with db.write() as s:
        team_policy = await service.create_policy(
            session=s,
            actor=SYSTEM,
            name="Team A fallback",
            steps=[service.StepSpec(10, [service.Target(TargetKind.user, people.manager.user_id)])],
        )
        await service.set_team_escalation(
            session=s, actor=SYSTEM, team_id=people.team_a, policy_id=team_policy.id
        )
    with time_machine.travel(utcnow(), tick=False):
        incident = await open_incident(db, world, service_ids=[], team_id=people.team_a, priority_one=False)
        await engine.run_due()
        assert paths(receiver) == ["/manager"]
        assert receiver.received[0].json["urgency"] == "low", "a P3 pages with low urgency"
        async with db.write() as s:
            await incidents.update_incident(
                session=s, actor=SYSTEM, ref=incident, service_ids=[world.service_id]
            )
        await engine.run_due()
    assert paths(receiver) == ["/manager", "/responder"]
    assert (await entries(db, incident))[1:] == [
        "Escalation now follows 'Platform escalation' (its services changed)",
        "Step 1 of 'Platform escalation' (round 1 of 2): paged Responder (on call for Platform primary)",
    ]


async def test_an_incident_nothing_routes_is_not_escalated(
    db: Database, world: World, engine: Engine
) -> None:
    incident = await open_incident(db, world, service_ids=[])
    async with db.read() as s:
        assert await ours(s) == []
        assert (await service.escalation_state(session=s, actor=SYSTEM, ref=incident)).status == "none"


async def test_a_team_step_pages_each_active_member_once_and_a_deleted_policy_stops_the_run(
    db: Database, people: People, world: World, engine: Engine, receiver: HttpReceiver
) -> None:
    await reachable(db, people.other_responder.user_id, receiver.url("/other"))
    async with db.write() as s:
        await auth.set_member(
            session=s, actor=SYSTEM, team_id=people.team_a, user_id=people.other_responder.user_id
        )
        policy = await service.create_policy(
            session=s,
            actor=SYSTEM,
            name="All hands",
            steps=[
                service.StepSpec(
                    5,
                    [
                        service.Target(TargetKind.team, people.team_a),
                        service.Target(TargetKind.user, people.responder.user_id),
                    ],
                )
            ],
            repeat_count=1,
        )
    with time_machine.travel(utcnow(), tick=False) as clock:
        incident = await open_incident(db, world, service_ids=[])
        async with db.write() as s:
            await service.reassign(session=s, actor=SYSTEM, ref=incident, policy_id=policy.id)
        await engine.run_due()
        assert sorted(paths(receiver)) == ["/other", "/responder"], "the responder once, though named twice"
        async with db.write() as s:
            await service.delete_policy(session=s, actor=SYSTEM, policy_id=policy.id)
        clock.shift(MINUTES_5)
        await engine.run_due()
    assert len(receiver.received) == 2
    assert await entries(db, incident) == [
        "Escalation reassigned to policy 'All hands'",
        "Step 1 of 'All hands' (round 1 of 2): paged Responder (member of Team A) and "
        "Other Responder (member of Team A)",
        "Escalation stopped: its policy was deleted",
    ]
