"""Incidents through the REST API: reporting, priority, lifecycle, assignment, roles, major flag, notes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from tests.conftest import People
from tests.incidents.conftest import API, RESOLVE, create, move, timeline
from tocsin.api_common import encode_cursor

pytestmark = pytest.mark.anyio


async def test_reporting_derives_the_priority_and_the_reference_finds_it(people: People) -> None:
    inc = await create(people.responder, impact=1, urgency=2, category="payments")
    assert inc["ref"] == f"INC-{inc['id']}" and inc["priority"] == 2 and inc["priority_label"] == "P2"
    assert inc["state"] == "new" and inc["type"] == "it_service" and not inc["priority_overridden"]
    assert (
        inc["reporter_id"] == people.responder.user_id and inc["reported_at"] and inc["detected_at"] is None
    )
    assert set(inc["allowed_states"]) == {"acknowledged", "in_progress", "on_hold", "resolved", "cancelled"}
    for ref in (inc["ref"], inc["ref"].lower(), str(inc["id"])):
        r = await people.viewer.client.get(f"{API}/incidents/{ref}")
        assert r.status_code == 200 and r.json()["id"] == inc["id"]
    assert (await people.viewer.client.get(f"{API}/incidents/INC-999999")).status_code == 404
    assert (await people.viewer.client.get(f"{API}/incidents/PRB-1")).status_code == 404
    [entry] = await timeline(people.viewer, inc["ref"])
    assert entry["kind"] == "created" and entry["visibility"] == "stakeholder"
    assert entry["actor"].endswith(f"/user:{people.responder.user_id}") and entry["actor_name"] == "Responder"


async def test_overriding_the_priority_needs_a_reason_and_clearing_it_derives_again(people: People) -> None:
    c = people.responder.client
    r = await c.post(
        f"{API}/incidents", json={"title": "Slow search", "impact": 3, "urgency": 3, "priority": 1}
    )
    assert r.status_code == 422 and "priority_reason" in r.json()["detail"]
    inc = await create(
        people.responder, impact=3, urgency=3, priority=1, priority_reason="CEO demo in 1 hour"
    )
    assert inc["priority"] == 1 and inc["priority_overridden"]
    assert inc["priority_override_reason"] == "CEO demo in 1 hour"
    ref = inc["ref"]
    kept = (await c.patch(f"{API}/incidents/{ref}", json={"impact": 2})).json()
    assert kept["priority"] == 1 and kept["impact"] == 2  # the override holds while impact changes
    r = await c.patch(f"{API}/incidents/{ref}", json={"priority": 2})
    assert r.status_code == 422 and "reason" in r.json()["detail"]
    r = await c.patch(f"{API}/incidents/{ref}", json={"priority_reason": "just because"})
    assert r.status_code == 422
    cleared = (await c.patch(f"{API}/incidents/{ref}", json={"priority": None})).json()
    assert cleared["priority"] == 4 and not cleared["priority_overridden"]
    assert cleared["priority_override_reason"] is None
    derived = (await c.patch(f"{API}/incidents/{ref}", json={"impact": 1, "urgency": 1})).json()
    assert derived["priority"] == 1
    texts = [e["text"] for e in await timeline(people.responder, ref) if e["kind"] == "priority_changed"]
    assert texts == [
        "Impact 2, urgency 3: priority P1 -> P1 (overridden: CEO demo in 1 hour)",
        "Impact 2, urgency 3: priority P1 -> P4 (override removed, derived from the matrix)",
        "Impact 1, urgency 1: priority P4 -> P1",
    ]


async def test_the_lifecycle_through_the_api_and_409_naming_the_allowed_states(people: People) -> None:
    p = people.responder
    ref = (await create(p))["ref"]
    acked = await move(p, ref, "acknowledged")
    assert acked["acknowledged_at"] and acked["state"] == "acknowledged"
    await move(p, ref, "in_progress")
    r = await p.client.post(f"{API}/incidents/{ref}/state", json={"state": "acknowledged"})
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["allowed"] == ["on_hold", "resolved", "cancelled"]
    assert "on_hold, resolved, cancelled" in body["detail"]
    r = await p.client.post(f"{API}/incidents/{ref}/state", json={"state": "on_hold"})
    assert r.status_code == 422 and "hold_reason" in r.json()["detail"]
    held = await move(p, ref, "on_hold", hold_reason="awaiting_vendor", reason="Stripe ticket 4411")
    assert held["hold_reason"] == "awaiting_vendor" and held["hold_note"] == "Stripe ticket 4411"
    await move(p, ref, "in_progress")
    r = await p.client.post(f"{API}/incidents/{ref}/state", json={"state": "resolved"})
    assert r.status_code == 422
    assert "resolution_code" in r.json()["detail"] and "resolution_summary" in r.json()["detail"]
    done = await move(p, ref, "resolved", **RESOLVE)
    assert (
        done["resolved_at"] and done["resolution_code"] == "solution_provided" and done["hold_reason"] is None
    )
    closed = await move(p, ref, "closed")
    assert closed["closed_at"] and closed["allowed_states"] == []
    final = await move(p, ref, "in_progress", expect=409)
    assert final["allowed"] == [] and "closed is final" in final["detail"]
    kinds = [e["text"] for e in await timeline(p, ref)]
    assert kinds[1:] == [
        "State new -> acknowledged",
        "State acknowledged -> in_progress",
        "On hold, awaiting vendor: Stripe ticket 4411",
        "State on_hold -> in_progress",
        "Resolved (solution provided): Restarted the payment pool",
        "State resolved -> closed",
    ]


async def test_cancelling_and_duplicates_name_the_original(people: People) -> None:
    p = people.responder
    original, copy, other = (await create(p))["ref"], (await create(p))["ref"], (await create(p))["ref"]
    r = await p.client.post(
        f"{API}/incidents/{copy}/state",
        json={"state": "resolved", "resolution_code": "duplicate", "resolution_summary": "Same outage"},
    )
    assert r.status_code == 422 and "duplicate_of" in r.json()["detail"]
    bad = await move(
        p,
        copy,
        "resolved",
        expect=422,
        resolution_code="duplicate",
        resolution_summary="Same",
        duplicate_of=copy,
    )
    assert "cannot duplicate itself" in bad["detail"]
    await move(
        p,
        copy,
        "resolved",
        expect=422,
        resolution_code="duplicate",
        resolution_summary="Same",
        duplicate_of="INC-99999",
    )
    dup = await move(
        p,
        copy,
        "resolved",
        resolution_code="duplicate",
        resolution_summary="Same outage",
        duplicate_of=original,
    )
    assert dup["duplicate_of"] == original
    ke = await move(p, other, "resolved", expect=422, resolution_code="known_error", resolution_summary="KE")
    assert "known_error_ref" in ke["detail"]
    await move(p, other, "cancelled", expect=422)
    cancelled = await move(p, other, "cancelled", reason="Not an incident: planned maintenance")
    assert cancelled["cancelled_at"] and cancelled["cancel_reason"] == "Not an incident: planned maintenance"


async def test_reopening_counts_and_clears_the_resolution(people: People) -> None:
    p = people.responder
    ref = (await create(p))["ref"]
    await move(p, ref, "in_progress")
    for n in (1, 2):
        await move(p, ref, "resolved", **RESOLVE)
        reopened = await move(p, ref, "in_progress", reason="Errors are back")
        assert reopened["reopen_count"] == n
        assert reopened["resolved_at"] is None and reopened["resolution_code"] is None
    entries = [e for e in await timeline(p, ref) if e["kind"] == "reopened"]
    assert [e["text"] for e in entries] == [
        "Reopened (reopen 1): Errors are back",
        "Reopened (reopen 2): Errors are back",
    ]


async def test_resolving_a_parent_resolves_its_open_children_and_links_refuse_cycles(people: People) -> None:
    p = people.responder
    parent = (await create(p, title="Region outage"))["ref"]
    child = (await create(p, title="Checkout errors", parent=parent))["ref"]
    grandchild = (await create(p, title="Card declines"))["ref"]
    linked = (await p.client.patch(f"{API}/incidents/{grandchild}", json={"parent": child})).json()
    assert linked["parent"] == child
    cancelled = (await create(p, title="False alarm", parent=parent))["ref"]
    await move(p, cancelled, "cancelled", reason="noise")
    got = (await p.client.get(f"{API}/incidents/{parent}")).json()
    assert got["children"] == [child, cancelled]
    cycle = await p.client.patch(f"{API}/incidents/{parent}", json={"parent": grandchild})
    assert cycle.status_code == 409 and "cycle" in cycle.json()["detail"]
    own = await p.client.patch(f"{API}/incidents/{parent}", json={"parent": parent})
    assert own.status_code == 422

    await move(p, parent, "resolved", **RESOLVE)
    for ref in (child, grandchild):
        resolved = (await p.client.get(f"{API}/incidents/{ref}")).json()
        assert resolved["state"] == "resolved" and resolved["resolution_code"] == "solution_provided"
        assert any(e["text"].startswith("Resolved with its parent") for e in await timeline(p, ref))
    assert (await p.client.get(f"{API}/incidents/{cancelled}")).json()["state"] == "cancelled"
    assert (await timeline(p, parent))[-1]["text"] == f"Resolved its open children: {child}"
    unlinked = (await p.client.patch(f"{API}/incidents/{child}", json={"parent": None})).json()
    assert unlinked["parent"] is None


async def test_replacing_a_team_or_assignee_counts_reassignments(people: People) -> None:
    c, ref = people.manager.client, (await create(people.manager))["ref"]

    async def assign(**body: object) -> dict[str, object]:
        r = await c.post(f"{API}/incidents/{ref}/assign", json=body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert (await assign(team_id=people.team_a))["reassignment_count"] == 0
    assert (await assign(assignee_id=people.responder.user_id))["reassignment_count"] == 0
    moved = await assign(team_id=people.team_b, assignee_id=people.other_responder.user_id)
    assert moved["reassignment_count"] == 1  # one hand-over, though both changed
    assert (await assign(team_id=people.team_b))["reassignment_count"] == 1  # no change, no count
    assert (await assign(assignee_id=None))["reassignment_count"] == 2
    r = await c.post(f"{API}/incidents/{ref}/assign", json={"assignee_id": people.viewer.user_id})
    assert r.status_code == 422 and "cannot work incidents" in r.json()["detail"]
    assert (await c.post(f"{API}/incidents/{ref}/assign", json={"team_id": 999_999})).status_code == 422
    assert (await c.post(f"{API}/incidents/{ref}/assign", json={})).status_code == 422
    texts = [e["text"] for e in await timeline(people.manager, ref) if e["kind"] == "assigned"]
    assert texts[2] == "Assigned to Team B, Other Responder (was Team A, Responder)"


async def test_roles_are_handed_over_on_the_record(people: People) -> None:
    c, ref = people.responder.client, (await create(people.responder))["ref"]
    url = f"{API}/incidents/{ref}/roles/commander"
    r = await c.put(url, json={"user_id": people.responder.user_id})
    assert r.status_code == 200 and r.json()["role"] == "commander"
    assert (await c.put(url, json={"user_id": people.manager.user_id})).status_code == 200
    assert (
        await c.put(f"{API}/incidents/{ref}/roles/scribe", json={"user_id": people.reporter.user_id})
    ).status_code == 422
    assert (await c.put(f"{API}/incidents/{ref}/roles/janitor", json={"user_id": 1})).status_code == 422
    got = (await c.get(f"{API}/incidents/{ref}")).json()
    assert [(x["role"], x["user_id"]) for x in got["roles"]] == [("commander", people.manager.user_id)]
    assert (await c.delete(url)).status_code == 204
    assert (await c.delete(url)).status_code == 404
    texts = [e["text"] for e in await timeline(people.responder, ref) if e["kind"] == "role_changed"]
    assert texts == [
        "Responder is now commander",
        "Commander handed over from Responder to Manager",
        "Manager is no longer commander",
    ]


async def test_major_incidents_are_proposed_then_accepted_by_a_manager_or_the_commander(
    people: People,
) -> None:
    p = people.responder
    ref = (await create(p, impact=1, urgency=1))["ref"]
    url = f"{API}/incidents/{ref}/major"
    assert (await p.client.post(url, json={"status": "proposed"})).status_code == 422  # needs a reason
    proposed = await p.client.post(url, json={"status": "proposed", "reason": "All EU customers affected"})
    assert proposed.json()["major_status"] == "proposed"
    refused = await p.client.post(url, json={"status": "accepted"})
    assert refused.status_code == 403 and "commander" in refused.json()["detail"]
    await p.client.put(f"{API}/incidents/{ref}/roles/commander", json={"user_id": p.user_id})
    accepted = await p.client.post(url, json={"status": "accepted"})
    assert accepted.status_code == 200 and accepted.json()["major_status"] == "accepted"
    again = await p.client.post(url, json={"status": "proposed", "reason": "x"})
    assert again.status_code == 409 and again.json()["allowed"] == ["rejected"]
    rejected = await people.manager.client.post(
        url, json={"status": "rejected", "reason": "Contained to one shop"}
    )
    assert rejected.json()["major_status"] == "rejected"
    assert (await p.client.post(url, json={"status": "none"})).status_code == 422
    listed = await people.viewer.client.get(f"{API}/incidents", params={"major": "rejected"})
    assert [i["ref"] for i in listed.json()["items"]] == [ref]


async def test_work_notes_stay_internal_and_reporters_see_only_stakeholder_entries(people: People) -> None:
    rep = people.reporter
    ref = (await create(rep, title="My laptop cannot reach the VPN"))["ref"]
    note = await people.responder.client.post(
        f"{API}/incidents/{ref}/notes", json={"text": "VPN cert expired"}
    )
    assert note.status_code == 201 and note.json()["visibility"] == "internal"
    comment = await people.responder.client.post(
        f"{API}/incidents/{ref}/notes",
        json={"text": "We are renewing the certificate", "visibility": "stakeholder"},
    )
    assert comment.json()["visibility"] == "stakeholder"
    await people.responder.client.post(f"{API}/incidents/{ref}/assign", json={"team_id": people.team_a})
    r = await rep.client.post(f"{API}/incidents/{ref}/notes", json={"text": "Thanks"})
    assert r.status_code == 403 and "stakeholder" in r.json()["detail"]
    mine = await rep.client.post(
        f"{API}/incidents/{ref}/notes", json={"text": "Thanks!", "visibility": "stakeholder"}
    )
    assert mine.status_code == 201
    seen = [e["text"] for e in await timeline(rep, ref)]
    assert seen == ["Reported: My laptop cannot reach the VPN", "We are renewing the certificate", "Thanks!"]
    notes = (await people.responder.client.get(f"{API}/incidents/{ref}/notes")).json()["items"]
    assert [n["text"] for n in notes] == ["VPN cert expired", "We are renewing the certificate", "Thanks!"]
    assert [n["text"] for n in (await rep.client.get(f"{API}/incidents/{ref}/notes")).json()["items"]] == [
        "We are renewing the certificate",
        "Thanks!",
    ]
    viewer = await people.viewer.client.post(f"{API}/incidents/{ref}/notes", json={"text": "hi"})
    assert viewer.status_code == 403
    blank = await people.responder.client.post(f"{API}/incidents/{ref}/notes", json={"text": "   "})
    assert blank.status_code == 422
    first = (await people.viewer.client.get(f"{API}/incidents/{ref}/timeline", params={"limit": 2})).json()
    rest = (
        await people.viewer.client.get(
            f"{API}/incidents/{ref}/timeline", params={"cursor": first["next_cursor"]}
        )
    ).json()
    assert len(first["items"]) == 2 and [e["id"] for e in first["items"] + rest["items"]] == sorted(
        e["id"] for e in await timeline(people.viewer, ref)
    )
    for bad in (encode_cursor(["t", 2**70]), encode_cursor(["x", 1]), "%%%"):
        r = await people.viewer.client.get(f"{API}/incidents/{ref}/timeline", params={"cursor": bad})
        assert r.status_code == 422


async def test_the_answer_to_a_create_is_what_reading_it_back_gives(people: People) -> None:
    """The create answer is built from the unit of work's own state (no read-back); it must match a GET."""
    admin = people.admin.client
    ids = []
    for slug in ("payments-api", "checkout-web"):
        r = await admin.post(
            f"{API}/services", json={"slug": slug, "name": slug, "owner_team_id": people.team_a}
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    with time_machine.travel(datetime(2026, 3, 2, 9, tzinfo=UTC), tick=False):  # same SLA time left
        inc = await create(
            people.responder, impact=1, urgency=1, team_id=people.team_a, service_ids=ids[::-1]
        )
        again = (await people.responder.client.get(f"{API}/incidents/{inc['ref']}")).json()
    assert inc["service_ids"] == sorted(ids) and [c["kind"] for c in inc["sla"]] == ["response", "resolution"]
    assert inc == again
