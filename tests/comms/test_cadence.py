"""Communication cadence: the comms lead is reminded when stakeholders have not heard in time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from sqlalchemy import select

from tests.comms.conftest import fire_reminders
from tests.conftest import People
from tocsin.auth.permissions import SYSTEM
from tocsin.comms import cadence
from tocsin.comms import service as comms
from tocsin.config import Settings
from tocsin.db import Database
from tocsin.engine import service as engine
from tocsin.incidents import service as incidents
from tocsin.incidents.models import (
    EntryKind,
    IncidentRole,
    IncidentState,
    ResolutionCode,
    TimelineEntry,
    Visibility,
)
from tocsin.notify.models import OutboxMessage

pytestmark = pytest.mark.anyio
T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


async def open_incident(db: Database, impact: int = 1, urgency: int = 1, **fields: Any) -> int:
    async with db.write() as s:
        incident = await incidents.create_incident(
            session=s, actor=SYSTEM, title="Checkout is down", impact=impact, urgency=urgency, **fields
        )
        return incident.id


async def reminder_due(db: Database, incident_id: int) -> datetime | None:
    async with db.read() as s:
        timers = await engine.pending(session=s, kind=cadence.REMINDER, subject=str(incident_id))
    return timers[0].due_at if timers else None


async def reminders(db: Database, incident_id: int) -> list[tuple[str, int | None]]:
    """The reminder entries on the timeline, each with whom its outbox row went to."""
    async with db.read() as s:
        texts = list(
            await s.scalars(
                select(TimelineEntry.text)
                .where(TimelineEntry.incident_id == incident_id, TimelineEntry.kind == EntryKind.reminder)
                .order_by(TimelineEntry.id)
            )
        )
        users = list(
            await s.scalars(
                select(OutboxMessage.user_id)
                .where(OutboxMessage.incident_id == incident_id, OutboxMessage.event == "reminder")
                .order_by(OutboxMessage.id)
            )
        )
    return list(zip(texts, users + [None] * (len(texts) - len(users)), strict=True))


async def note(db: Database, incident_id: int, visibility: Visibility) -> None:
    async with db.write() as s:
        await incidents.add_note(
            session=s, actor=SYSTEM, ref=incident_id, text="We are on it", visibility=visibility
        )


async def set_role(db: Database, incident_id: int, role: IncidentRole, user_id: int) -> None:
    async with db.write() as s:
        await incidents.set_role(session=s, actor=SYSTEM, ref=incident_id, role=role, user_id=user_id)


async def test_a_p1_reminds_its_comms_lead_every_30_minutes_without_a_stakeholder_update(
    db: Database, settings: Settings, people: People, clock: Any
) -> None:
    inc = await open_incident(db)
    await set_role(db, inc, IncidentRole.comms_lead, people.responder.user_id)
    assert await reminder_due(db, inc) == T0 + 30 * M

    clock.move_to(T0 + 29 * M)
    assert await fire_reminders(db, settings) == 0
    clock.move_to(T0 + 30 * M)
    assert await fire_reminders(db, settings) == 1
    assert await reminders(db, inc) == [
        (f"No stakeholder update for 30 min on INC-{inc}; reminded the comms lead", people.responder.user_id)
    ]
    assert await reminder_due(db, inc) == T0 + 60 * M, "and again an interval later"

    clock.move_to(T0 + 60 * M)
    assert await fire_reminders(db, settings) == 1
    assert (await reminders(db, inc))[-1][0].startswith("No stakeholder update for 60 min")


async def test_a_stakeholder_note_moves_the_reminder_and_an_internal_one_does_not(
    db: Database, settings: Settings, clock: Any
) -> None:
    inc = await open_incident(db)
    clock.move_to(T0 + 20 * M)
    await note(db, inc, Visibility.internal)
    assert await reminder_due(db, inc) == T0 + 30 * M
    await note(db, inc, Visibility.stakeholder)
    assert await reminder_due(db, inc) == T0 + 50 * M
    clock.move_to(T0 + 30 * M)
    assert await fire_reminders(db, settings) == 0


async def test_resolving_stops_the_reminders_and_reopening_starts_them_again(
    db: Database, settings: Settings, clock: Any
) -> None:
    inc = await open_incident(db)
    async with db.write() as s:
        await incidents.transition(
            session=s,
            actor=SYSTEM,
            ref=inc,
            target=IncidentState.resolved,
            resolution_code=ResolutionCode.solution_provided,
            resolution_summary="Fixed",
        )
    assert await reminder_due(db, inc) is None
    clock.move_to(T0 + 45 * M)
    assert await fire_reminders(db, settings) == 0
    async with db.write() as s:
        await incidents.transition(session=s, actor=SYSTEM, ref=inc, target=IncidentState.in_progress)
    assert await reminder_due(db, inc) == T0 + 75 * M


async def test_priority_decides_the_cadence_and_a_change_retargets_it_from_the_last_update(
    db: Database, clock: Any
) -> None:
    low = await open_incident(db, impact=2, urgency=2)  # P3: no cadence by default
    assert await reminder_due(db, low) is None
    p1 = await open_incident(db)
    clock.move_to(T0 + 10 * M)
    async with db.write() as s:
        await incidents.update_incident(session=s, actor=SYSTEM, ref=p1, impact=1, urgency=2)  # P2: hourly
        await incidents.update_incident(session=s, actor=SYSTEM, ref=low, impact=1, urgency=1)
    assert await reminder_due(db, p1) == T0 + 60 * M, "counted from the last update (its creation)"
    assert await reminder_due(db, low) == T0 + 40 * M, "a cadence that starts now"
    async with db.write() as s:
        await incidents.update_incident(session=s, actor=SYSTEM, ref=p1, impact=3, urgency=3)
    assert await reminder_due(db, p1) is None


@pytest.mark.parametrize("holder", ["commander", "assignee", "nobody"])
async def test_without_a_comms_lead_the_commander_then_the_assignee_is_reminded(
    db: Database, settings: Settings, people: People, clock: Any, holder: str
) -> None:
    inc = await open_incident(db, assignee_id=people.responder.user_id if holder == "assignee" else None)
    if holder == "commander":
        await set_role(db, inc, IncidentRole.commander, people.manager.user_id)
    clock.move_to(T0 + 30 * M)
    await fire_reminders(db, settings)
    expected = {
        "commander": ("reminded the commander", people.manager.user_id),
        "assignee": ("reminded the assignee", people.responder.user_id),
        "nobody": ("nobody to remind (no comms lead, commander or assignee)", None),
    }[holder]
    [(text, user)] = await reminders(db, inc)
    assert text.endswith(expected[0]) and user == expected[1]


async def test_a_removed_default_cadence_stays_removed_when_seeding_runs_again(db: Database) -> None:
    async with db.write() as s:
        await comms.replace_cadence(session=s, actor=SYSTEM, rules=[(1, 15)])
        await comms.seed_comms(s)
    async with db.read() as s:
        rules = [(r.priority, r.interval_minutes) for r in await comms.list_cadence(session=s)]
    assert rules == [(1, 15)]
