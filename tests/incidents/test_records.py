"""Opening and editing incident records: extra fields per type, known timestamps, services, bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import People
from tests.incidents.conftest import API, create, timeline
from tocsin.auth.permissions import SYSTEM
from tocsin.catalog import service as catalog
from tocsin.db import Database

pytestmark = pytest.mark.anyio

INJURY = {
    "event_date": "2024-05-02",
    "event_time": "14:05",
    "location": "Packing line 2",
    "what_happened": "Hand caught in the sealing press",
    "actual_severity": "lost_time",
    "potential_severity": "lost_time",
    "employee_name": "Ana Ruiz",
    "employee_birth_date": "1990-04-12",
    "hospitalized_overnight": False,
    "injury": "Crushed left index finger",
}


async def test_a_safety_incident_carries_the_osha_301_record(people: People) -> None:
    c = people.responder.client
    r = await c.post(f"{API}/incidents", json={"title": "Hand injury at the press", "type": "safety"})
    assert r.status_code == 422
    for name in ("event_date", "location", "what_happened", "actual_severity", "potential_severity"):
        assert f"extra.{name}" in r.json()["detail"]
    inc = await create(people.responder, title="Hand injury at the press", type="safety", extra=INJURY)
    assert inc["extra"] == INJURY and not inc["confidential"]
    ref = inc["ref"]
    patch = {
        "extra": {"treatment_facility": "St Mary's", "emergency_room": True, "employee_birth_date": None}
    }
    patched = (await c.patch(f"{API}/incidents/{ref}", json=patch)).json()
    assert patched["extra"]["emergency_room"] and "employee_birth_date" not in patched["extra"]
    assert patched["extra"]["location"] == "Packing line 2"  # merge patch keeps the rest
    r = await c.patch(f"{API}/incidents/{ref}", json={"extra": {"location": None}})
    assert r.status_code == 422 and "extra.location" in r.json()["detail"]
    r = await c.patch(f"{API}/incidents/{ref}", json={"extra": {"witness": "Bo"}})
    assert r.status_code == 422 and "not a field of type safety" in r.json()["detail"]
    r = await c.patch(f"{API}/incidents/{ref}", json={"extra": {"death_date": "tomorrow"}})
    assert r.status_code == 422 and "ISO date" in r.json()["detail"]
    [edit] = [e for e in await timeline(people.responder, ref) if e["kind"] == "edited"]
    assert edit["text"] == "Edited extra.emergency_room, extra.employee_birth_date, extra.treatment_facility"


async def test_a_security_incident_takes_impact_scales_and_typed_indicators(people: People) -> None:
    extra = {
        "functional_impact": "medium",
        "information_impact": "proprietary",
        "recoverability": "extended",
        "indicators": [
            {"type": "ip", "value": "203.0.113.7"},
            {"type": "email", "value": "ceo@evil.example"},
        ],
    }
    inc = await create(people.responder, title="Spear phishing", type="security", extra=extra)
    assert inc["confidential"] and inc["extra"]["indicators"][1]["type"] == "email"
    r = await people.responder.client.post(
        f"{API}/incidents", json={"title": "x", "type": "security", "extra": {"information_impact": "total"}}
    )
    assert r.status_code == 422 and "none, privacy, proprietary, integrity" in r.json()["detail"]
    r = await people.responder.client.post(
        f"{API}/incidents",
        json={
            "title": "x",
            "type": "security",
            "extra": {"indicators": [{"type": "ip", "value": "not-an-ip"}]},
        },
    )
    assert r.status_code == 422 and "not a valid ip" in r.json()["detail"]


async def test_known_timestamps_are_editable_checked_and_on_the_record(people: People) -> None:
    c, ref = people.responder.client, (await create(people.responder))["ref"]
    start = datetime.now(UTC) - timedelta(hours=2)
    body = {
        "impact_started_at": start.isoformat(),
        "detected_at": (start + timedelta(minutes=4)).isoformat(),
        "mitigated_at": (start + timedelta(minutes=50)).isoformat(),
    }
    got = (await c.patch(f"{API}/incidents/{ref}", json=body)).json()
    assert datetime.fromisoformat(got["detected_at"]) - datetime.fromisoformat(
        got["impact_started_at"]
    ) == timedelta(minutes=4)
    late = {"detected_at": (start - timedelta(minutes=1)).isoformat()}
    r = await c.patch(f"{API}/incidents/{ref}", json=late)
    assert r.status_code == 422 and "before impact_started_at" in r.json()["detail"]
    future = {"mitigated_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    assert (await c.patch(f"{API}/incidents/{ref}", json=future)).status_code == 422
    naive = await c.patch(f"{API}/incidents/{ref}", json={"detected_at": "2024-05-01T10:00:00"})
    assert naive.status_code == 422 and "timezone" in naive.json()["detail"]
    cleared = (await c.patch(f"{API}/incidents/{ref}", json={"mitigated_at": None})).json()
    assert cleared["mitigated_at"] is None
    texts = [e["text"] for e in await timeline(people.responder, ref) if e["kind"] == "timestamp_set"]
    assert (
        len(texts) == 2
        and texts[0].startswith("impact_started_at set to")
        and texts[1] == "mitigated_at cleared"
    )


async def test_services_fields_and_confidentiality_changes_are_recorded_once(
    people: People, db: Database
) -> None:
    async with db.write() as s:
        web = (await catalog.create_service(session=s, actor=SYSTEM, slug="web", name="Web")).id
        db_ = (await catalog.create_service(session=s, actor=SYSTEM, slug="db", name="Database")).id
    c = people.responder.client
    ref = (await create(people.responder, service_ids=[web]))["ref"]
    got = (
        await c.patch(
            f"{API}/incidents/{ref}",
            json={"service_ids": [db_, db_, web], "title": "Web and DB down", "confidential": True},
        )
    ).json()
    assert (
        got["service_ids"] == sorted([web, db_]) and got["title"] == "Web and DB down" and got["confidential"]
    )
    r = await c.patch(f"{API}/incidents/{ref}", json={"service_ids": [999_999]})
    assert r.status_code == 422 and "no service with id 999999" in r.json()["detail"]
    before = len(await timeline(people.responder, ref))
    same = await c.patch(
        f"{API}/incidents/{ref}", json={"title": "Web and DB down", "service_ids": [web, db_]}
    )
    assert same.status_code == 200 and len(await timeline(people.responder, ref)) == before  # nothing changed
    kinds = [(e["kind"], e["text"]) for e in await timeline(people.responder, ref)][1:]
    assert kinds == [
        ("edited", "Edited title, confidential (now confidential)"),
        ("services_changed", f"Services: added [{db_}]"),
    ]


async def test_bad_input_is_a_clear_4xx_never_a_500(people: People) -> None:
    c, ref = people.responder.client, (await create(people.responder))["ref"]
    cases = [
        ("post", "/incidents", {"title": "x", "colour": "red"}, "unknown field"),
        ("post", "/incidents", {"title": ""}, "title"),
        ("post", "/incidents", {"title": "x", "impact": 4}, "impact"),
        ("post", "/incidents", {"title": "x", "impact": "high"}, "impact"),
        ("post", "/incidents", {"title": "x\x00y"}, "NUL"),
        ("post", "/incidents", {"title": "x", "extra": {"k\x00": 1}}, "NUL"),
        ("post", "/incidents", {"title": "x", "team_id": 2**63}, "team_id"),
        ("post", "/incidents", {"title": "x", "service_ids": [0]}, "service_ids"),
        ("post", "/incidents", {"title": "x", "team_id": 999_999}, "team_id: no team with id 999999"),
        (
            "post",
            "/incidents",
            {"title": "x", "team_id": 999_999, "service_ids": [999_998]},
            "team_id: no team with id 999999",
        ),
        ("post", "/incidents", {"title": "x", "service_ids": [999_998, 999_999]}, "id 999998, 999999"),
        ("post", "/incidents", {"title": "x", "detected_at": "0001-01-01T00:00:00+01:00"}, "out of range"),
        ("post", "/incidents", {"title": "x", "source_channel": "pigeon"}, "source_channel"),
        ("post", "/incidents", {"title": "x", "parent": "INC-abc"}, "parent"),
        ("post", "/incidents", {"title": "x", "parent": 2**70}, "parent"),
        ("patch", f"/incidents/{ref}", {"parent": -1}, "parent"),
        ("patch", f"/incidents/{ref}", {"title": None}, "cannot be null"),
        ("patch", f"/incidents/{ref}", {"extra": None}, "cannot be null"),
        ("patch", f"/incidents/{ref}", {"type": "security"}, "unknown field"),
        ("post", f"/incidents/{ref}/state", {"state": "solved"}, "state"),
        ("post", f"/incidents/{ref}/state", {"state": "resolved", "duplicate_of": "INC-"}, "duplicate_of"),
        (
            "post",
            f"/incidents/{ref}/state",
            {"state": "cancelled", "reason": "d", "duplicate_of": 2**64},
            "dupl",
        ),
        ("post", f"/incidents/{ref}/notes", {"text": "x", "visibility": "public"}, "visibility"),
        ("post", f"/incidents/{ref}/assign", {"assignee_id": "me"}, "assignee_id"),
    ]
    for method, path, body, expected in cases:
        r = await c.request(method, f"{API}{path}", json=body)
        assert r.status_code in (404, 409, 422), (path, body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert expected in r.text, (body, r.text)
    for path in ("/incidents/INC-99999999999999999999", "/incidents/%00", "/incident-types/x%00"):
        r = await c.get(f"{API}{path}")
        assert r.status_code in (404, 422), (path, r.text)
    r = await c.post(f"{API}/incidents", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422


async def test_a_create_writes_each_row_once_and_knows_a_new_incidents_services(db: Database) -> None:
    """Creating writes the incident once (its SLA status is known before the INSERT, no UPDATE follows),
    and an edit in the same unit of work keeps the services the SLA policy is chosen by current."""
    from sqlalchemy import event

    from tocsin.incidents import service as incidents
    from tocsin.incidents.store import new_services

    async with db.write() as s:
        web = (await catalog.create_service(session=s, actor=SYSTEM, slug="web", name="Web")).id
        api = (await catalog.create_service(session=s, actor=SYSTEM, slug="api", name="API")).id
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with db.write() as s:
            incident = await incidents.create_incident(
                session=s, actor=SYSTEM, title="Web down", impact=1, urgency=1, service_ids=[web]
            )
            created = list(statements)
            await incidents.update_incident(session=s, actor=SYSTEM, ref=incident.id, service_ids=[api])
            assert new_services(s, incident.id) == [api]
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert incident.sla_status == "running"
    assert sum(st.lstrip().upper().startswith("INSERT INTO INCIDENTS ") for st in created) == 1
    updates = [st for st in statements if st.lstrip().upper().startswith("UPDATE INCIDENTS SET")]
    assert not [st for st in updates if "sla_status" in st]
