"""Notification settings and the delivery record through the REST API, with permissions."""

from __future__ import annotations

import pytest

from tests.conftest import People
from tests.notify.conftest import page
from tests.notify.driver import fire_due
from tests.notify.receivers import HttpReceiver
from tocsin.db import Database
from tocsin.engine.handlers import EngineContext

pytestmark = pytest.mark.anyio


def methods(user_id: int) -> str:
    return f"/api/v1/users/{user_id}/contact-methods"


def rules(user_id: int) -> str:
    return f"/api/v1/users/{user_id}/notification-rules"


async def test_people_manage_their_own_contact_methods_and_see_a_webhook_secret_once(people: People) -> None:
    me = people.responder
    email = await me.client.post(
        methods(me.user_id), json={"kind": "email", "address": "Me@Example.COM", "label": "work"}
    )
    assert email.status_code == 201, email.text
    assert email.json()["address"] == "Me@example.com" and email.json()["secret"] is None
    hook = await me.client.post(
        methods(me.user_id), json={"kind": "webhook", "address": "https://h.example/x"}
    )
    assert hook.status_code == 201 and len(hook.json()["secret"]) >= 32 and hook.json()["has_secret"]
    listed = (await me.client.get(methods(me.user_id))).json()
    assert [m["kind"] for m in listed] == ["email", "webhook"] and "secret" not in listed[1]
    rotated = await me.client.patch(
        f"{methods(me.user_id)}/{hook.json()['id']}", json={"rotate_secret": True}
    )
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (None, hook.json()["secret"])
    moved = await me.client.patch(
        f"{methods(me.user_id)}/{email.json()['id']}", json={"address": "b@example.com"}
    )
    assert moved.json()["address"] == "b@example.com" and moved.json()["verified"] is False
    gone = await me.client.delete(f"{methods(me.user_id)}/{email.json()['id']}")
    assert gone.status_code == 204
    assert len((await me.client.get(methods(me.user_id))).json()) == 1


async def test_only_the_person_or_an_admin_may_touch_their_contact_methods(people: People) -> None:
    target = people.responder.user_id
    body = {"kind": "email", "address": "x@example.com"}
    for other in (people.other_responder, people.manager, people.viewer):
        assert (await other.client.post(methods(target), json=body)).status_code == 403
        assert (await other.client.get(methods(target))).status_code == 403
        assert (await other.client.get(rules(target))).status_code == 403
    assert (await people.admin.client.post(methods(target), json=body)).status_code == 201
    assert (await people.admin.client.get(methods(424242))).status_code == 404


async def test_bad_contact_methods_get_a_422_that_says_what_to_fix(people: People) -> None:
    me = people.responder
    cases = [
        ({"kind": "email", "address": "not an email"}, "email address"),
        ({"kind": "slack", "address": "ftp://hooks.example/x"}, "https://"),
        ({"kind": "email", "address": "a@example.com", "secret": "0123456789abcdef"}, "secret"),
        ({"kind": "pager", "address": "a@example.com"}, "kind"),
    ]
    for body, hint in cases:
        r = await me.client.post(methods(me.user_id), json=body)
        assert r.status_code == 422, body
        assert hint in r.json()["detail"]


async def test_the_test_button_queues_a_message_whose_delivery_verifies_the_method(
    people: People, receiver: HttpReceiver, ctx: EngineContext
) -> None:
    me = people.responder
    cm = (
        await me.client.post(methods(me.user_id), json={"kind": "slack", "address": receiver.url("/s")})
    ).json()
    r = await me.client.post(f"{methods(me.user_id)}/{cm['id']}/test")
    assert r.status_code == 202 and r.json()["event"] == "test" and r.json()["status"] == "pending"
    await fire_due(ctx)
    assert "Tocsin test notification" in receiver.received[0].json["text"]
    [after] = (await me.client.get(methods(me.user_id))).json()
    assert after["verified"] is True


async def test_notification_rules_crud(people: People) -> None:
    me, other = people.responder, people.other_responder
    cm = (
        await me.client.post(methods(me.user_id), json={"kind": "email", "address": "a@example.com"})
    ).json()
    theirs = (
        await other.client.post(methods(other.user_id), json={"kind": "email", "address": "b@example.com"})
    ).json()
    rule = await me.client.post(rules(me.user_id), json={"contact_method_id": cm["id"], "delay_minutes": 5})
    assert rule.status_code == 201 and rule.json()["urgency"] == "high"
    dup = await me.client.post(rules(me.user_id), json={"contact_method_id": cm["id"], "delay_minutes": 5})
    assert dup.status_code == 409
    foreign = await me.client.post(rules(me.user_id), json={"contact_method_id": theirs["id"]})
    assert foreign.status_code == 422 and "no contact method" in foreign.json()["detail"]
    too_late = await me.client.post(
        rules(me.user_id), json={"contact_method_id": cm["id"], "delay_minutes": 5000}
    )
    assert too_late.status_code == 422
    patched = await me.client.patch(
        f"{rules(me.user_id)}/{rule.json()['id']}", json={"urgency": "low", "delay_minutes": 0}
    )
    assert (patched.json()["urgency"], patched.json()["delay_minutes"]) == ("low", 0)
    assert len((await me.client.get(rules(me.user_id))).json()) == 1
    assert (await me.client.delete(f"{rules(me.user_id)}/{rule.json()['id']}")).status_code == 204
    assert (await me.client.get(rules(me.user_id))).json() == []


async def test_templates_are_listed_and_edited_by_config_managers_and_validated_on_save(
    people: People,
) -> None:
    assert (await people.responder.client.get("/api/v1/notification-templates")).status_code == 403
    admin = people.admin.client
    listed = (await admin.get("/api/v1/notification-templates")).json()
    assert len(listed) == 8 * 4 and all(t["subject"] is None for t in listed)
    url = "/api/v1/notification-templates/paged/slack"
    ok = await admin.put(url, json={"subject": ":rotating_light: {{ incident.ref }}", "body": None})
    assert ok.status_code == 200 and ok.json()["subject"].startswith(":rotating_light:")
    assert "{{ url }}" in ok.json()["default_body"]
    broken = await admin.put(url, json={"body": "{% for x in %}"})
    assert broken.status_code == 422 and "TemplateSyntaxError" in broken.json()["detail"]
    typo = await admin.put(url, json={"body": "{{ incidnet.ref }}"})
    assert typo.status_code == 422 and "incidnet" in typo.json()["detail"]
    assert (await admin.put(url, json={"subject": None, "body": None})).status_code == 200
    assert all(t["subject"] is None for t in (await admin.get("/api/v1/notification-templates")).json())
    assert (await admin.put("/api/v1/notification-templates/paged/pigeon", json={})).status_code == 422


async def test_throttles_are_data_an_admin_can_change(people: People) -> None:
    listed = {
        t["channel"]: t for t in (await people.viewer.client.get("/api/v1/notification-throttles")).json()
    }
    assert listed["slack"] == {"channel": "slack", "max_messages": 20, "window_seconds": 60}
    body = {"max_messages": 5, "window_seconds": 30}
    assert (
        await people.manager.client.put("/api/v1/notification-throttles/slack", json=body)
    ).status_code == 403
    assert (
        await people.admin.client.put("/api/v1/notification-throttles/slack", json=body)
    ).status_code == 200
    listed = {
        t["channel"]: t for t in (await people.viewer.client.get("/api/v1/notification-throttles")).json()
    }
    assert listed["slack"]["max_messages"] == 5


async def test_the_outbox_is_for_admins_and_managers_and_filters_by_incident_and_status(
    people: People, db: Database
) -> None:
    await page(db, people.responder.user_id, "inc:7", incident={"incident": {"id": 7, "title": "A"}})
    await page(db, people.responder.user_id, "inc:8", incident={"incident": {"id": 8, "title": "B"}})
    assert (await people.responder.client.get("/api/v1/outbox")).status_code == 403
    rows = (await people.manager.client.get("/api/v1/outbox", params={"incident_id": 7})).json()
    assert [r["idempotency_key"] for r in rows] == ["inc:7:account-email"]
    assert rows[0]["status"] == "pending" and rows[0]["subject"] == "[Page] INC-7: A"
    assert len((await people.admin.client.get("/api/v1/outbox", params={"status": "pending"})).json()) == 2
    assert (await people.admin.client.get("/api/v1/outbox", params={"status": "sent"})).json() == []
    assert (await people.admin.client.get("/api/v1/outbox", params={"status": "lost"})).status_code == 422
