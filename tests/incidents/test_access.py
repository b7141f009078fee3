"""Who sees and acts on which incident: confidentiality, reporters, viewers and responder scope."""

from __future__ import annotations

import pytest

from tests.conftest import People, Person
from tests.incidents.conftest import API, RESOLVE, create, move

pytestmark = pytest.mark.anyio


async def refs(p: Person, **params: object) -> list[str]:
    r = await p.client.get(f"{API}/incidents", params=params)
    assert r.status_code == 200, r.text
    return [i["ref"] for i in r.json()["items"]]


async def test_confidential_incidents_do_not_exist_for_outsiders(people: People) -> None:
    breach = await create(
        people.responder, title="Phishing led to a mailbox takeover", type="security", team_id=people.team_a
    )
    assert breach["confidential"]
    ref = breach["ref"]
    public = (await create(people.responder, title="Printer jam"))["ref"]
    outsiders = [people.other_responder, people.viewer, people.reporter, people.manager]
    for p in outsiders:
        c = p.client
        assert (await c.get(f"{API}/incidents/{ref}")).status_code == 404, p.role
        assert (await c.get(f"{API}/incidents/{ref}/timeline")).status_code == 404
        assert (await c.get(f"{API}/incidents/{ref}/notes")).status_code == 404
        assert (
            await c.post(f"{API}/incidents/{ref}/notes", json={"text": "x", "visibility": "stakeholder"})
        ).status_code == 404
        assert (
            await c.post(f"{API}/incidents/{ref}/state", json={"state": "acknowledged"})
        ).status_code == 404
        assert (await c.patch(f"{API}/incidents/{ref}", json={"title": "x"})).status_code == 404
        assert (await c.post(f"{API}/incidents/{ref}/assign", json={"team_id": None})).status_code == 404
        assert (
            await c.put(f"{API}/incidents/{ref}/roles/scribe", json={"user_id": p.user_id})
        ).status_code == 404
        assert (
            await c.post(f"{API}/incidents/{ref}/major", json={"status": "proposed", "reason": "x"})
        ).status_code == 404
        assert ref not in await refs(p)
        assert ref not in await refs(p, type="security")
    # Linking to it or naming it as the original reveals nothing either.
    other = (await create(people.other_responder))["ref"]
    r = await people.other_responder.client.patch(f"{API}/incidents/{other}", json={"parent": ref})
    assert r.status_code == 422 and f"no incident {ref}" in r.json()["detail"]
    assert ref not in await refs(people.viewer, q="Phishing")
    for p in (people.admin, people.responder):
        assert (await p.client.get(f"{API}/incidents/{ref}")).status_code == 200
        assert ref in await refs(p)
    assert public in await refs(people.other_responder)
    # Becoming the assignee makes an outsider one of its responders.
    await people.responder.client.post(
        f"{API}/incidents/{ref}/assign", json={"assignee_id": people.other_responder.user_id}
    )
    assert (await people.other_responder.client.get(f"{API}/incidents/{ref}")).status_code == 200
    assert ref in await refs(people.other_responder, confidential=True)


async def test_role_holders_see_a_confidential_incident(people: People) -> None:
    ref = (await create(people.admin, title="Customer file left on a train", type="data_protection"))["ref"]
    assert (await people.manager.client.get(f"{API}/incidents/{ref}")).status_code == 404
    await people.admin.client.put(
        f"{API}/incidents/{ref}/roles/commander", json={"user_id": people.manager.user_id}
    )
    assert (await people.manager.client.get(f"{API}/incidents/{ref}")).status_code == 200
    assert ref in await refs(people.manager)


async def test_reporters_see_and_comment_only_on_what_they_reported(people: People) -> None:
    rep = people.reporter
    mine = await create(rep, title="The lift is stuck", type="facility", extra={"location": "HQ lift B"})
    assert mine["reporter_id"] == rep.user_id
    theirs = (await create(people.responder, title="Database failover"))["ref"]
    assert await refs(rep) == [mine["ref"]]
    assert (await rep.client.get(f"{API}/incidents/{theirs}")).status_code == 404
    r = await rep.client.patch(f"{API}/incidents/{mine['ref']}", json={"title": "Lift stuck, people inside"})
    assert r.status_code == 403
    assert (
        await rep.client.post(
            f"{API}/incidents/{mine['ref']}/state", json={"state": "cancelled", "reason": "sorry"}
        )
    ).status_code == 403
    for field, value in (
        ("team_id", people.team_a),
        ("assignee_id", people.responder.user_id),
        ("priority", 1),
        ("reporter_id", people.viewer.user_id),
    ):
        body = {"title": "x", field: value} | ({"priority_reason": "r"} if field == "priority" else {})
        r = await rep.client.post(f"{API}/incidents", json=body)
        assert r.status_code == 403 and field in r.json()["detail"]
    secret = await create(rep, title="I clicked a phishing link", type="security")
    assert secret["confidential"] and secret["ref"] in await refs(rep)
    r = await rep.client.post(
        f"{API}/incidents", json={"title": "x", "type": "security", "confidential": False}
    )
    assert r.status_code == 403


async def test_viewers_read_but_never_write(people: People) -> None:
    ref = (await create(people.responder))["ref"]
    v = people.viewer.client
    assert ref in await refs(people.viewer)
    assert (await v.post(f"{API}/incidents", json={"title": "x"})).status_code == 403
    assert (await v.patch(f"{API}/incidents/{ref}", json={"title": "x"})).status_code == 403
    r = await v.post(f"{API}/incidents/{ref}/state", json={"state": "acknowledged"})
    assert r.status_code == 403 and "viewer" in r.json()["detail"]


async def test_responders_act_on_their_teams_unowned_incidents_and_their_own(people: People) -> None:
    team_b = (await create(people.manager, title="Team B's queue is stuck", team_id=people.team_b))["ref"]
    unowned = (await create(people.manager, title="Nobody's yet"))["ref"]
    me = people.responder
    r = await me.client.post(f"{API}/incidents/{team_b}/state", json={"state": "acknowledged"})
    assert r.status_code == 403 and f"team {people.team_b}" in r.json()["detail"]
    assert (await me.client.get(f"{API}/incidents/{team_b}")).status_code == 200  # reading is fine
    await move(me, unowned, "acknowledged")
    await people.other_responder.client.put(
        f"{API}/incidents/{team_b}/roles/resolver", json={"user_id": me.user_id}
    )
    await move(me, team_b, "acknowledged")
    await move(people.manager, team_b, "resolved", **RESOLVE)
