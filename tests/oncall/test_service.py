"""The on-call service as other domains call it: who is on call, whom a schedule pages, policies as data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from tests.conftest import People
from tocsin.auth import service as auth
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database
from tocsin.errors import Invalid, NotFound
from tocsin.oncall import service
from tocsin.oncall.models import TargetKind
from tocsin.oncall.rotation import Answer, Source, SourceKind

pytestmark = pytest.mark.anyio

NOW = datetime(2025, 3, 28, 12, tzinfo=UTC)


async def make_schedule(db: Database, people: People) -> int:
    async with db.write() as s:
        schedule = await service.create_schedule(
            session=s, actor=SYSTEM, name="Primary", time_zone="Europe/Paris", team_id=people.team_a
        )
        await service.add_layer(
            session=s,
            actor=SYSTEM,
            schedule_id=schedule.id,
            name="24x7",
            participants=[people.responder.user_id, people.other_responder.user_id],
            rotation_start=datetime(2025, 3, 24, 9),
        )
        schedule_id: int = schedule.id
    return schedule_id


async def test_who_is_on_call_answers_for_escalation_without_an_actor(db: Database, people: People) -> None:
    sid = await make_schedule(db, people)
    async with db.read() as s:
        answer = await service.who_is_on_call(
            session=s, schedule_id=sid, at=datetime(2025, 3, 30, 8, tzinfo=UTC)
        )
        layer_id = (await service.get_schedule(session=s, actor=SYSTEM, schedule_id=sid)).layers[0].id
        assert answer == Answer(people.responder.user_id, Source(SourceKind.layer, layer_id, "24x7"))
        before = await service.who_is_on_call(session=s, schedule_id=sid, at=datetime(2025, 1, 1, tzinfo=UTC))
        assert before == Answer(None, None)
        with pytest.raises(Invalid, match="UTC offset"):
            await service.who_is_on_call(session=s, schedule_id=sid, at=datetime(2025, 3, 30, 8))
        with pytest.raises(NotFound):
            await service.who_is_on_call(session=s, schedule_id=sid + 1, at=NOW)


async def test_participants_of_names_the_rotation_and_users_of_overrides_not_yet_over(
    db: Database, people: People
) -> None:
    sid = await make_schedule(db, people)
    with time_machine.travel(NOW, tick=True):
        async with db.write() as s:
            await service.create_override(
                session=s,
                actor=SYSTEM,
                schedule_id=sid,
                user_id=people.viewer.user_id,
                starts_at=datetime(2025, 4, 1, tzinfo=UTC),
                ends_at=datetime(2025, 4, 2, tzinfo=UTC),
            )
        async with db.read() as s:
            now = await service.participants_of(session=s, schedule_id=sid)
            later = await service.participants_of(
                session=s, schedule_id=sid, at=datetime(2025, 4, 3, tzinfo=UTC)
            )
    rotation = [people.responder.user_id, people.other_responder.user_id]
    assert now == [*rotation, people.viewer.user_id]
    assert later == rotation


async def test_the_engine_reads_a_policy_in_step_order_and_deleting_a_team_drops_it_as_a_target(
    db: Database, people: People
) -> None:
    sid = await make_schedule(db, people)
    steps = [
        service.StepSpec(5, [service.Target(TargetKind.schedule, sid)]),
        service.StepSpec(
            10,
            [
                service.Target(TargetKind.team, people.team_a),
                service.Target(TargetKind.user, people.manager.user_id),
            ],
        ),
    ]
    async with db.write() as s:
        policy = await service.create_policy(
            session=s, actor=SYSTEM, name="DB", steps=steps, team_id=people.team_a
        )
    async with db.read() as s:
        read = await service.get_policy(session=s, actor=SYSTEM, policy_id=policy.id)
        assert [(st.delay_minutes, [(t.kind, t.target_id) for t in st.targets]) for st in read.steps] == [
            (5, [("schedule", sid)]),
            (10, [("team", people.team_a), ("user", people.manager.user_id)]),
        ]
    async with db.write() as s:
        await auth.delete_team(session=s, actor=SYSTEM, team_id=people.team_a)
    async with db.read() as s:
        read = await service.get_policy(session=s, actor=SYSTEM, policy_id=policy.id)
        assert read.team_id is None
        assert [(t.kind, t.target_id) for t in read.steps[1].targets] == [("user", people.manager.user_id)]
        assert (await service.get_schedule(session=s, actor=SYSTEM, schedule_id=sid)).team_id is None
