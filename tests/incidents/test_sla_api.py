"""The SLA over HTTP: an incident's clocks, the summary in detail and list, and SLA configuration."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from tests.conftest import People
from tests.incidents.conftest import API, create, move
from tests.incidents.test_sla import fire_due
from tocsin.config import Settings
from tocsin.db import Database

pytestmark = pytest.mark.anyio
T0 = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
OFFICE = [{"day": d, "start": "09:00", "end": "17:00"} for d in ("mon", "tue", "wed", "thu", "fri")]


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


async def test_an_incidents_sla_shows_each_clock_with_the_time_left(people: People, clock: Any) -> None:
    inc = await create(people.responder, impact=1, urgency=1)
    assert [(c["kind"], c["state"], c["remaining_seconds"]) for c in inc["sla"]] == [
        ("response", "running", 900),
        ("resolution", "running", 3600),
    ], "the answer to the create already shows the clocks"
    assert inc["sla_status"] == "running"

    clock.move_to(T0 + timedelta(minutes=5))
    r = await people.viewer.client.get(f"{API}/incidents/{inc['ref']}/sla")
    assert r.status_code == 200, r.text
    response, resolution = r.json()
    assert response == {
        "kind": "response",
        "cycle": 1,
        "state": "running",
        "target_minutes": 15,
        "target": "15 min",
        "calendar": None,
        "started_at": "2024-06-03T12:00:00Z",
        "warn_at": "2024-06-03T12:11:15Z",
        "due_at": "2024-06-03T12:15:00Z",
        "remaining_seconds": 600,
        "paused": False,
        "paused_total_seconds": 0,
        "warned_at": None,
        "breached_at": None,
        "met_at": None,
        "stopped_at": None,
    }
    assert resolution["remaining_seconds"] == 3300

    held = await move(people.responder, inc["ref"], "on_hold", hold_reason="awaiting_vendor")
    assert [(c["kind"], c["state"], c["paused"]) for c in held["sla"]] == [
        ("response", "met", False),
        ("resolution", "paused", True),
    ]
    assert held["sla_status"] == "paused"


async def test_the_detail_and_the_list_show_a_breach_at_a_glance(
    db: Database, settings: Settings, people: People, clock: Any
) -> None:
    late = await create(people.responder, "Payments down", impact=1, urgency=1)
    calm = await create(people.responder, "Printer jam")
    clock.move_to(T0 + timedelta(minutes=15))
    await fire_due(db, settings)
    await fire_due(db, settings)

    r = await people.viewer.client.get(f"{API}/incidents/{late['ref']}")
    assert r.json()["sla_status"] == "breached"
    assert r.json()["sla"][0]["breached_at"] == "2024-06-03T12:15:00Z"
    assert r.json()["sla"][0]["remaining_seconds"] == 0
    r = await people.viewer.client.get(f"{API}/incidents")
    assert {i["ref"]: i["sla_status"] for i in r.json()["items"]} == {
        late["ref"]: "breached",
        calm["ref"]: "running",
    }


async def test_hidden_incidents_have_no_visible_sla(people: People) -> None:
    secret = await create(people.responder, type="security", team_id=people.team_a)
    r = await people.other_responder.client.get(f"{API}/incidents/{secret['ref']}/sla")
    assert r.status_code == 404


async def test_the_defaults_are_seeded_from_the_domain_reference(people: People) -> None:
    r = await people.viewer.client.get(f"{API}/sla-policies")
    assert r.status_code == 200
    assert [
        (p["priority"], p["response_minutes"], p["resolution_minutes"], p["calendar"]) for p in r.json()
    ] == [
        (1, 15, 60, None),
        (2, 30, 240, None),
        (3, 240, 1440, None),
        (4, 1440, 2880, None),
    ]
    r = await people.viewer.client.get(f"{API}/business-calendars")
    assert [c["key"] for c in r.json()] == ["office_hours"]


async def test_admins_manage_calendars_and_policies(people: People) -> None:
    admin = people.admin.client
    r = await admin.post(
        f"{API}/business-calendars",
        json={
            "key": "london",
            "name": "London office",
            "time_zone": "Europe/London",
            "windows": OFFICE,
            "holidays": ["2024-12-26", "2024-12-25"],
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["holidays"] == ["2024-12-25", "2024-12-26"]
    r = await admin.post(
        f"{API}/sla-policies",
        json={
            "name": "Security P1",
            "priority": 1,
            "type": "security",
            "response_minutes": 10,
            "resolution_minutes": 480,
            "calendar": "london",
            "warn_percent": 50,
        },
    )
    assert r.status_code == 201, r.text
    policy = r.json()
    assert (policy["type"], policy["calendar"], policy["notify_managers"]) == ("security", "london", True)

    r = await admin.patch(
        f"{API}/sla-policies/{policy['id']}", json={"calendar": None, "response_minutes": 5}
    )
    assert (r.status_code, r.json()["calendar"], r.json()["response_minutes"]) == (200, None, 5)
    r = await admin.patch(f"{API}/business-calendars/london", json={"time_zone": "Europe/Dublin"})
    assert (r.status_code, r.json()["time_zone"]) == (200, "Europe/Dublin")
    inc = await create(people.responder, type="security", impact=1, urgency=1, team_id=people.team_a)
    assert inc["sla"][0]["target_minutes"] == 5, "the most specific policy applies"

    r = await admin.get(f"{API}/sla-policies", params={"priority": 1})
    assert [p["name"] for p in r.json()] == ["P1 critical", "Security P1"]
    assert (await admin.delete(f"{API}/sla-policies/{policy['id']}")).status_code == 204
    assert (await admin.delete(f"{API}/business-calendars/london")).status_code == 204
    assert (await admin.get(f"{API}/business-calendars/london")).status_code == 404


async def test_configuration_mistakes_are_refused_with_what_to_change(people: People) -> None:
    admin = people.admin.client
    bad_zone = {"key": "mars", "name": "Mars", "time_zone": "Mars/Olympus", "windows": OFFICE}
    r = await admin.post(f"{API}/business-calendars", json=bad_zone)
    assert r.status_code == 422 and "unknown time zone" in r.json()["detail"]
    backwards = {
        "key": "x",
        "name": "X",
        "time_zone": "UTC",
        "windows": [{"day": "mon", "start": "17:00", "end": "09:00"}],
    }
    r = await admin.post(f"{API}/business-calendars", json=backwards)
    assert r.status_code == 422 and "later time" in r.json()["detail"]

    r = await admin.post(f"{API}/sla-policies", json={"name": "Dup", "priority": 1, "response_minutes": 5})
    assert r.status_code == 409 and "P1 critical" in r.json()["detail"]
    r = await admin.post(f"{API}/sla-policies", json={"name": "Empty", "priority": 2, "type": "security"})
    assert r.status_code == 422 and "response_minutes" in r.json()["detail"]
    r = await admin.post(
        f"{API}/sla-policies",
        json={"name": "Nowhere", "priority": 2, "response_minutes": 5, "calendar": "nope"},
    )
    assert r.status_code == 422 and "no business calendar 'nope'" in r.json()["detail"]
    r = await admin.post(
        f"{API}/sla-policies", json={"name": "X", "priority": 2, "type": "nope", "response_minutes": 5}
    )
    assert r.status_code == 422 and "no incident type 'nope'" in r.json()["detail"]

    r = await admin.post(
        f"{API}/sla-policies",
        json={
            "name": "Office P4",
            "priority": 4,
            "type": "facility",
            "resolution_minutes": 60,
            "calendar": "office_hours",
        },
    )
    assert r.status_code == 201
    r = await admin.delete(f"{API}/business-calendars/office_hours")
    assert r.status_code == 409 and "Office P4" in r.json()["detail"]


@pytest.mark.parametrize("who", ["viewer", "responder", "manager"])
async def test_only_admins_change_sla_configuration(people: People, who: str) -> None:
    client = getattr(people, who).client
    policy = {"name": "X", "priority": 2, "type": "security", "response_minutes": 5}
    calendar = {"key": "x", "name": "X", "time_zone": "UTC", "windows": OFFICE}
    refused = [
        await client.post(f"{API}/sla-policies", json=policy),
        await client.patch(f"{API}/sla-policies/1", json={"response_minutes": 1}),
        await client.delete(f"{API}/sla-policies/1"),
        await client.post(f"{API}/business-calendars", json=calendar),
        await client.patch(f"{API}/business-calendars/office_hours", json={"name": "Y"}),
        await client.delete(f"{API}/business-calendars/office_hours"),
    ]
    assert [r.status_code for r in refused] == [403] * 6
    assert (await client.get(f"{API}/sla-policies/1")).status_code == 200
    assert (await people.anonymous.get(f"{API}/sla-policies")).status_code == 401
