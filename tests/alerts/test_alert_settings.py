"""Per-service alert settings through the API: defaults until changed, validated, audited."""

from __future__ import annotations

import pytest

from tests.conftest import People
from tocsin.audit import service as audit
from tocsin.db import Database

pytestmark = pytest.mark.anyio


async def test_a_service_has_the_defaults_until_its_settings_are_saved(
    people: People, service_id: int, db: Database
) -> None:
    url = f"/api/v1/alert-settings/{service_id}"
    r = await people.viewer.client.get(url)
    assert r.status_code == 200
    assert r.json() == {
        "service_id": service_id,
        "customized": False,
        "grouping_window_minutes": 60,
        "group_by": None,
        "auto_resolve": True,
        "flap_cycles": 3,
        "flap_window_minutes": 30,
        "default_impact": None,
        "severity_urgency": None,
    }
    saved = await people.admin.client.put(
        url, json={"grouping_window_minutes": 15, "auto_resolve": False, "severity_urgency": {"warning": 2}}
    )
    assert saved.status_code == 200, saved.text
    assert (saved.json()["customized"], saved.json()["grouping_window_minutes"]) == (True, 15)
    assert (await people.viewer.client.get(url)).json()["severity_urgency"] == {"warning": 2}
    async with db.read() as s:
        [entry] = await audit.entries_for(session=s, entity_type="service", entity_id=service_id)
    assert entry.action == "alert_settings.update" and entry.actor.endswith(f"user:{people.admin.user_id}")


async def test_only_configuration_managers_change_settings_and_bad_values_are_refused(
    people: People, service_id: int
) -> None:
    url = f"/api/v1/alert-settings/{service_id}"
    assert (await people.manager.client.put(url, json={})).status_code == 403
    assert (await people.admin.client.put(url, json={"severity_urgency": {"fatal": 1}})).status_code == 422
    assert (await people.admin.client.put(url, json={"severity_urgency": {"info": 7}})).status_code == 422
    assert (await people.admin.client.put(url, json={"grouping_window_minutes": -1})).status_code == 422
    assert (await people.admin.client.get("/api/v1/alert-settings/999999")).status_code == 422
