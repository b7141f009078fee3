"""Listing incidents: every filter, visibility in SQL, and keyset pagination that never skips or repeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import People, Person
from tests.incidents.conftest import API, create
from tocsin.api_common import encode_cursor
from tocsin.auth.permissions import SYSTEM
from tocsin.catalog import service as catalog
from tocsin.db import Database
from tocsin.incidents import service

pytestmark = pytest.mark.anyio
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


async def walk(p: Person, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every page of a listing, following next_cursor."""
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": limit} | ({"cursor": cursor} if cursor else {})
        r = await p.client.get(f"{API}/incidents", params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def test_keyset_pages_walk_every_incident_once_in_each_sort_order(people: People, db: Database) -> None:
    async with db.write() as s:
        for n in range(29):
            await service.create_incident(
                session=s,
                actor=SYSTEM,
                title=f"incident {n}",
                impact=n % 3 + 1,
                urgency=(n // 3) % 3 + 1,
                now=T0 + timedelta(minutes=n),
            )
        for ref in (3, 17, 5):  # touched later, so they lead the updated_at order
            await service.update_incident(
                session=s, actor=SYSTEM, ref=ref, category="touched", now=T0 + timedelta(hours=1, minutes=ref)
            )
    everything = await walk(people.viewer, 100)
    assert len(everything) == 29
    by_id = {i["id"]: i for i in everything}
    newest_first = sorted(by_id, reverse=True)
    assert [i["id"] for i in await walk(people.viewer, 4)] == newest_first
    by_priority = sorted(by_id, key=lambda i: (by_id[i]["priority"], -i))
    assert [i["id"] for i in await walk(people.viewer, 5, sort="priority")] == by_priority
    assert [i["id"] for i in await walk(people.viewer, 1, sort="priority", priority=[2, 4])] == [
        i for i in by_priority if by_id[i]["priority"] in (2, 4)
    ]
    by_update = sorted(by_id, key=lambda i: (by_id[i]["updated_at"], i), reverse=True)
    walked = await walk(people.viewer, 3, sort="updated_at")
    assert [i["id"] for i in walked] == by_update and by_update[:3] == [17, 5, 3]
    only_new = await walk(people.viewer, 6, state="new", priority=[3])
    assert {i["id"] for i in only_new} == {i for i in by_id if by_id[i]["priority"] == 3}

    foreign = await people.viewer.client.get(
        f"{API}/incidents",
        params={
            "sort": "priority",
            "cursor": (await people.viewer.client.get(f"{API}/incidents", params={"limit": 2})).json()[
                "next_cursor"
            ],
        },
    )
    assert foreign.status_code == 422 and "sorted by priority" in foreign.json()["detail"]
    assert (
        await people.viewer.client.get(f"{API}/incidents", params={"cursor": "garbage!"})
    ).status_code == 422
    crafted = [
        ["created_at", 2**70],
        ["created_at", True],
        ["priority", 1, "x"],
        ["updated_at", "yesterday", 1],
        ["updated_at", "2024-01-01T00:00:00", 1],
        ["updated_at", "0001-01-01T00:00:00+01:00", 1],
        "x",
    ]
    for values in crafted:
        sort = values[0] if isinstance(values, list) else "created_at"
        r = await people.viewer.client.get(
            f"{API}/incidents", params={"sort": sort, "cursor": encode_cursor(values)}
        )
        assert r.status_code == 422, (values, r.text)
    big = await people.viewer.client.get(f"{API}/incidents", params={"limit": 201})
    assert big.status_code == 422 and "at most 200" in big.json()["detail"]


async def test_every_filter_narrows_the_list(people: People, db: Database) -> None:
    async with db.write() as s:
        payments = (
            await catalog.create_service(session=s, actor=SYSTEM, slug="payments", name="Payments")
        ).id
    a = await create(
        people.responder,
        title="Payments API returns 500",
        impact=1,
        urgency=1,
        team_id=people.team_a,
        service_ids=[payments],
    )
    b = await create(
        people.manager,
        title="Slow login page",
        description="Users report SLOW logins",
        type="devops",
        team_id=people.team_b,
        assignee_id=people.other_responder.user_id,
    )
    c = await create(
        people.reporter,
        title="Forklift near miss",
        type="safety",
        extra={
            "event_date": "2024-02-28",
            "location": "Dock 2",
            "what_happened": "Pallet fell",
            "actual_severity": "near_miss",
            "potential_severity": "lost_time",
        },
    )
    await people.responder.client.post(f"{API}/incidents/{a['ref']}/state", json={"state": "in_progress"})
    await people.manager.client.post(
        f"{API}/incidents/{b['ref']}/assign", json={"assignee_id": people.manager.user_id}
    )
    v = people.viewer

    async def ids(**params: Any) -> set[str]:
        return {i["ref"] for i in await walk(v, 50, **params)}

    assert await ids() == {a["ref"], b["ref"], c["ref"]}
    assert await ids(state="in_progress") == {a["ref"]}
    assert await ids(state=["new", "in_progress"]) == {a["ref"], b["ref"], c["ref"]}
    assert await ids(priority=1) == {a["ref"]}
    assert await ids(type="devops") == {b["ref"]}
    assert await ids(type=["devops", "safety"]) == {b["ref"], c["ref"]}
    assert await ids(team_id=people.team_b) == {b["ref"]}
    assert await ids(assignee=str(people.manager.user_id)) == {b["ref"]}
    assert await ids(assignee="none") == {a["ref"], c["ref"]}
    assert {i["ref"] for i in await walk(people.manager, 50, assignee="me")} == {b["ref"]}
    assert {i["ref"] for i in await walk(people.reporter, 50, reporter="me")} == {c["ref"]}
    assert await ids(service_id=payments) == {a["ref"]}
    assert await ids(q="slow") == {b["ref"]}  # case-insensitive, title or description
    assert await ids(q="100%") == set()  # LIKE wildcards are literal
    assert await ids(major="none") == {a["ref"], b["ref"], c["ref"]}
    assert await ids(confidential=True) == set()
    created = (await v.client.get(f"{API}/incidents/{b['ref']}")).json()["created_at"]
    assert await ids(created_after=created) == {b["ref"], c["ref"]}
    assert await ids(created_before=created) == {a["ref"]}
    listed = {i["ref"]: i for i in await walk(v, 50)}
    assert listed[a["ref"]]["service_ids"] == [payments] and listed[a["ref"]]["priority_label"] == "P1"
    for bad in (
        {"state": "open"},
        {"priority": 5},
        {"assignee": "someone"},
        {"created_after": "2024-01-01T00:00"},
        {"type": "Not A Key"},
        {"team_id": 2**64},
        {"sort": "title"},
        {"q": "a\x00b"},
    ):
        r = await v.client.get(f"{API}/incidents", params=bad)
        assert r.status_code == 422, (bad, r.text)
