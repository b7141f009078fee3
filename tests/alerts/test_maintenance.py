"""Maintenance windows: alerts inside are stored but open nothing; when one ends, what it held is routed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine

from tests.alerts.flow import alerts, am, incident_list, integration, resolved, send
from tests.conftest import People
from tocsin.alerts import timers
from tocsin.alerts.models import Suppression
from tocsin.config import Settings
from tocsin.db import Database, utcnow
from tocsin.engine.handlers import EngineContext
from tocsin.engine.worker import Worker

pytestmark = pytest.mark.anyio
WINDOWS = "/api/v1/maintenance-windows"


async def add_window(people: People, **body: Any) -> dict[str, Any]:
    start = utcnow() - timedelta(minutes=1)
    payload = {
        "name": "database upgrade",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
        **body,
    }
    r = await people.admin.client.post(WINDOWS, json=payload)
    assert r.status_code == 201, r.text
    window: dict[str, Any] = r.json()
    return window


def worker(db: Database, settings: Settings) -> Worker:
    return Worker(EngineContext(db=db, settings=settings), timers.HANDLERS, listen=False)


async def fire_due(db: Database, settings: Settings, now: datetime) -> int:
    w = worker(db, settings)
    due = await w.claim_due(now)
    for fired in due:
        await w.fire(fired)
    return len(due)


async def test_windows_are_managed_through_the_api(people: People, service_id: int) -> None:
    window = await add_window(people, service_id=service_id)
    assert (await people.viewer.client.get(WINDOWS)).json()[0]["id"] == window["id"]
    moved = await people.manager.client.patch(f"{WINDOWS}/{window['id']}", json={"name": "db v16"})
    assert moved.status_code == 200 and moved.json()["name"] == "db v16"
    assert (await people.viewer.client.post(WINDOWS, json={})).status_code in (403, 422)
    assert (await people.manager.client.delete(f"{WINDOWS}/{window['id']}")).status_code == 204
    assert (await people.viewer.client.get(WINDOWS)).json() == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"service_id": None, "matchers": []}, "would quiet everything"),
        ({"ends_at": "2000-01-01T00:00:00Z", "starts_at": "1999-12-31T00:00:00Z"}, "in the past"),
        ({"ends_at": "2000-01-01T00:00:00Z"}, "after starts_at"),
        ({"matchers": [{"field": "labels.x", "op": "regex", "value": "["}]}, "does not compile"),
    ],
)
async def test_invalid_windows_are_refused(
    people: People, service_id: int, body: dict[str, Any], says: str
) -> None:
    start = utcnow()
    payload = {
        "name": "w",
        "service_id": service_id,
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
        **body,
    }
    r = await people.admin.client.post(WINDOWS, json=payload)
    assert r.status_code == 422 and says in r.text, r.text


async def test_alerts_inside_a_window_are_stored_suppressed_and_open_no_incident(
    people: People, db: Database, service_id: int
) -> None:
    window = await add_window(people, service_id=service_id)
    iid = await integration(db, service_id)
    result = await send(db, iid, am("a"), am("b"), now=utcnow())
    stored = await alerts(db)
    assert result.suppressed == [a.id for a in stored] and result.incidents_opened == []
    assert {a.suppressed_by for a in stored} == {Suppression.maintenance}
    assert stored[0].suppressed_reason == f"maintenance window #{window['id']}: database upgrade"
    assert await incident_list(db) == []


async def test_a_label_window_quiets_only_the_alerts_it_matches(
    people: People, db: Database, service_id: int
) -> None:
    await add_window(people, matchers=[{"field": "labels.env", "op": "equals", "value": "staging"}])
    iid = await integration(db, service_id)
    await send(db, iid, am("a", env="staging"), am("b", "Other", env="prod"), now=utcnow())
    assert [a.suppressed for a in await alerts(db)] == [True, False]
    assert len(await incident_list(db)) == 1


async def test_when_the_window_ends_its_still_open_alerts_are_routed(
    people: People, db: Database, settings: Settings, service_id: int
) -> None:
    window = await add_window(people, service_id=service_id)
    iid = await integration(db, service_id)
    await send(db, iid, am("still-firing"), am("recovered"), now=utcnow())
    await send(db, iid, resolved("recovered"), now=utcnow())
    end = datetime.fromisoformat(window["ends_at"])
    with time_machine.travel(end + timedelta(seconds=1), tick=False):
        assert await fire_due(db, settings, utcnow()) == 1
    [opened] = await incident_list(db)
    by_key = {a.dedup_key: a for a in await alerts(db)}
    firing, recovered = by_key["still-firing"], by_key["recovered"]
    assert (firing.incident_id, firing.suppressed) == (opened.id, False)
    assert (recovered.incident_id, recovered.suppressed) == (None, True)


async def test_cancelling_a_window_routes_what_it_held_at_once(
    people: People, db: Database, settings: Settings, service_id: int
) -> None:
    window = await add_window(people, service_id=service_id)
    iid = await integration(db, service_id)
    await send(db, iid, am("a"), now=utcnow())
    assert (await people.admin.client.delete(f"{WINDOWS}/{window['id']}")).status_code == 204
    assert await fire_due(db, settings, utcnow() + timedelta(seconds=1)) == 1
    assert len(await incident_list(db)) == 1 and not (await alerts(db))[0].suppressed
