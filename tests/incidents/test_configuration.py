"""Incident types and the priority matrix are data that admins edit through the API."""

from __future__ import annotations

import pytest

from tests.conftest import People
from tests.incidents.conftest import API, create

pytestmark = pytest.mark.anyio

ENV_TYPE = {
    "key": "environmental",
    "name": "Environmental",
    "description": "Spills and emissions",
    "fields": [
        {"name": "substance", "label": "Substance released", "kind": "text", "required": True},
        {"name": "litres", "label": "Approximate volume (l)", "kind": "number"},
        {"name": "contained", "label": "Contained?", "kind": "choice", "choices": ["yes", "no"]},
    ],
}


async def test_the_seeded_types_and_their_fields_are_listed(people: People) -> None:
    types = {t["key"]: t for t in (await people.reporter.client.get(f"{API}/incident-types")).json()}
    assert set(types) == {
        "it_service",
        "security",
        "devops",
        "safety",
        "quality",
        "data_protection",
        "facility",
    }
    assert types["security"]["confidential_default"] and types["data_protection"]["confidential_default"]
    assert not types["safety"]["confidential_default"]
    security = {f["name"]: f for f in types["security"]["fields"]}
    assert security["recoverability"]["choices"] == ["regular", "supplemented", "extended", "not_recoverable"]
    assert security["indicators"]["kind"] == "indicators"
    severity = {f["name"]: f for f in types["safety"]["fields"]}["actual_severity"]
    assert severity["choices"][0] == "fatality" and severity["choices"][-1] == "near_miss"


async def test_admins_manage_types_and_new_incidents_follow_them(people: People) -> None:
    for p in (people.manager, people.responder):
        assert (await p.client.post(f"{API}/incident-types", json=ENV_TYPE)).status_code == 403
    r = await people.admin.client.post(f"{API}/incident-types", json=ENV_TYPE)
    assert r.status_code == 201 and [f["name"] for f in r.json()["fields"]] == [
        "substance",
        "litres",
        "contained",
    ]
    assert (await people.admin.client.post(f"{API}/incident-types", json=ENV_TYPE)).status_code == 409
    r = await people.responder.client.post(
        f"{API}/incidents", json={"title": "Diesel spill", "type": "environmental"}
    )
    assert r.status_code == 422 and "extra.substance (Substance released) is required" in r.json()["detail"]
    spill = await create(
        people.responder,
        title="Diesel spill",
        type="environmental",
        extra={"substance": "diesel", "litres": 40},
    )
    assert spill["extra"] == {"substance": "diesel", "litres": 40}

    patched = await people.admin.client.patch(
        f"{API}/incident-types/environmental", json={"confidential_default": True, "active": False}
    )
    assert patched.status_code == 200 and not patched.json()["active"]
    r = await people.responder.client.post(
        f"{API}/incidents", json={"title": "x", "type": "environmental", "extra": {"substance": "oil"}}
    )
    assert r.status_code == 422 and "inactive" in r.json()["detail"]
    assert (
        await people.admin.client.patch(f"{API}/incident-types/environmental", json={"name": None})
    ).status_code == 422
    twice = {"fields": [ENV_TYPE["fields"][0], ENV_TYPE["fields"][0]]}  # type: ignore[index]
    r = await people.admin.client.patch(f"{API}/incident-types/environmental", json=twice)
    assert r.status_code == 422 and "more than once" in r.json()["detail"]
    bad_choice = {"fields": [{"name": "x", "label": "X", "kind": "choice"}]}
    assert (
        await people.admin.client.patch(f"{API}/incident-types/environmental", json=bad_choice)
    ).status_code == 422
    active = (await people.viewer.client.get(f"{API}/incident-types", params={"active": True})).json()
    assert "environmental" not in {t["key"] for t in active}
    assert (await people.viewer.client.get(f"{API}/incident-types/nope")).status_code == 404
    r = await people.responder.client.post(f"{API}/incidents", json={"title": "x", "type": "nope"})
    assert r.status_code == 422 and "it_service" in r.json()["detail"]


async def test_the_priority_matrix_is_replaced_whole_and_only_when_total(people: People) -> None:
    got = (await people.viewer.client.get(f"{API}/priority-matrix")).json()["cells"]
    assert {(c["impact"], c["urgency"]): c["label"] for c in got}[(1, 1)] == "P1" and len(got) == 9
    strict = [
        {"impact": i, "urgency": u, "priority": 1 if i == 1 else 3} for i in (1, 2, 3) for u in (1, 2, 3)
    ]
    assert (
        await people.manager.client.put(f"{API}/priority-matrix", json={"cells": strict})
    ).status_code == 403
    r = await people.admin.client.put(f"{API}/priority-matrix", json={"cells": strict[:-1]})
    assert r.status_code == 422 and "missing 3x3" in r.json()["detail"]
    r = await people.admin.client.put(f"{API}/priority-matrix", json={"cells": strict})
    assert r.status_code == 200 and r.json()["cells"][0] == {
        "impact": 1,
        "urgency": 1,
        "priority": 1,
        "label": "P1",
    }
    assert (await create(people.responder, impact=1, urgency=3))["priority"] == 1
    assert (await create(people.responder, impact=2, urgency=1))["priority"] == 3
