"""The comms cadence over HTTP: seeded from the domain reference, replaced by admins only."""

from __future__ import annotations

import pytest

from tests.conftest import People

pytestmark = pytest.mark.anyio
API = "/api/v1"


async def test_the_seeded_cadence_is_p1_every_30_minutes_and_p2_every_hour(people: People) -> None:
    r = await people.viewer.client.get(f"{API}/comms/cadence")
    assert r.status_code == 200
    assert [(c["priority"], c["interval_minutes"]) for c in r.json()] == [(1, 30), (2, 60)]


async def test_an_admin_replaces_the_cadence(people: People) -> None:
    body = {"rules": [{"priority": 3, "interval_minutes": 240}, {"priority": 1, "interval_minutes": 15}]}
    r = await people.admin.client.put(f"{API}/comms/cadence", json=body)
    assert r.status_code == 200, r.text
    assert [(c["priority"], c["interval_minutes"]) for c in r.json()] == [(1, 15), (3, 240)]
    r = await people.responder.client.get(f"{API}/comms/cadence")
    assert [c["priority"] for c in r.json()] == [1, 3], "P2 left out: no reminders"


async def test_a_priority_given_twice_or_a_silly_interval_is_refused(people: People) -> None:
    twice = {"rules": [{"priority": 1, "interval_minutes": 15}, {"priority": 1, "interval_minutes": 30}]}
    r = await people.admin.client.put(f"{API}/comms/cadence", json=twice)
    assert r.status_code == 422 and "given twice" in r.json()["detail"]
    r = await people.admin.client.put(
        f"{API}/comms/cadence", json={"rules": [{"priority": 1, "interval_minutes": 0}]}
    )
    assert r.status_code == 422


@pytest.mark.parametrize("who", ["viewer", "responder", "manager"])
async def test_only_admins_change_the_cadence(people: People, who: str) -> None:
    client = getattr(people, who).client
    r = await client.put(f"{API}/comms/cadence", json={"rules": []})
    assert r.status_code == 403
