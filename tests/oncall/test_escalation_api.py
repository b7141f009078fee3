"""Escalation through the REST API: the policy services and teams run, an incident's escalation, warnings."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.conftest import People
from tests.oncall.conftest import Engine, World, open_incident
from tocsin.auth import service as auth
from tocsin.auth.models import TeamRole
from tocsin.auth.permissions import SYSTEM
from tocsin.catalog import service as catalog
from tocsin.db import Database
from tocsin.incidents import service as incidents
from tocsin.incidents.models import IncidentState
from tocsin.oncall import service

pytestmark = pytest.mark.anyio
V1 = "/api/v1"


async def test_catalog_managers_and_the_owning_teams_managers_set_a_services_policy(
    db: Database, people: People, world: World
) -> None:
    async with db.write() as s:
        await catalog.create_service(
            session=s, actor=SYSTEM, slug="billing", name="Billing", owner_team_id=people.team_b
        )
        await auth.set_member(
            session=s,
            actor=SYSTEM,
            team_id=people.team_b,
            user_id=people.other_responder.user_id,
            team_role=TeamRole.manager,
        )
    body = {"policy_id": world.policy_id, "ack_timeout_minutes": 15, "urgency_mode": "high"}
    r = await people.responder.client.put(f"{V1}/services/billing/escalation", json=body)
    assert r.status_code == 403, "a responder who does not manage the owning team may not"
    r = await people.other_responder.client.put(f"{V1}/services/billing/escalation", json=body)
    assert r.status_code == 200, r.text
    assert r.json() | {"updated_at": None} == {
        "service_id": r.json()["service_id"],
        "policy_id": world.policy_id,
        "ack_timeout_minutes": 15,
        "urgency_mode": "high",
        "updated_at": None,
    }
    r = await people.viewer.client.get(f"{V1}/services/billing/escalation")
    assert (r.status_code, r.json()["urgency_mode"]) == (200, "high")
    assert (await people.reporter.client.get(f"{V1}/services/billing/escalation")).status_code == 403

    r = await people.manager.client.put(f"{V1}/services/billing/escalation", json={"policy_id": 999_999})
    assert r.status_code == 422 and "policy_id" in r.json()["detail"]
    r = await people.manager.client.put(
        f"{V1}/services/billing/escalation", json={"policy_id": world.policy_id, "ack_timeout_minutes": 0}
    )
    assert r.status_code == 422
    r = await people.manager.client.delete(f"{V1}/escalation-policies/{world.policy_id}")
    assert r.status_code == 409, "a policy a service runs cannot be deleted from under it"
    assert "service 'billing'" in r.json()["detail"] and "service 'platform'" in r.json()["detail"]

    assert (await people.manager.client.delete(f"{V1}/services/billing/escalation")).status_code == 204
    r = await people.manager.client.get(f"{V1}/services/billing/escalation")
    assert r.status_code == 404 and "billing" in r.json()["detail"]


async def test_a_teams_default_policy_is_set_by_its_managers(
    db: Database, people: People, world: World
) -> None:
    url = f"{V1}/teams/{people.team_a}/escalation"
    assert (await people.responder.client.put(url, json={"policy_id": world.policy_id})).status_code == 403
    r = await people.manager.client.put(url, json={"policy_id": world.policy_id})
    assert (r.status_code, r.json()["team_id"], r.json()["urgency_mode"]) == (
        200,
        people.team_a,
        "by_priority",
    )
    assert (await people.responder.client.get(url)).json()["policy_id"] == world.policy_id
    assert (await people.admin.client.delete(url)).status_code == 204
    assert (await people.admin.client.get(url)).status_code == 404
    assert (await people.admin.client.get(f"{V1}/teams/999999/escalation")).status_code == 404


async def test_people_who_work_an_incident_see_escalate_and_reassign_it(
    db: Database, people: People, world: World, engine: Engine
) -> None:
    incident = await open_incident(db, world, team_id=people.team_a)
    url = f"{V1}/incidents/INC-{incident}"
    r = await people.viewer.client.get(f"{url}/escalation")
    assert r.status_code == 200
    state = r.json()
    assert (state["status"], state["policy_name"], state["source"], state["round"], state["step"]) == (
        "running",
        "Platform escalation",
        "service",
        0,
        0,
    )
    assert state["next_step_at"] is not None
    await engine.run_due()
    r = await people.responder.client.get(f"{url}/escalation")
    assert [(p["name"], p["reason"]) for p in r.json()["paged"]] == [
        ("Responder", "on call for Platform primary")
    ]

    assert (await people.viewer.client.post(f"{url}/escalate")).status_code == 403
    assert (await people.other_responder.client.post(f"{url}/escalate")).status_code == 403, "team B's"
    assert (await people.reporter.client.post(f"{url}/escalate")).status_code == 404
    assert (await people.reporter.client.get(f"{url}/escalation")).status_code == 404
    r = await people.responder.client.post(f"{url}/escalate")
    assert (r.status_code, r.json()["step"]) == (200, 1)

    r = await people.responder.client.post(
        f"{url}/reassign", json={"user_id": people.manager.user_id, "policy_id": world.policy_id}
    )
    assert r.status_code == 422, "exactly one target"
    r = await people.responder.client.post(f"{url}/reassign", json={"user_id": 999_999})
    assert r.status_code == 422 and "user_id" in r.json()["detail"]
    r = await people.responder.client.post(f"{url}/reassign", json={"policy_id": world.policy_id})
    assert (r.status_code, r.json()["source"], r.json()["generation"]) == (200, "manual", 2)

    async with db.write() as s:
        await incidents.transition(session=s, actor=SYSTEM, ref=incident, target=IncidentState.in_progress)
    r = await people.responder.client.post(f"{url}/escalate")
    assert r.status_code == 409 and "in progress" in r.json()["detail"]
    r = await people.responder.client.post(f"{url}/reassign", json={"schedule_id": world.schedule_id})
    assert r.status_code == 409
    assert (await people.responder.client.get(f"{url}/escalation")).json()["status"] == "stopped"


async def test_escalate_now_on_an_incident_nothing_routes_says_what_to_do(
    db: Database, people: People, world: World
) -> None:
    incident = await open_incident(db, world, service_ids=[])
    r = await people.responder.client.post(f"{V1}/incidents/INC-{incident}/escalate")
    assert r.status_code == 409 and "reassign it" in r.json()["detail"]
    assert (await people.responder.client.get(f"{V1}/incidents/INC-{incident}/escalation")).json()[
        "status"
    ] == "none"


async def test_a_schedule_warns_about_people_a_page_would_not_reach(
    db: Database, people: People, world: World
) -> None:
    url = f"{V1}/schedules/{world.schedule_id}"
    assert (await people.viewer.client.get(f"{url}/warnings")).json() == []
    async with db.write() as s:
        await service.add_layer(
            session=s,
            actor=SYSTEM,
            schedule_id=world.schedule_id,
            name="weekends",
            participants=[people.other_responder.user_id],
            rotation_start=datetime(2024, 1, 6),
        )
    r = await people.viewer.client.get(f"{url}/warnings")
    assert [(w["user_id"], w["name"]) for w in r.json()] == [
        (people.other_responder.user_id, "Other Responder")
    ]
    assert "contact method" in r.json()[0]["problem"]
    r = await people.viewer.client.get(url)
    assert [w["user_id"] for w in r.json()["warnings"]] == [people.other_responder.user_id]
    assert (await people.reporter.client.get(f"{url}/warnings")).status_code == 403


async def test_a_reporter_sees_their_incident_but_not_whom_it_paged(
    db: Database, people: People, world: World
) -> None:
    incident = await open_incident(db, world, reporter_id=people.reporter.user_id)
    client = people.reporter.client
    assert (await client.get(f"{V1}/incidents/INC-{incident}")).status_code == 200
    assert (await client.get(f"{V1}/incidents/INC-{incident}/escalation")).status_code == 403
