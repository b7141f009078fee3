"""Working an incident from its page: each action a form post, refusals shown as messages."""

from __future__ import annotations

import pytest

from tests.conftest import People
from tests.web.conftest import Login, open_incident
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database
from tocsin.incidents import service as incidents

pytestmark = pytest.mark.anyio


async def test_a_responder_works_an_incident_from_ack_to_reopen(
    login: Login, people: People, db: Database
) -> None:
    ref = await open_incident(db, team_id=people.team_a)
    b = await login("responder@example.com")
    steps = [
        ("state", {"state": "acknowledged"}),
        ("take", {}),
        ("assign", {"team_id": str(people.team_a), "assignee_id": str(people.responder.user_id)}),
        ("roles", {"role": "commander", "user_id": str(people.responder.user_id)}),
        ("priority", {"impact": "1", "urgency": "1"}),
        ("notes", {"text": "Restarting the pool", "visibility": "internal"}),
        ("notes", {"text": "We are on it", "visibility": "stakeholder"}),
        ("major", {"status": "proposed", "reason": "Checkout down for everyone"}),
        ("state", {"state": "on_hold", "hold_reason": "awaiting_vendor", "reason": "ticket 42"}),
        (
            "state",
            {"state": "resolved", "resolution_code": "solution_provided", "resolution_summary": "Fixed"},
        ),
        ("state", {"state": "in_progress", "reason": "still failing"}),
        ("roles/commander/clear", {}),
    ]
    for action, data in steps:
        r = await b.post(f"/incidents/{ref}/{action}", data)
        assert r.status_code == 303, f"{action}: {r.text[:500]}"
        assert r.headers["location"].startswith(f"/incidents/{ref}")
    async with db.read() as s:
        incident = await incidents.get_incident(session=s, actor=SYSTEM, ref=ref)
    assert incident.state == "in_progress" and incident.reopen_count == 1
    assert incident.assignee_id == people.responder.user_id and incident.priority == 1
    assert incident.major_status == "proposed"
    page = (await b.get(f"/incidents/{ref}")).text
    assert "Restarting the pool" in page and "Reopened" in page


async def test_a_refused_action_shows_the_reason_not_a_500(login: Login, db: Database) -> None:
    ref = await open_incident(db)
    b = await login("admin@example.com")
    r = await b.post(f"/incidents/{ref}/state", {"state": "resolved", "resolution_code": "duplicate"})
    assert r.status_code == 422
    assert "resolution_summary" in r.text and "<title>" in r.text
    r = await b.post(f"/incidents/{ref}/state", {"state": "closed"})
    assert r.status_code == 409 and "allowed from new" in r.text
    r = await b.post(f"/incidents/{ref}/state", {"state": "flying"})
    assert r.status_code == 422
    r = await b.post(
        f"/incidents/{ref}/state", {"state": "closed"}, headers={"HX-Request": "true", "X-CSRF-Token": b.csrf}
    )
    assert r.status_code == 409 and r.headers["HX-Retarget"] == "#flash"
    assert "<html" not in r.text and "allowed from new" in r.text


async def test_a_viewer_gets_no_action_forms_and_cannot_post_them(login: Login, db: Database) -> None:
    ref = await open_incident(db)
    b = await login("viewer@example.com")
    page = (await b.get(f"/incidents/{ref}")).text
    assert "Acknowledge" not in page and "Add note" not in page
    r = await b.post(f"/incidents/{ref}/state", {"state": "acknowledged"})
    assert r.status_code == 403


async def test_a_reporter_comments_on_their_own_incident(login: Login, people: People, db: Database) -> None:
    b = await login("reporter@example.com")
    r = await b.post("/report", {"type": "it_service", "title": "Wifi down on floor 2"})
    ref = r.headers["location"].rsplit("/", 1)[1]
    async with db.write() as s:
        await incidents.add_note(session=s, actor=SYSTEM, ref=ref, text="internal only")
    r = await b.post(f"/incidents/{ref}/notes", {"text": "Still down at 3pm", "visibility": "stakeholder"})
    assert r.status_code == 303
    page = (await b.get(f"/incidents/{ref}")).text
    assert "Still down at 3pm" in page and "internal only" not in page and "Acknowledge" not in page


async def test_the_live_fragment_has_the_header_and_timeline(login: Login, db: Database) -> None:
    ref = await open_incident(db, title="Queue stuck")
    b = await login("admin@example.com")
    r = await b.get(f"/incidents/{ref}/live", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert 'id="incident-head" class="incident-head" hx-swap-oob="true"' in r.text
    assert 'id="timeline"' in r.text and "Queue stuck" in r.text and "<html" not in r.text
