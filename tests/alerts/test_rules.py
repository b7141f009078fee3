"""Routing rules: managed through the API in order, and what they do to alerts arriving at intake."""

from __future__ import annotations

from typing import Any

import pytest

from tests.alerts.conftest import Make, sample
from tests.alerts.flow import alerts, incident_list, new_service, services_of
from tests.conftest import People
from tocsin.db import Database

pytestmark = pytest.mark.anyio
RULES = "/api/v1/routing-rules"


async def add_rule(people: People, **body: Any) -> dict[str, Any]:
    r = await people.admin.client.post(RULES, json={"name": "rule", **body})
    assert r.status_code == 201, r.text
    rule: dict[str, Any] = r.json()
    return rule


def webhook(*alerts: dict[str, Any]) -> dict[str, Any]:
    body = sample("alertmanager.json")
    template = body["alerts"][0]
    body["alerts"] = [
        {**template, "fingerprint": f"{i:016x}", "labels": {**template["labels"], **labels}}
        for i, labels in enumerate(alerts)
    ]
    return body


async def test_rules_are_listed_in_order_and_can_be_inserted_moved_and_reordered(people: People) -> None:
    a = await add_rule(people, name="a")
    b = await add_rule(people, name="b")
    c = await add_rule(people, name="c", position=1)
    names = lambda rules: [(r["name"], r["position"]) for r in rules]  # noqa: E731
    assert names((await people.viewer.client.get(RULES)).json()) == [("c", 1), ("a", 2), ("b", 3)]
    moved = await people.admin.client.patch(f"{RULES}/{b['id']}", json={"position": 1})
    assert moved.status_code == 200 and moved.json()["position"] == 1
    assert names((await people.viewer.client.get(RULES)).json()) == [("b", 1), ("c", 2), ("a", 3)]
    r = await people.admin.client.post(f"{RULES}/reorder", json={"ids": [a["id"], b["id"], c["id"]]})
    assert names(r.json()) == [("a", 1), ("b", 2), ("c", 3)]
    bad = await people.admin.client.post(f"{RULES}/reorder", json={"ids": [a["id"], b["id"]]})
    assert bad.status_code == 422 and "missing" in bad.json()["detail"]
    assert (await people.admin.client.delete(f"{RULES}/{b['id']}")).status_code == 204
    assert names((await people.viewer.client.get(RULES)).json()) == [("a", 1), ("c", 2)]


async def test_only_configuration_managers_change_rules(people: People) -> None:
    body = {"name": "x", "conditions": []}
    assert (await people.manager.client.post(RULES, json=body)).status_code == 403
    assert (await people.viewer.client.post(RULES, json=body)).status_code == 403
    assert (await people.viewer.client.get(RULES)).status_code == 200
    assert (await people.anonymous.get(RULES)).status_code == 401


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"conditions": [{"field": "summary", "op": "regex", "value": "(unclosed"}]}, "does not compile"),
        ({"conditions": [{"field": "summary", "op": "regex", "value": "a" * 300}]}, "longer than"),
        ({"conditions": [{"field": "hostname", "op": "exists"}]}, "labels.<name>"),
        ({"conditions": [{"field": "severity", "op": "in", "value": ["urgent"]}]}, "severity is one of"),
        ({"action": "drop", "target_service_id": 1}, "opens no incident"),
        ({"integration_id": 1, "service_id": 1}, "not both"),
        ({"target_service_id": 999_999}, "names no service"),
        ({"type_key": "nope"}, "no incident type"),
        ({"type_key": "safety"}, "requires"),
    ],
)
async def test_invalid_rules_are_refused_with_what_to_change(
    people: People, body: dict[str, Any], says: str
) -> None:
    r = await people.admin.client.post(RULES, json={"name": "bad", **body})
    assert r.status_code == 422, r.text
    assert says in r.text


async def test_a_matching_rule_routes_to_its_service_with_its_type_and_priority(
    people: People, make_integration: Make, db: Database, service_id: int
) -> None:
    databases = await new_service(db, "databases")
    await add_rule(
        people,
        conditions=[{"field": "labels.team", "op": "equals", "value": "dba"}],
        target_service_id=databases,
        type_key="devops",
        impact=1,
        urgency=2,
    )
    key = (await make_integration("alertmanager"))["key"]
    r = await people.anonymous.post(
        f"/intake/alertmanager/{key}", json=webhook({"team": "dba"}, {"team": "web"})
    )
    assert r.status_code == 202
    dba, web = await incident_list(db)
    assert (dba.type_key, dba.impact, dba.urgency) == ("devops", 1, 2)
    assert await services_of(db, dba.id) == [databases]
    assert (web.type_key, web.impact, web.urgency) == ("it_service", 2, 1), "defaults: tier 2, critical"
    assert await services_of(db, web.id) == [service_id]


async def test_suppress_stores_the_alert_quietly_and_drop_does_not_store_it(
    people: People, make_integration: Make, db: Database
) -> None:
    await add_rule(
        people, conditions=[{"field": "labels.env", "op": "equals", "value": "dev"}], action="drop"
    )
    await add_rule(
        people, conditions=[{"field": "labels.env", "op": "equals", "value": "test"}], action="suppress"
    )
    key = (await make_integration("alertmanager"))["key"]
    body = webhook({"env": "dev"}, {"env": "test"})
    assert (await people.anonymous.post(f"/intake/alertmanager/{key}", json=body)).status_code == 202
    [stored] = await alerts(db)
    assert (stored.labels["env"], stored.suppressed_by, stored.incident_id) == ("test", "rule", None)
    assert stored.suppressed_reason is not None and stored.suppressed_reason.startswith("routing rule #")
    assert await incident_list(db) == []
    listed = await people.viewer.client.get("/api/v1/alerts", params={"suppressed": "true"})
    assert [a["suppressed"] for a in listed.json()["items"]] == [True]


async def test_scoped_rules_apply_only_to_their_integration_or_service(
    people: People, make_integration: Make, db: Database
) -> None:
    first = await make_integration("alertmanager", name="first")
    second = await make_integration("alertmanager", name="second")
    await add_rule(people, integration_id=first["id"], action="suppress")
    for key in (first["key"], second["key"]):
        body = webhook({"alertname": f"From{key[:4]}"})
        assert (await people.anonymous.post(f"/intake/alertmanager/{key}", json=body)).status_code == 202
    assert [a.suppressed for a in await alerts(db)] == [True, False]
    assert len(await incident_list(db)) == 1


async def test_an_inactive_rule_is_skipped(people: People, make_integration: Make, db: Database) -> None:
    rule = await add_rule(people, action="suppress")
    r = await people.admin.client.patch(f"{RULES}/{rule['id']}", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    key = (await make_integration("alertmanager"))["key"]
    assert (await people.anonymous.post(f"/intake/alertmanager/{key}", json=webhook({}))).status_code == 202
    assert [a.suppressed for a in await alerts(db)] == [False]
