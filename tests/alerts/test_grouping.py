"""Alerts into incidents: a storm is one incident, the timeline counts, resolution closes the loop."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.alerts.flow import (
    T0,
    alert_entries,
    alerts,
    am,
    incident,
    incident_list,
    integration,
    new_service,
    resolve_incident,
    resolved,
    send,
    services_of,
)
from tocsin.alerts import closing, service
from tocsin.alerts.adapters.base import Action, AlertEvent
from tocsin.alerts.models import AlertStatus, IntegrationKind, Severity
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database
from tocsin.incidents import service as incidents
from tocsin.incidents.matrix import DEFAULT as DEFAULT_MATRIX
from tocsin.incidents.models import EntryKind, IncidentState, ResolutionCode, TimelineEntry
from tocsin.wiring import open_database

pytestmark = pytest.mark.anyio


async def test_a_storm_of_500_alerts_of_one_alertname_opens_one_incident_with_one_timeline_entry(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id)
    result = await send(db, iid, *(am(f"fp{i:03d}") for i in range(500)))
    [opened] = await incident_list(db)
    assert result.incidents_opened == [opened.id]
    assert {a.incident_id for a in await alerts(db)} == {opened.id}
    assert (opened.title, opened.source_channel, opened.detected_at) == ("DiskFull on fp000", "alert", T0)
    assert await services_of(db, opened.id) == [service_id]
    [entry] = await alert_entries(db, opened.id)
    assert entry.text.startswith('500 alerts triggered: "DiskFull on fp000", "DiskFull on fp001"')
    assert entry.data is not None and entry.data["counts"] == {"triggered": 500}


async def test_the_next_webhooks_join_the_open_incident_and_repeats_are_counted(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id)
    await send(db, iid, am("a"), am("b"))
    later = T0 + timedelta(minutes=20)
    result = await send(db, iid, am("a"), am("a"), am("c"), now=later)
    [only] = await incident_list(db)
    assert result.incidents_opened == []
    first, second = await alert_entries(db, only.id)
    assert first.text == '2 alerts triggered: "DiskFull on a", "DiskFull on b"'
    assert second.text == 'Alert "DiskFull on c" triggered; Alert "DiskFull on a" repeated (seen 3 times)'


async def test_other_alertnames_and_services_open_their_own_incidents(db: Database, service_id: int) -> None:
    other_service = await new_service(db, "payments")
    here, there = await integration(db, service_id), await integration(db, other_service)
    await send(db, here, am("a", "DiskFull"), am("b", "HighLatency"))
    await send(db, there, am("c", "DiskFull"))
    found = await incident_list(db)
    assert sorted(i.title for i in found) == ["DiskFull on a", "DiskFull on c", "HighLatency on b"]


async def test_after_the_grouping_window_a_new_incident_opens(db: Database, service_id: int) -> None:
    iid = await integration(db, service_id)
    await send(db, iid, am("a"))
    await send(db, iid, am("b"), now=T0 + timedelta(minutes=59))
    await send(db, iid, am("c"), now=T0 + timedelta(minutes=59 + 61))
    first, second = await incident_list(db)
    assert [a.incident_id for a in await alerts(db)] == [first.id, first.id, second.id]


async def test_the_window_and_grouping_labels_are_per_service_settings(db: Database, service_id: int) -> None:
    iid = await integration(db, service_id)
    async with db.write() as s:
        await service.put_alert_settings(
            session=s, actor=SYSTEM, service_id=service_id, grouping_window_minutes=5, group_by=["team"]
        )
    await send(db, iid, am("a", "DiskFull", team="db"), am("b", "HighCPU", team="db"), am("c", team="web"))
    await send(db, iid, am("d", team="db"), now=T0 + timedelta(minutes=6))
    db_first, web, db_again = await incident_list(db)
    assert [a.incident_id for a in await alerts(db)] == [db_first.id, db_first.id, web.id, db_again.id]


async def test_a_zero_window_gives_each_alert_its_own_incident(db: Database, service_id: int) -> None:
    iid = await integration(db, service_id)
    async with db.write() as s:
        await service.put_alert_settings(
            session=s, actor=SYSTEM, service_id=service_id, grouping_window_minutes=0
        )
    await send(db, iid, am("a"), am("b"))
    await send(db, iid, am("a"), now=T0 + timedelta(minutes=1))
    assert len(await incident_list(db)) == 2


async def test_pagerduty_alerts_group_by_group_and_class_and_others_by_summary(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id, IntegrationKind.pagerduty)
    pd = dict(alertname="")
    await send(
        db,
        iid,
        am("k1", **pd, group="prod", summary="db down"),
        am("k2", **pd, group="prod", summary="api down"),
        am("k3", **pd, summary="Load high"),
        am("k4", **pd, summary="Load high"),
    )
    grouped = [a.incident_id for a in await alerts(db)]
    assert grouped[0] == grouped[1] and grouped[2] == grouped[3] and grouped[0] != grouped[2]


async def test_priority_comes_from_severity_and_the_service_tier(db: Database) -> None:
    tier1 = await new_service(db, "core", tier=1)
    iid = await integration(db, tier1)
    await send(
        db, iid, am("a", "Warn", severity=Severity.warning), am("b", "Crit", severity=Severity.critical)
    )
    warn, crit = await incident_list(db)
    assert (warn.impact, warn.urgency, crit.impact, crit.urgency) == (1, 3, 1, 1)
    assert crit.priority < warn.priority


async def test_more_severe_alerts_joining_raise_the_urgency_and_milder_ones_never_lower_it(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id)
    await send(db, iid, am("a", severity=Severity.warning))
    [opened] = await incident_list(db)
    high = DEFAULT_MATRIX[(opened.impact, 1)]
    assert opened.urgency == 3 and opened.priority > high
    later = T0 + timedelta(minutes=2)
    await send(db, iid, am("b", severity=Severity.critical), now=later)
    [raised] = await incident_list(db)
    assert (raised.urgency, raised.priority) == (1, high)
    await send(db, iid, am("c", severity=Severity.info), now=later + timedelta(minutes=1))
    await send(db, iid, am("b", severity=Severity.warning), now=later + timedelta(minutes=2))
    [kept] = await incident_list(db)
    assert (kept.urgency, kept.priority) == (1, high)
    async with db.write() as s:  # a person decides it can wait
        await incidents.update_incident(session=s, actor=SYSTEM, ref=opened.id, urgency=3, now=later)
    await send(db, iid, am("b", severity=Severity.critical), now=later + timedelta(minutes=3))  # a re-send
    [lowered] = await incident_list(db)
    assert lowered.urgency == 3
    async with db.read() as s:
        entries = list(await s.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == opened.id)))
    [change, _] = [e for e in entries if e.kind == EntryKind.priority_changed]
    assert (change.actor, change.at) == ("system", later)
    assert change.text == f"Impact {opened.impact}, urgency 1: priority P{opened.priority} -> P{high}"


async def test_joining_alerts_leave_a_priority_a_person_overrode(db: Database, service_id: int) -> None:
    iid = await integration(db, service_id)
    await send(db, iid, am("a", severity=Severity.warning))
    [opened] = await incident_list(db)
    async with db.write() as s:
        await incidents.update_incident(
            session=s, actor=SYSTEM, ref=opened.id, priority=4, priority_reason="known noisy", now=T0
        )
    await send(db, iid, am("b", severity=Severity.critical), now=T0 + timedelta(minutes=2))
    [kept] = await incident_list(db)
    assert (kept.urgency, kept.priority, kept.priority_overridden) == (1, 4, True)


async def test_when_all_its_alerts_resolve_the_incident_is_mitigated_and_resolved(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id)
    await send(db, iid, am("a"), am("b"))
    partly = await send(db, iid, resolved("a"), now=T0 + timedelta(minutes=5))
    [opened] = await incident_list(db)
    assert partly.incidents_resolved == [] and (await incident(db, opened.id)).mitigated_at is None
    done = await send(db, iid, resolved("b"), now=T0 + timedelta(minutes=9))
    closed = await incident(db, opened.id)
    assert done.incidents_resolved == [opened.id]
    assert (closed.state, closed.resolution_code, closed.resolution_summary) == (
        IncidentState.resolved,
        ResolutionCode.solution_provided,
        "All alerts resolved",
    )
    assert closed.mitigated_at == T0 + timedelta(minutes=9)
    texts = [e.text for e in await alert_entries(db, opened.id)]
    assert texts[1:] == ['Alert "DiskFull on a" resolved', 'Alert "DiskFull on b" resolved']


async def test_without_auto_resolve_the_incident_is_only_mitigated_until_an_alert_returns(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id)
    async with db.write() as s:
        await service.put_alert_settings(session=s, actor=SYSTEM, service_id=service_id, auto_resolve=False)
    await send(db, iid, am("a"))
    await send(db, iid, resolved("a"), now=T0 + timedelta(minutes=1))
    [opened] = await incident_list(db)
    assert (opened.state, opened.mitigated_at) == (IncidentState.new, T0 + timedelta(minutes=1))
    await send(db, iid, am("a"), now=T0 + timedelta(minutes=2))
    again = await incident(db, opened.id)
    assert (again.state, again.mitigated_at) == (IncidentState.new, None)
    assert len(await incident_list(db)) == 1


async def test_an_incident_resolved_by_a_person_resolves_its_open_alerts(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id)
    await send(db, iid, am("a"), am("b"))
    [opened] = await incident_list(db)
    async with db.write() as s:
        await resolve_incident(s, opened.id)
    assert {a.status for a in await alerts(db)} == {AlertStatus.resolved}
    assert (await alert_entries(db, opened.id))[-1].text == "2 open alert(s) resolved with the incident"
    result = await send(db, iid, am("a"), now=T0 + timedelta(minutes=1))
    assert result.opened and result.incidents_opened and result.incidents_opened != [opened.id]


async def test_acknowledging_an_alert_is_on_the_timeline(db: Database, service_id: int) -> None:
    iid = await integration(db, service_id, IntegrationKind.pagerduty)
    await send(db, iid, am("a"))
    await send(db, iid, AlertEvent(dedup_key="a", action=Action.acknowledge), now=T0 + timedelta(minutes=1))
    [opened] = await incident_list(db)
    assert [e.text for e in await alert_entries(db, opened.id)][-1] == 'Alert "DiskFull on a" acknowledged'


async def test_a_sender_acknowledging_an_alert_acknowledges_its_new_incident(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id, IntegrationKind.pagerduty)
    await send(db, iid, am("a"), am("b"))
    later = T0 + timedelta(minutes=3)
    result = await send(db, iid, AlertEvent(dedup_key="a", action=Action.acknowledge), now=later)
    [acked] = await incident_list(db)
    assert (acked.state, acked.acknowledged_at) == (IncidentState.acknowledged, later)
    assert result.acknowledged and {a.status for a in await alerts(db)} == {
        AlertStatus.acknowledged,
        AlertStatus.triggered,
    }
    async with db.read() as s:
        entries = list(await s.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == acked.id)))
    [entry] = [e for e in entries if e.kind == EntryKind.state_changed]
    assert (entry.actor, entry.at) == ("system", later)
    assert closing.ACKNOWLEDGED_BY_SENDER in entry.text


async def test_a_sender_repeating_its_acknowledgement_does_not_undo_a_withdrawn_one(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id, IntegrationKind.pagerduty)
    await send(db, iid, am("a"))
    ack = AlertEvent(dedup_key="a", action=Action.acknowledge)
    await send(db, iid, ack, now=T0 + timedelta(minutes=1))
    [opened] = await incident_list(db)
    async with db.write() as s:  # e.g. reassigned, or the acknowledgement timed out
        await incidents.transition(
            session=s, actor=SYSTEM, ref=opened.id, target=IncidentState.new, now=T0 + timedelta(minutes=2)
        )
    again = await send(db, iid, ack, now=T0 + timedelta(minutes=3))
    [still] = await incident_list(db)
    assert again.acknowledged == [] and still.state == IncidentState.new


async def test_a_sender_acknowledging_leaves_an_incident_already_being_worked_as_it_is(
    db: Database, service_id: int
) -> None:
    iid = await integration(db, service_id, IntegrationKind.pagerduty)
    await send(db, iid, am("a"))
    [opened] = await incident_list(db)
    async with db.write() as s:
        await incidents.transition(
            session=s, actor=SYSTEM, ref=opened.id, target=IncidentState.in_progress, now=T0
        )
    await send(db, iid, AlertEvent(dedup_key="a", action=Action.acknowledge), now=T0 + timedelta(minutes=1))
    [still] = await incident_list(db)
    assert (still.state, still.acknowledged_at) == (IncidentState.in_progress, T0)


async def test_two_processes_receiving_one_storm_at_once_open_one_incident(
    database_url: str, service_id: int, db: Database
) -> None:
    iid = await integration(db, service_id)
    first, second = open_database(database_url, pool_size=2), open_database(database_url, pool_size=2)
    try:
        await asyncio.gather(
            *(
                send(process, iid, *(am(f"{n}-{i}") for i in range(50)))
                for n, process in enumerate((first, second))
            )
        )
    finally:
        await first.dispose()
        await second.dispose()
    assert len(await incident_list(db)) == 1
    async with db.read() as s:
        entries = await s.scalar(select(func.count(TimelineEntry.id)).where(TimelineEntry.kind == "alert"))
    assert entries == 2


async def test_repeats_alone_reach_the_timeline_at_most_once_a_minute(db: Database, service_id: int) -> None:
    iid = await integration(db, service_id)
    await send(db, iid, am("a"))
    for seconds in (60, 80, 100, 125):
        await send(db, iid, am("a"), now=T0 + timedelta(seconds=seconds))
    [opened] = await incident_list(db)
    texts = [e.text for e in await alert_entries(db, opened.id)]
    assert texts == [
        'Alert "DiskFull on a" triggered',
        'Alert "DiskFull on a" repeated (seen 2 times)',
        'Alert "DiskFull on a" repeated (seen 5 times)',
    ]
    assert [a.count for a in await alerts(db)] == [5]
