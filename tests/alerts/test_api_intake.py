"""Intake endpoints, as monitoring tools call them: keys in URLs or bodies, exact answers, no 500s."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select

from tests.alerts.conftest import Make, sample
from tests.conftest import People
from tocsin.alerts.models import Alert
from tocsin.db import Database

pytestmark = pytest.mark.anyio


async def alerts(people: People, **params: Any) -> list[dict[str, Any]]:
    r = await people.viewer.client.get("/api/v1/alerts", params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def storm(size: int) -> dict[str, Any]:
    body = sample("alertmanager.json")
    template = body["alerts"][0]
    body["alerts"] = [
        {**template, "fingerprint": f"{i:016x}", "labels": {**template["labels"], "instance": f"server-{i}"}}
        for i in range(size)
    ]
    return body


async def test_an_alertmanager_storm_of_500_alerts_in_one_webhook(
    people: People, make_integration: Make, db: Database
) -> None:
    key = (await make_integration("alertmanager"))["key"]
    r = await people.anonymous.post(f"/intake/alertmanager/{key}", json=storm(500))
    assert (r.status_code, r.json()) == (202, {"status": "accepted", "alerts": 500})
    async with db.read() as s:
        assert await s.scalar(select(func.count(Alert.id))) == 500
    again = await people.anonymous.post(f"/intake/alertmanager/{key}", json=storm(500))
    assert again.status_code == 202
    async with db.read() as s:
        counts = set(await s.scalars(select(Alert.count)))
    assert counts == {2}


async def test_alertmanager_ha_peers_delivering_the_same_webhook_at_once_make_no_duplicates(
    people: People, make_integration: Make
) -> None:
    key = (await make_integration("alertmanager"))["key"]
    body = storm(20)
    answers = await asyncio.gather(
        *(people.anonymous.post(f"/intake/alertmanager/{key}", json=body) for _ in range(3))
    )
    assert [a.status_code for a in answers] == [202, 202, 202]
    found = await alerts(people)
    assert len(found) == 20 and {a["count"] for a in found} == {3}


async def test_resolve_then_fire_again_opens_a_new_alert(people: People, make_integration: Make) -> None:
    url = f"/intake/alertmanager/{(await make_integration('alertmanager'))['key']}"
    firing = sample("alertmanager.json")
    resolved = sample("alertmanager.json")
    resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
    for body in (firing, firing, resolved, firing):
        assert (await people.anonymous.post(url, json=body)).status_code == 202
    newest, oldest = await alerts(people)
    assert (oldest["status"], oldest["count"], oldest["resolved_at"] is not None) == ("resolved", 2, True)
    assert (newest["status"], newest["count"], newest["dedup_key"]) == ("triggered", 1, "1a30ba71cca2921f")


async def test_grafana_managed_and_legacy_alerts(people: People, make_integration: Make) -> None:
    url = f"/intake/grafana/{(await make_integration('grafana'))['key']}"
    assert (await people.anonymous.post(url, json=sample("grafana.json"))).status_code == 202
    assert (await people.anonymous.post(url, json=sample("grafana_legacy.json"))).status_code == 202
    assert {a["dedup_key"] for a in await alerts(people)} == {"c6eadffa33fcdf37", "rule-7"}


# --- PagerDuty ----------------------------------------------------------------------------------


async def test_pagerduty_trigger_acknowledge_resolve_with_its_exact_answers(
    people: People, make_integration: Make
) -> None:
    key = (await make_integration("pagerduty"))["key"]
    body = sample("pagerduty.json")
    body["routing_key"] = key
    r = await people.anonymous.post("/v2/enqueue", json=body)
    assert r.status_code == 202
    assert r.json() == {"status": "success", "message": "Event processed", "dedup_key": "db-down-1"}
    ack = {"routing_key": key, "dedup_key": "db-down-1", "event_action": "acknowledge"}
    assert (await people.anonymous.post("/v2/enqueue", json=ack)).status_code == 202
    [alert] = await alerts(people)
    assert (alert["status"], alert["severity"], alert["summary"]) == (
        "acknowledged",
        "critical",
        "Example alert on host1.example.com",
    )
    r = await people.anonymous.post("/v2/enqueue", json={**ack, "event_action": "resolve"})
    assert r.json() == {"status": "success", "message": "Event processed", "dedup_key": "db-down-1"}
    [alert] = await alerts(people)
    assert alert["status"] == "resolved"


async def test_pagerduty_generates_a_key_that_then_resolves_the_alert(
    people: People, make_integration: Make
) -> None:
    key = (await make_integration("pagerduty"))["key"]
    body = sample("pagerduty.json")
    body["routing_key"] = key
    del body["dedup_key"]
    generated = (await people.anonymous.post(f"/intake/pagerduty/{key}", json=body)).json()["dedup_key"]
    assert len(generated) == 32
    resolve = {"routing_key": key, "dedup_key": generated, "event_action": "resolve"}
    assert (await people.anonymous.post("/v2/enqueue", json=resolve)).status_code == 202
    [alert] = await alerts(people)
    assert (alert["dedup_key"], alert["status"]) == (generated, "resolved")


async def test_pagerduty_refusals_use_its_400_body(people: People, make_integration: Make) -> None:
    key = (await make_integration("pagerduty"))["key"]
    invalid = {"status": "invalid event", "message": "Event object is invalid"}
    cases: list[tuple[bytes, list[str]]] = [
        (
            json.dumps(
                {
                    "routing_key": key,
                    "event_action": "trigger",
                    "payload": {"source": "h", "severity": "info"},
                }
            ).encode(),
            ["'payload.summary' is missing or blank"],
        ),
        (
            json.dumps({"routing_key": "0" * 32, "event_action": "resolve", "dedup_key": "x"}).encode(),
            ["'routing_key' is not a valid integration key"],
        ),
        (
            json.dumps({"event_action": "resolve", "dedup_key": "x"}).encode(),
            ["'routing_key' is missing or blank"],
        ),
        (b"{not json", None),  # type: ignore[list-item]
    ]
    for content, errors in cases:
        r = await people.anonymous.post(
            "/v2/enqueue", content=content, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, r.text
        assert {k: v for k, v in r.json().items() if k != "errors"} == invalid
        if errors is not None:
            assert r.json()["errors"] == errors
        else:
            assert "not valid JSON" in r.json()["errors"][0]
    other = await make_integration("generic")
    r = await people.anonymous.post(
        "/v2/enqueue", json={**sample("pagerduty.json"), "routing_key": other["key"]}
    )
    assert r.status_code == 400  # a key of another kind is no PagerDuty routing key
    assert await alerts(people) == []


# --- CloudEvents ---------------------------------------------------------------------------------

CE = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "/monitors/disk",
    "type": "com.example.disk.full",
    "subject": "db1",
    "data": {"summary": "Disk full on db1"},
}


async def test_cloudevents_structured_and_binary_and_repeats_are_ignored(
    people: People, make_integration: Make
) -> None:
    url = f"/intake/cloudevents/{(await make_integration('cloudevents'))['key']}"
    structured = {"content-type": "application/cloudevents+json"}
    for _ in range(2):
        r = await people.anonymous.post(url, content=json.dumps(CE), headers=structured)
        assert r.status_code == 202
    [alert] = await alerts(people)
    assert (alert["count"], alert["summary"]) == (1, "Disk full on db1")

    binary = {
        "ce-specversion": "1.0",
        "ce-id": "evt-2",
        "ce-source": "/monitors/disk",
        "ce-type": "com.example.disk.full",
        "ce-subject": "db1",
        "content-type": "application/json",
    }
    assert (
        await people.anonymous.post(url, json={"summary": "still full"}, headers=binary)
    ).status_code == 202
    [alert] = await alerts(people)
    assert (alert["count"], alert["summary"]) == (2, "still full")

    resolve = {**binary, "ce-id": "evt-3", "ce-action": "resolve"}
    assert (await people.anonymous.post(url, content=b"", headers=resolve)).status_code == 202
    [alert] = await alerts(people)
    assert alert["status"] == "resolved"

    missing = await people.anonymous.post(url, json={"specversion": "1.0"}, headers=structured)
    assert missing.status_code == 400 and "id, source, type" in missing.json()["detail"]


# --- generic, heartbeats -------------------------------------------------------------------------


async def test_generic_json_through_its_mapping(people: People, make_integration: Make) -> None:
    config = {
        "mapping": {
            "events": "items",
            "summary": "title",
            "dedup_key": "ref",
            "status": "state",
            "severity": "prio",
            "severity_map": {"P1": "critical"},
        }
    }
    url = f"/intake/generic/{(await make_integration('generic', config))['key']}"
    body = {
        "items": [
            {"title": "Payment errors", "ref": "pay-1", "prio": "P1", "state": "open"},
            {"title": "Slow search", "prio": "low"},
        ]
    }
    assert (await people.anonymous.post(url, json=body)).json() == {"status": "accepted", "alerts": 2}
    by_summary = {a["summary"]: a for a in await alerts(people)}
    assert (by_summary["Payment errors"]["dedup_key"], by_summary["Payment errors"]["severity"]) == (
        "pay-1",
        "critical",
    )
    assert by_summary["Slow search"]["severity"] == "info"
    missing = await people.anonymous.post(url, json={"items": [{"ref": "x"}]})
    assert missing.status_code == 400 and "config.mapping.summary" in missing.json()["detail"]


async def test_a_heartbeat_checkin_is_recorded_and_resolves_its_alert(
    people: People, make_integration: Make
) -> None:
    created = await make_integration("heartbeat")
    url = f"/intake/heartbeat/{created['key']}"
    with time_machine.travel("2024-03-01T12:00:00Z", tick=False):
        for method in ("GET", "POST", "HEAD"):
            r = await people.anonymous.request(method, url)
            assert r.status_code == 200, method
    shown = (await people.admin.client.get(f"/api/v1/integrations/{created['id']}")).json()
    assert shown["last_checkin_at"] == "2024-03-01T12:00:00Z"
    assert (await people.anonymous.get(f"/intake/heartbeat/{'0' * 32}")).status_code == 404


# --- refusals ------------------------------------------------------------------------------------


async def test_wrong_or_foreign_keys_are_404(people: People, make_integration: Make) -> None:
    am = (await make_integration("alertmanager"))["key"]
    for url in (
        "/intake/alertmanager/nope",
        f"/intake/grafana/{am}",
        f"/intake/heartbeat/{am}",
        f"/intake/alertmanager/{people.admin.token}",
        "/intake/alertmanager/" + "x" * 300,
    ):
        r = await people.anonymous.post(url, json=sample("alertmanager.json"))
        assert r.status_code == 404, url
        assert r.headers["content-type"] == "application/problem+json"
    assert (
        await people.anonymous.post(f"/intake/alertmanager/{am.upper()}", json={"alerts": []})
    ).status_code == 202


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"alerts": "\xff"}', "not valid UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "nested more than 64 levels"),
        (b'{"alerts": [{"status": "firing"}]}', "alerts[0].fingerprint is missing"),
        (b"[]", "the body must be a JSON object"),
    ],
)
async def test_malformed_payloads_are_400_with_the_reason(
    people: People, make_integration: Make, content: bytes, says: str
) -> None:
    key = (await make_integration("alertmanager"))["key"]
    r = await people.anonymous.post(
        f"/intake/alertmanager/{key}", content=content, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and says in r.json()["detail"], r.text
    assert r.json()["errors"]


async def test_a_body_over_512_kb_is_413_and_one_under_is_taken(
    people: People, make_integration: Make
) -> None:
    key = (await make_integration("alertmanager"))["key"]
    big = storm(1)
    big["alerts"][0]["annotations"]["description"] = "x" * (512 * 1024)
    r = await people.anonymous.post(f"/intake/alertmanager/{key}", json=big)
    assert r.status_code == 413 and r.json()["title"] == "Payload too large"

    async def chunked() -> Any:  # no Content-Length: the cap holds while reading
        for _ in range(600):
            yield b" " * 1024

    r = await people.anonymous.post(f"/intake/alertmanager/{key}", content=chunked())
    assert r.status_code == 413
    big["alerts"][0]["annotations"]["description"] = "x" * (500 * 1024)
    r = await people.anonymous.post(f"/intake/alertmanager/{key}", json=big)
    assert r.status_code == 202
    [alert] = await alerts(people)
    raw = (await people.viewer.client.get(f"/api/v1/alerts/{alert['id']}")).json()["raw"]
    assert raw["truncated"] is True and raw["size_bytes"] > 500 * 1024


async def test_a_sender_over_its_rate_limit_gets_429_with_retry_after(
    people: People, make_integration: Make
) -> None:
    created = await make_integration("generic", {"rate_limit_per_minute": 6, "rate_limit_burst": 2})
    url = f"/intake/generic/{created['key']}"
    answers = [await people.anonymous.post(url, json={"summary": "x"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert answers[2].headers["retry-after"] == "10"
    assert "rate limit" in answers[2].json()["detail"]

    pd = await make_integration("pagerduty", {"rate_limit_per_minute": 60, "rate_limit_burst": 1})
    body = {**sample("pagerduty.json"), "routing_key": pd["key"]}
    assert (await people.anonymous.post("/v2/enqueue", json=body)).status_code == 202
    throttled = await people.anonymous.post("/v2/enqueue", json=body)
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "1"


async def test_intake_is_not_behind_bearer_auth_and_api_tokens_open_no_intake(
    people: People, make_integration: Make
) -> None:
    key = (await make_integration("generic"))["key"]
    assert (await people.anonymous.post(f"/intake/generic/{key}", json={"summary": "x"})).status_code == 202
    assert (
        await people.anonymous.get("/api/v1/alerts", headers={"Authorization": f"Bearer {key}"})
    ).status_code == 401


async def test_the_fast_path_answers_as_the_app_would(people: People, make_integration: Make) -> None:
    """Webhooks skip the framework's routing (alerts.api_intake.FastPath) yet answer with the same headers,
    and whatever the fast path does not take still reaches the app."""
    key = (await make_integration("alertmanager"))["key"]
    taken = await people.anonymous.post(f"/intake/alertmanager/{key}", json=sample("alertmanager.json"))
    assert taken.status_code == 202
    assert taken.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in taken.headers["content-security-policy"]
    refused = await people.anonymous.post("/intake/alertmanager/nope", json={})
    assert (refused.status_code, refused.headers["x-frame-options"]) == (404, "DENY")
    wrong_method = await people.anonymous.get(f"/intake/alertmanager/{key}")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == "application/problem+json"
    no_key = await people.anonymous.post("/intake/alertmanager/", json={})
    assert no_key.status_code == 404
    assert (await people.anonymous.post(f"/intake/alertmanager/{key}/extra", json={})).status_code == 404
