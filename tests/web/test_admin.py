"""Configuration and on-call edited through the pages: each form reaches its service and shows the result."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import People
from tests.web.conftest import Login
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database, utcnow
from tocsin.incidents import service as incidents
from tocsin.oncall import service as oncall

pytestmark = pytest.mark.anyio


async def test_the_priority_matrix_is_edited_as_a_grid(login: Login, db: Database) -> None:
    b = await login("admin@example.com")
    cells = {f"p{i}{u}": "4" for i in (1, 2, 3) for u in (1, 2, 3)} | {"p11": "2"}
    assert (await b.post("/admin/matrix", cells)).status_code == 303
    async with db.read() as s:
        matrix = await incidents.get_matrix(session=s)
    assert matrix[(1, 1)] == 2 and matrix[(3, 3)] == 4
    r = await b.post("/admin/matrix", cells | {"p22": "9"})
    assert r.status_code == 422 and "impact 2 x urgency 2" in r.text


async def test_a_type_gets_and_loses_a_field(login: Login, db: Database) -> None:
    b = await login("admin@example.com")
    field = {"name": "shift", "label": "Shift", "kind": "choice", "choices": "early, late, night"}
    assert (await b.post("/admin/types/facility/fields", field)).status_code == 303
    page = (await b.get("/report?type=facility")).text
    assert 'name="x_shift"' in page and ">night<" in page
    r = await b.post("/admin/types/facility/fields", {**field, "name": "other", "choices": ""})
    assert r.status_code == 422 and "choices" in r.text
    assert (await b.post("/admin/types/facility/fields/shift/delete")).status_code == 303
    assert 'name="x_shift"' not in (await b.get("/report?type=facility")).text


async def test_users_and_teams_are_managed_from_their_pages(login: Login, people: People) -> None:
    b = await login("admin@example.com")
    r = await b.post(
        "/admin/users",
        {"email": "new@example.com", "name": "New Person", "role": "responder", "password": "long enough pw"},
    )
    assert r.status_code == 303
    assert "New Person" in (await b.get("/admin/users")).text
    r = await b.post(f"/admin/teams/{people.team_a}/members", {"user_id": str(people.viewer.user_id)})
    assert r.status_code == 303
    teams = (await b.get("/admin/teams")).text
    assert "Viewer" in teams.split('id="team-')[1]
    r = await b.post(f"/admin/users/{people.viewer.user_id}", {"role": "viewer"})  # unticked: deactivated
    assert r.status_code == 303
    assert "deactivated" in (await b.get("/admin/users")).text


async def test_templates_and_sla_targets_are_edited(login: Login) -> None:
    b = await login("admin@example.com")
    r = await b.post("/admin/templates/paged/email", {"subject": "PAGE {{ incident.ref }}", "body": "Go"})
    assert r.status_code == 303
    assert "PAGE {{ incident.ref }}" in (await b.get("/admin/templates")).text
    r = await b.post("/admin/templates/paged/email", {"subject": "{{ broken", "body": "Go"})
    assert r.status_code == 422
    assert (await b.post("/admin/templates/paged/email", {"reset": "true"})).status_code == 303
    page = (await b.get("/admin/sla")).text
    policy = page.split('id="sla-', 1)[1].split('"', 1)[0]
    r = await b.post(
        f"/admin/sla/{policy}", {"response_minutes": "7", "resolution_minutes": "61", "active": "true"}
    )
    assert r.status_code == 303, r.text
    assert 'value="61"' in (await b.get("/admin/sla")).text
    r = await b.post("/admin/sla", {"name": "Twice", "priority": "1", "response_minutes": "5"})
    assert r.status_code == 409 and "already covers P1" in r.text


async def test_overrides_feeds_and_policies_from_the_on_call_pages(
    login: Login, people: People, db: Database
) -> None:
    async with db.write() as s:
        schedule = await oncall.create_schedule(
            session=s, actor=SYSTEM, name="Primary", time_zone="Europe/Paris", team_id=people.team_a
        )
    b = await login("admin@example.com")
    start = (utcnow() + timedelta(days=1)).astimezone(ZoneInfo("Europe/Paris")).replace(tzinfo=None)
    r = await b.post(
        f"/oncall/schedules/{schedule.id}/overrides",
        {
            "user_id": str(people.responder.user_id),
            "starts": start.strftime("%Y-%m-%dT%H:%M"),
            "ends": (start + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M"),
            "reason": "swap",
        },
    )
    assert r.status_code == 303, r.text
    page = (await b.get(f"/oncall/schedules/{schedule.id}?view=month")).text
    assert "swap" in page and "Responder" in page
    feed = await b.post(f"/oncall/schedules/{schedule.id}/feed")
    assert feed.status_code == 200 and "/api/v1/ical/schedules/tcf_" in feed.text
    r = await b.post(
        "/oncall/policies", {"name": "Team A", "delay_minutes": "5", "target": f"schedule:{schedule.id}"}
    )
    assert r.status_code == 303, r.text
    policy = r.headers["location"]
    r = await b.post(f"{policy}/steps", {"delay_minutes": "10", "target": f"user:{people.manager.user_id}"})
    assert r.status_code == 303
    text = (await b.get(policy)).text
    assert "Primary" in text and "Manager" in text and "wait 10 min" in text
    assert (await b.post(f"{policy}/steps/0/delete")).status_code == 303
    assert "Primary</a>" not in (await b.get(policy)).text
    assert (await b.get("/oncall")).status_code == 200
