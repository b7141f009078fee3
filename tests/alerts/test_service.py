"""Ingesting alert events: de-duplication semantics, concurrent writers, heartbeats and mail."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
import time_machine
from sqlalchemy import select

from tocsin.alerts import service
from tocsin.alerts.adapters.base import Action, AlertEvent
from tocsin.alerts.heartbeat import HEARTBEAT_KEY, heartbeat_due
from tocsin.alerts.models import Alert, AlertStatus, IntegrationKind, Severity
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database, utcnow
from tocsin.errors import NotFound

pytestmark = pytest.mark.anyio
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


async def integration(
    db: Database,
    service_id: int,
    kind: IntegrationKind = IntegrationKind.generic,
    config: dict[str, object] | None = None,
) -> tuple[int, str]:
    async with db.write() as s:
        row, key = await service.create_integration(
            session=s, actor=SYSTEM, service_id=service_id, name=f"{kind} source", kind=kind, config=config
        )
        return row.id, key


def event(key: str, action: Action = Action.trigger, **fields: object) -> AlertEvent:
    return AlertEvent(dedup_key=key, action=action, **{"summary": f"alert {key}", **fields})  # type: ignore[arg-type]


async def send(
    db: Database, integration_id: int, *events: AlertEvent, now: datetime = T0
) -> service.IngestResult:
    async with db.write() as s:
        return await service.ingest(session=s, integration_id=integration_id, events=list(events), now=now)


async def alerts(db: Database) -> list[Alert]:
    async with db.read() as s:
        return list(await s.scalars(select(Alert).order_by(Alert.id)))


async def test_a_repeated_trigger_updates_the_open_alert(db: Database, service_id: int) -> None:
    iid, _ = await integration(db, service_id)
    opened = await send(db, iid, event("k", severity=Severity.warning, labels={"a": "1"}))
    later = T0 + timedelta(minutes=5)
    again = await send(
        db, iid, event("k", summary="worse", severity=Severity.critical, labels={"a": "2"}), now=later
    )
    assert again.updated == opened.opened
    [alert] = await alerts(db)
    assert (alert.count, alert.summary, alert.severity, alert.labels) == (2, "worse", "critical", {"a": "2"})
    assert (alert.first_seen_at, alert.last_seen_at) == (T0, later)


async def test_a_trigger_after_resolve_opens_a_new_alert(db: Database, service_id: int) -> None:
    iid, _ = await integration(db, service_id)
    await send(db, iid, event("k"))
    resolved = await send(db, iid, event("k", Action.resolve), now=T0 + timedelta(minutes=1))
    reopened = await send(db, iid, event("k"), now=T0 + timedelta(minutes=2))
    first, second = await alerts(db)
    assert resolved.resolved == [first.id] and reopened.opened == [second.id]
    assert (first.status, first.resolved_at) == (AlertStatus.resolved, T0 + timedelta(minutes=1))
    assert (second.status, second.count, second.resolved_at) == (AlertStatus.triggered, 1, None)


async def test_acknowledge_and_resolve_without_an_open_alert_do_nothing(
    db: Database, service_id: int
) -> None:
    iid, _ = await integration(db, service_id)
    result = await send(db, iid, event("nothing", Action.acknowledge), event("nothing", Action.resolve))
    assert (result.acknowledged, result.resolved) == ([], [])
    assert await alerts(db) == []


async def test_an_acknowledged_alert_stays_acknowledged_when_it_fires_again(
    db: Database, service_id: int
) -> None:
    iid, _ = await integration(db, service_id)
    await send(db, iid, event("k"))
    await send(db, iid, event("k", Action.acknowledge), now=T0 + timedelta(seconds=30))
    await send(db, iid, event("k"), now=T0 + timedelta(seconds=60))
    [alert] = await alerts(db)
    assert (alert.status, alert.count, alert.acknowledged_at) == (
        "acknowledged",
        2,
        T0 + timedelta(seconds=30),
    )


async def test_keys_are_scoped_to_their_integration(db: Database, service_id: int) -> None:
    one, _ = await integration(db, service_id)
    two, _ = await integration(db, service_id)
    await send(db, one, event("same"))
    await send(db, two, event("same"))
    assert [a.integration_id for a in await alerts(db)] == [one, two]


async def test_two_processes_delivering_the_same_alerts_at_once_make_each_alert_once(
    db: Database, service_id: int
) -> None:
    iid, _ = await integration(db, service_id)
    batch = [event(f"fp-{i:03}") for i in range(200)]
    peers = [
        Database(db.url, pool_size=2) for _ in range(2)
    ]  # two Alertmanager HA peers, two Tocsin processes
    try:
        await asyncio.gather(*(send(peer, iid, *batch) for peer in peers))
    finally:
        for peer in peers:
            await peer.dispose()
    rows = await alerts(db)
    assert len(rows) == 200 and {a.count for a in rows} == {2}


async def test_one_batch_can_fire_resolve_and_fire_again_many_alerts(db: Database, service_id: int) -> None:
    iid, _ = await integration(db, service_id)
    keys = [f"fp-{i:03}" for i in range(40)]  # enough for PostgreSQL's COPY path, twice in one transaction
    storm = [event(k) for k in keys] + [event(k, Action.resolve) for k in keys] + [event(k) for k in keys]
    result = await send(db, iid, *storm)
    assert (len(result.opened), len(result.resolved), result.updated) == (80, 40, [])
    rows = await alerts(db)
    assert sorted(a.status for a in rows) == ["resolved"] * 40 + ["triggered"] * 40
    resolved = await send(db, iid, *(event(k, Action.resolve) for k in keys), now=T0 + timedelta(hours=1))
    assert len(resolved.resolved) == 40
    again = await send(db, iid, *(event(k) for k in keys), *(event(k) for k in keys))
    assert len(again.opened) == 40 and {a.count for a in await alerts(db) if a.status == "triggered"} == {2}


async def test_a_repeated_cloudevent_is_dropped(db: Database, service_id: int) -> None:
    iid, _ = await integration(db, service_id, IntegrationKind.cloudevents)
    once = event("k", once=("/src", "evt-1"))
    first = await send(db, iid, once, once)
    second = await send(db, iid, once)
    assert (len(first.opened), first.repeats, second.repeats) == (1, 1, 1)
    [alert] = await alerts(db)
    assert alert.count == 1


# --- heartbeats ------------------------------------------------------------------------------------


def test_heartbeat_due_is_last_checkin_plus_interval_plus_grace() -> None:
    assert heartbeat_due(T0, timedelta(minutes=5), timedelta(minutes=1)) == T0 + timedelta(minutes=6)


async def test_a_silent_heartbeat_opens_one_alert_and_the_next_checkin_resolves_it(
    db: Database, service_id: int
) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        iid, _ = await integration(
            db, service_id, IntegrationKind.heartbeat, {"interval_seconds": 300, "grace_seconds": 60}
        )
        async with db.write() as s:
            await service.checkin(session=s, integration_id=iid, now=utcnow())
        clock.shift(timedelta(seconds=359))
        async with db.write() as s:
            early = await service.expire_heartbeat(session=s, integration_id=iid, now=utcnow())
        assert early == service.HeartbeatCheck(overdue=False, due_at=T0 + timedelta(seconds=360))
        assert await alerts(db) == []

        clock.shift(timedelta(seconds=1))
        async with db.write() as s:
            late = await service.expire_heartbeat(session=s, integration_id=iid, now=utcnow())
        assert late is not None and late.overdue
        [alert] = await alerts(db)
        assert (alert.dedup_key, alert.status) == (HEARTBEAT_KEY, "triggered")
        assert "missed its check-in (last check-in 2024-03-01 12:00:00 UTC)" in alert.summary

        clock.shift(timedelta(minutes=10))
        async with db.write() as s:
            await service.checkin(session=s, integration_id=iid, now=utcnow())
        [alert] = await alerts(db)
        assert (alert.status, alert.resolved_at) == ("resolved", T0 + timedelta(seconds=960))


async def test_a_heartbeat_that_never_checked_in_is_due_from_its_creation(
    db: Database, service_id: int
) -> None:
    with time_machine.travel(T0, tick=False):
        iid, _ = await integration(db, service_id, IntegrationKind.heartbeat, {"interval_seconds": 60})
    async with db.write() as s:
        check = await service.expire_heartbeat(session=s, integration_id=iid, now=T0 + timedelta(hours=1))
    assert check == service.HeartbeatCheck(overdue=True, due_at=T0 + timedelta(seconds=120))
    [alert] = await alerts(db)
    assert "no check-in yet" in alert.summary


async def test_expiring_something_that_is_not_an_active_heartbeat_does_nothing(
    db: Database, service_id: int
) -> None:
    iid, _ = await integration(db, service_id, IntegrationKind.generic)
    async with db.write() as s:
        assert await service.expire_heartbeat(session=s, integration_id=iid, now=T0) is None
        assert await service.expire_heartbeat(session=s, integration_id=10_000, now=T0) is None


# --- mail ------------------------------------------------------------------------------------------


def mail(subject: str) -> bytes:
    message = EmailMessage()
    message["From"] = "monitor@example.com"
    message["Subject"] = subject
    message.set_content("details here")
    return message.as_bytes()


async def test_mail_to_an_integration_address_opens_and_resolves_by_plus_key(
    db: Database, service_id: int
) -> None:
    _, key = await integration(db, service_id, IntegrationKind.email)
    async with db.write() as s:
        await service.ingest_email(
            session=s, recipient=f"{key.upper()}+db1@alerts.example", raw=mail("Disk full"), now=T0
        )
    async with db.write() as s:
        await service.ingest_email(
            session=s, recipient=f"{key}+db1@alerts.example", raw=mail("RESOLVED: all good"), now=T0
        )
    [alert] = await alerts(db)
    assert (alert.dedup_key, alert.summary, alert.status) == ("db1", "Disk full", "resolved")
    assert alert.details["body"] == "details here"


async def test_mail_to_an_unknown_or_non_email_address_is_refused(db: Database, service_id: int) -> None:
    _, generic_key = await integration(db, service_id, IntegrationKind.generic)
    for recipient in ("nobody@alerts.example", f"{generic_key}@alerts.example"):
        async with db.write() as s:
            with pytest.raises(NotFound):
                await service.ingest_email(session=s, recipient=recipient, raw=mail("x"), now=T0)
