"""The service layer as other domains use it: the system actor, timeline + audit on every change, seeding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.conftest import People
from tocsin.audit import service as audit
from tocsin.auth.models import Role
from tocsin.auth.permissions import SYSTEM, Actor
from tocsin.db import Database, make_sync_engine
from tocsin.errors import Conflict, Forbidden, NotFound
from tocsin.incidents import service
from tocsin.incidents.models import (
    EntryKind,
    IncidentRole,
    IncidentState,
    IncidentType,
    MajorStatus,
    PriorityCell,
    ResolutionCode,
    SourceChannel,
    TimelineEntry,
    Visibility,
)
from tocsin.incidents.seed import seed_incidents

pytestmark = pytest.mark.anyio
T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def responder(people: People) -> Actor:
    return Actor(
        kind="user",
        user_id=people.responder.user_id,
        role=Role.responder,
        name="Responder",
        team_ids=frozenset({people.team_a}),
    )


async def test_the_system_opens_and_acknowledges_incidents_for_alerts_and_escalation(db: Database) -> None:
    async with db.write() as s:
        inc = await service.create_incident(
            session=s,
            actor=SYSTEM,
            title="HighErrorRate on checkout",
            impact=1,
            urgency=1,
            source_channel=SourceChannel.alert,
            detected_at=T0,
            now=T0 + timedelta(seconds=5),
        )
        await service.transition(
            session=s,
            actor=SYSTEM,
            ref=inc.id,
            target=IncidentState.acknowledged,
            now=T0 + timedelta(minutes=3),
        )
    async with db.read() as s:
        got = await service.get_incident(session=s, actor=SYSTEM, ref=f"INC-{inc.id}")
        entries, _ = await service.timeline(session=s, actor=SYSTEM, ref=inc.id)
    assert got.reporter_id is None and got.priority == 1 and got.source_channel == "alert"
    assert got.detected_at == T0 and got.reported_at == T0 + timedelta(seconds=5)
    assert got.acknowledged_at == T0 + timedelta(minutes=3)
    assert [(e.actor, e.actor_name, e.kind) for e in entries] == [
        ("system", "system", EntryKind.created),
        ("system", "system", EntryKind.state_changed),
    ]


async def test_every_change_lands_on_the_timeline_and_in_the_audit_chain(
    people: People, db: Database
) -> None:
    me = responder(people)
    async with db.write() as s:
        parent = await service.create_incident(session=s, actor=me, title="Parent", now=T0)
        inc = await service.create_incident(
            session=s, actor=me, title="Queue backlog", team_id=people.team_a, now=T0
        )
        steps = [
            service.update_incident(session=s, actor=me, ref=inc.id, title="Queue backlog growing", now=T0),
            service.update_incident(session=s, actor=me, ref=inc.id, impact=1, now=T0),
            service.update_incident(session=s, actor=me, ref=inc.id, detected_at=T0, now=T0),
            service.update_incident(session=s, actor=me, ref=inc.id, parent=parent.id, now=T0),
            service.assign(session=s, actor=me, ref=inc.id, assignee_id=me.user_id, now=T0),
            service.set_role(
                session=s, actor=me, ref=inc.id, role=IncidentRole.scribe, user_id=me.user_id, now=T0
            ),
            service.clear_role(session=s, actor=me, ref=inc.id, role=IncidentRole.scribe, now=T0),
            service.set_major(
                session=s, actor=me, ref=inc.id, status=MajorStatus.proposed, reason="big", now=T0
            ),
            service.add_note(session=s, actor=me, ref=inc.id, text="Scaling consumers", now=T0),
            service.add_note(
                session=s,
                actor=me,
                ref=inc.id,
                text="We are on it",
                visibility=Visibility.stakeholder,
                now=T0,
            ),
            service.transition(session=s, actor=me, ref=inc.id, target=IncidentState.in_progress, now=T0),
            service.transition(
                session=s,
                actor=me,
                ref=inc.id,
                target=IncidentState.resolved,
                now=T0,
                resolution_code=ResolutionCode.workaround_provided,
                resolution_summary="Scaled",
            ),
        ]
        for step in steps:
            await step
    async with db.read() as s:
        entries, _ = await service.timeline(session=s, actor=SYSTEM, ref=inc.id)
        trail = list(reversed(await audit.entries_for(session=s, entity_type="incident", entity_id=inc.id)))
    assert len(entries) == len(trail) == len(steps) + 1
    assert all(e.actor == me.ref and e.actor_name == "Responder" for e in entries)
    assert [a.action for a in trail] == [
        "incident.create",
        "incident.update",
        "incident.priority",
        "incident.timestamps",
        "incident.parent",
        "incident.assign",
        "incident.role.set",
        "incident.role.clear",
        "incident.major.proposed",
        "incident.note.internal",
        "incident.note.stakeholder",
        "incident.transition.in_progress",
        "incident.transition.resolved",
    ]
    assert trail[2].before["priority"] == 4 and trail[2].after["priority"] == 3
    assert trail[-1].after["resolution_code"] == "workaround_provided"
    engine = make_sync_engine(db.url)
    with engine.connect() as conn:
        assert audit.verify(conn).ok
    engine.dispose()


async def test_a_refused_change_leaves_no_trace(people: People, db: Database) -> None:
    me = responder(people)
    async with db.write() as s:
        inc = await service.create_incident(session=s, actor=me, title="Disk full", now=T0)
    with pytest.raises(Conflict):
        async with db.write() as s:
            await service.update_incident(session=s, actor=me, ref=inc.id, title="Disk full on db-3", now=T0)
            await service.transition(session=s, actor=me, ref=inc.id, target=IncidentState.closed, now=T0)
    async with db.read() as s:
        entries, _ = await service.timeline(session=s, actor=SYSTEM, ref=inc.id)
        assert (
            len(entries) == 1
            and (await service.get_incident(session=s, actor=me, ref=inc.id)).title == "Disk full"
        )
    outsider = Actor(
        kind="user",
        user_id=people.other_responder.user_id,
        role=Role.responder,
        name="Other",
        team_ids=frozenset({people.team_b}),
    )
    async with db.write() as s:
        secret = await service.create_incident(
            session=s, actor=me, title="Leak", type_key="data_protection", team_id=people.team_a, now=T0
        )
    async with db.read() as s:
        with pytest.raises(NotFound):
            await service.get_incident(session=s, actor=outsider, ref=secret.id)
        rows, _ = await service.list_incidents(session=s, actor=outsider)
        assert [r.id for r in rows] == [inc.id]
    async with db.write() as s:
        team_a = await service.create_incident(session=s, actor=me, title="Team A's", team_id=people.team_a)
    async with db.write() as s:
        with pytest.raises(Forbidden):
            await service.update_incident(session=s, actor=outsider, ref=team_a.id, title="Mine now")


async def test_seeding_again_adds_nothing_and_keeps_what_admins_changed(db: Database) -> None:
    async with db.write() as s:
        await service.update_type(session=s, actor=SYSTEM, key="facility", name="Buildings")
        cells = [(i, u, 1) for i in (1, 2, 3) for u in (1, 2, 3)]
        await service.replace_matrix(session=s, actor=SYSTEM, cells=cells)
    async with db.write() as s:
        await seed_incidents(s)
    async with db.read() as s:
        assert await s.scalar(select(func.count()).select_from(IncidentType)) == 7
        assert await s.scalar(select(func.count()).select_from(PriorityCell)) == 9
        assert (await service.get_type(session=s, key="facility")).name == "Buildings"
        assert set((await service.get_matrix(session=s)).values()) == {1}
        assert await s.scalar(select(func.count()).select_from(TimelineEntry)) == 0
