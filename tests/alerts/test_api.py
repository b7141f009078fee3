"""Integrations and alerts through the REST API."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.alerts.conftest import Make
from tests.conftest import People
from tocsin.alerts import service
from tocsin.alerts.adapters.base import Action, AlertEvent
from tocsin.alerts.models import Severity
from tocsin.audit.models import AuditEntry
from tocsin.db import Database, utcnow

pytestmark = pytest.mark.anyio


async def test_creating_an_integration_shows_its_key_and_intake_url_once(
    people: People, make_integration: Make, db: Database
) -> None:
    created = await make_integration("alertmanager")
    key = created["key"]
    assert len(key) == 32 and key.isalnum() and key == key.lower()
    assert created["intake_url"] == f"https://tocsin.example/intake/alertmanager/{key}"
    assert created["key_prefix"] == key[:8]
    assert created["config"]["rate_limit_per_minute"] == 600_000
    shown = await people.viewer.client.get(f"/api/v1/integrations/{created['id']}")
    assert shown.status_code == 200 and "key" not in shown.json()
    async with db.read() as s:
        entry = await s.scalar(select(AuditEntry).where(AuditEntry.action == "integration.create"))
    assert entry is not None and entry.actor.endswith(f"user:{people.admin.user_id}")
    assert key not in str(entry.after)


async def test_intake_urls_per_kind(make_integration: Make) -> None:
    email = await make_integration("email")
    assert email["intake_url"] == f"{email['key']}@tocsin.example"
    pagerduty = await make_integration("pagerduty")
    assert pagerduty["intake_url"] == "https://tocsin.example/v2/enqueue"
    heartbeat = await make_integration("heartbeat")
    assert heartbeat["intake_url"].endswith(f"/intake/heartbeat/{heartbeat['key']}")
    assert heartbeat["config"]["interval_seconds"] == 300


async def test_only_catalog_managers_manage_integrations_and_readers_read_them(
    people: People, service_id: int
) -> None:
    body = {"service_id": service_id, "name": "am", "kind": "alertmanager"}
    for person in (people.responder, people.reporter, people.viewer):
        assert (await person.client.post("/api/v1/integrations", json=body)).status_code == 403
    assert (await people.manager.client.post("/api/v1/integrations", json=body)).status_code == 201
    assert len((await people.viewer.client.get("/api/v1/integrations")).json()) == 1
    assert (await people.reporter.client.get("/api/v1/integrations")).status_code == 403
    assert (await people.anonymous.get("/api/v1/integrations")).status_code == 401


async def test_bad_integration_input_is_a_clear_422(people: People, service_id: int) -> None:
    c = people.admin.client
    missing = await c.post("/api/v1/integrations", json={"service_id": 9999, "name": "x", "kind": "generic"})
    assert missing.status_code == 422 and "service_id 9999" in missing.json()["detail"]
    config = await c.post(
        "/api/v1/integrations",
        json={"service_id": service_id, "name": "x", "kind": "heartbeat", "config": {"interval_seconds": 1}},
    )
    assert config.status_code == 422 and "config.interval_seconds" in config.json()["detail"]
    unknown = await c.post(
        "/api/v1/integrations",
        json={
            "service_id": service_id,
            "name": "x",
            "kind": "generic",
            "config": {"mapping": {"summry": "x"}},
        },
    )
    assert unknown.status_code == 422 and "config.mapping.summry" in unknown.json()["detail"]
    kind = await c.post(
        "/api/v1/integrations", json={"service_id": service_id, "name": "x", "kind": "nagios"}
    )
    assert kind.status_code == 422


async def test_rotating_the_key_retires_the_old_one(people: People, make_integration: Make) -> None:
    created = await make_integration("generic")
    old = created["key"]
    assert (await people.anonymous.post(f"/intake/generic/{old}", json={"summary": "x"})).status_code == 202
    rotated = await people.admin.client.post(f"/api/v1/integrations/{created['id']}/rotate-key")
    assert rotated.status_code == 200
    new = rotated.json()["key"]
    assert new != old and rotated.json()["intake_url"].endswith(new)
    assert (await people.anonymous.post(f"/intake/generic/{old}", json={"summary": "x"})).status_code == 404
    assert (await people.anonymous.post(f"/intake/generic/{new}", json={"summary": "x"})).status_code == 202


async def test_a_deactivated_integration_admits_nothing_and_one_with_history_cannot_be_deleted(
    people: People, make_integration: Make
) -> None:
    created = await make_integration("generic")
    url = f"/intake/generic/{created['key']}"
    assert (await people.anonymous.post(url, json={"summary": "x"})).status_code == 202
    c = people.admin.client
    patched = await c.patch(f"/api/v1/integrations/{created['id']}", json={"active": False, "name": "old"})
    assert patched.json()["active"] is False and patched.json()["name"] == "old"
    assert (await people.anonymous.post(url, json={"summary": "x"})).status_code == 404
    refused = await c.delete(f"/api/v1/integrations/{created['id']}")
    assert refused.status_code == 409 and "deactivate" in refused.json()["detail"]
    unused = await make_integration("generic")
    assert (await c.delete(f"/api/v1/integrations/{unused['id']}")).status_code == 204
    assert (await c.get(f"/api/v1/integrations/{unused['id']}")).status_code == 404


async def test_alerts_are_listed_newest_first_with_filters_and_pages(
    people: People, make_integration: Make, db: Database, service_id: int
) -> None:
    first = await make_integration("generic")
    second = await make_integration("generic")
    async with db.write() as s:
        await service.ingest(
            session=s,
            integration_id=first["id"],
            now=utcnow(),
            events=[
                AlertEvent(
                    dedup_key=f"k{i}",
                    action=Action.trigger,
                    summary=f"Disk {i} 100%_full",
                    severity=Severity.critical if i % 2 else Severity.info,
                )
                for i in range(5)
            ],
        )
        await service.ingest(
            session=s,
            integration_id=second["id"],
            now=utcnow(),
            events=[AlertEvent(dedup_key="other", action=Action.trigger, summary="CPU hot")],
        )
        await service.ingest(
            session=s,
            integration_id=first["id"],
            now=utcnow(),
            events=[AlertEvent(dedup_key="k0", action=Action.resolve)],
        )
    c = people.viewer.client

    async def summaries(query: str) -> list[str]:
        r = await c.get(f"/api/v1/alerts?{query}")
        assert r.status_code == 200, r.text
        return [a["summary"] for a in r.json()["items"]]

    assert await summaries("") == ["CPU hot"] + [f"Disk {i} 100%_full" for i in (4, 3, 2, 1, 0)]
    assert await summaries("status=resolved") == ["Disk 0 100%_full"]
    assert len(await summaries("status=triggered&status=acknowledged")) == 5
    assert await summaries("severity=critical") == ["Disk 3 100%_full", "Disk 1 100%_full"]
    assert await summaries(f"integration_id={second['id']}") == ["CPU hot"]
    assert len(await summaries(f"service_id={service_id}")) == 6
    assert await summaries("service_id=9999") == []
    assert await summaries("q=cpu") == ["CPU hot"]
    assert len(await summaries("q=100%25_")) == 5  # % and _ match themselves

    seen, cursor = [], None
    while True:
        page = (
            await c.get("/api/v1/alerts", params={"limit": 4, **({"cursor": cursor} if cursor else {})})
        ).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6 and seen == sorted(seen, reverse=True)
    assert (await c.get("/api/v1/alerts?cursor=garbage")).status_code == 422
    assert (await people.reporter.client.get("/api/v1/alerts")).status_code == 403


async def test_one_alert_comes_with_its_service_and_raw_payload(
    people: People, make_integration: Make
) -> None:
    created = await make_integration("generic")
    body = {"summary": "Queue backlog", "source": "mq1", "extra": {"depth": 12000}}
    await people.anonymous.post(f"/intake/generic/{created['key']}", json=body)
    [item] = (await people.viewer.client.get("/api/v1/alerts")).json()["items"]
    assert "raw" not in item
    alert = (await people.viewer.client.get(f"/api/v1/alerts/{item['id']}")).json()
    assert alert["raw"] == body and alert["service_id"] == created["service_id"]
    assert (await people.viewer.client.get("/api/v1/alerts/999999")).status_code == 404
