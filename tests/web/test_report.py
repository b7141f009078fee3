"""Reporting an incident through the form: the type's own fields, the live priority, the public portal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import People
from tests.web.conftest import Browser, Login, csrf_of
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database
from tocsin.incidents import service as incidents
from tocsin.web import ui_report

pytestmark = pytest.mark.anyio

SAFETY = {
    "type": "safety",
    "title": "Forklift clipped a racking upright",
    "impact": "2",
    "urgency": "2",
    "x_event_date": "2024-05-31",
    "x_event_time": "14:05",
    "x_location": "Warehouse B",
    "x_what_happened": "Reversing forklift hit the upright; no one hurt.",
    "x_actual_severity": "near_miss",
    "x_potential_severity": "lost_time",
    "x_emergency_room": "no",
}


async def _incident(db: Database, ref: str) -> Any:
    async with db.read() as s:
        return await incidents.get_incident(session=s, actor=SYSTEM, ref=ref)


async def test_the_form_shows_the_chosen_types_own_fields(login: Login) -> None:
    b = await login("reporter@example.com")
    page = (await b.get("/report?type=safety")).text
    assert 'name="x_actual_severity"' in page and 'type="date"' in page and 'type="time"' in page
    assert "near miss" in page  # choices in words
    it = (await b.get("/report?type=security")).text
    assert 'name="x_indicators"' in it and 'name="x_actual_severity"' not in it


async def test_a_signed_in_reporter_files_a_safety_incident(login: Login, db: Database) -> None:
    b = await login("reporter@example.com")
    r = await b.post("/report", SAFETY)
    assert r.status_code == 303, r.text
    ref = r.headers["location"].rsplit("/", 1)[1]
    incident = await _incident(db, ref)
    assert incident.type_key == "safety" and incident.priority == 3
    assert incident.extra["actual_severity"] == "near_miss"
    assert incident.extra["emergency_room"] is False and incident.extra["event_time"] == "14:05"
    assert (await b.get(f"/incidents/{ref}")).status_code == 200  # reporters see their own


async def test_a_missing_required_field_keeps_what_was_typed(login: Login) -> None:
    b = await login("reporter@example.com")
    r = await b.post("/report", {**SAFETY, "x_location": ""})
    assert r.status_code == 422
    assert "Where the event occurred" in r.text and "is required" in r.text
    assert 'value="Forklift clipped a racking upright"' in r.text


async def test_indicators_are_read_one_per_line(login: Login, db: Database) -> None:
    b = await login("responder@example.com")
    r = await b.post(
        "/report",
        {"type": "security", "title": "Phish", "x_indicators": "ip 203.0.113.9\ndomain Evil.Example.com\n"},
    )
    assert r.status_code == 303, r.text
    incident = await _incident(db, r.headers["location"].rsplit("/", 1)[1])
    assert incident.extra["indicators"] == [
        {"type": "ip", "value": "203.0.113.9"},
        {"type": "domain", "value": "evil.example.com"},
    ]


async def test_the_priority_preview_follows_the_matrix(login: Login) -> None:
    b = await login("reporter@example.com")
    r = await b.get("/report/priority", params={"impact": 1, "urgency": 1}, headers={"HX-Request": "true"})
    assert "P1" in r.text and "critical" in r.text
    r = await b.get("/report/priority", params={"impact": 2, "urgency": 3})
    assert "P4" in r.text


async def _portal_form(b: Browser) -> str:
    page = await b.get("/report?type=it_service")
    assert page.status_code == 200
    assert 'name="reporter_email"' in page.text
    return csrf_of(page.text)


async def test_someone_without_an_account_reports_through_the_portal(
    browser: Callable[[], Browser], db: Database
) -> None:
    ui_report.PORTAL_LIMIT.hits.clear()
    b = browser()
    token = await _portal_form(b)
    form = {"csrf_token": token, "title": "Printer on fire", "description": "Smoke on floor 3."}
    person = {"reporter_name": "Jo Public", "reporter_email": "jo@example.org"}
    r = await b.client.post("/report", data=form | person)
    assert r.status_code == 200, r.text
    assert "received" in r.text
    ref = r.text.split('class="ref">')[1].split("<")[0]
    incident = await _incident(db, ref)
    assert incident.reporter_id is None
    assert incident.description.startswith("Reported without an account by Jo Public <jo@example.org>.")
    async with db.read() as s:
        entries, _ = await incidents.timeline(session=s, actor=SYSTEM, ref=ref)
    assert entries[0].actor == "portal:jo@example.org"


async def test_the_portal_asks_who_you_are_and_checks_its_token(
    browser: Callable[[], Browser], db: Database
) -> None:
    ui_report.PORTAL_LIMIT.hits.clear()
    b = browser()
    token = await _portal_form(b)
    r = await b.client.post("/report", data={"csrf_token": token, "title": "x", "reporter_name": "Jo"})
    assert r.status_code == 422 and "your email" in r.text
    r = await b.client.post(
        "/report", data={"title": "x", "reporter_name": "Jo", "reporter_email": "jo@example.org"}
    )
    assert r.status_code == 403
    other = browser()  # a token from another browser (another site's page) does not fit this cookie
    await other.get("/report")
    r = await other.client.post(
        "/report",
        data={"csrf_token": token, "title": "x", "reporter_name": "Jo", "reporter_email": "jo@example.org"},
    )
    assert r.status_code == 403


async def test_the_portal_is_rate_limited(browser: Callable[[], Browser]) -> None:
    ui_report.PORTAL_LIMIT.hits.clear()
    b = browser()
    token = await _portal_form(b)
    data = {"csrf_token": token, "title": "spam", "reporter_name": "Bot", "reporter_email": "bot@example.org"}
    tries = ui_report.PORTAL_LIMIT.limit + 1
    codes = [(await b.client.post("/report", data=data)).status_code for _ in range(tries)]
    assert codes[:-1] == [200] * ui_report.PORTAL_LIMIT.limit and codes[-1] == 429
    ui_report.PORTAL_LIMIT.hits.clear()


async def test_with_the_portal_off_reporting_needs_a_login(
    browser: Callable[[], Browser], app: Any, people: People
) -> None:
    app.state.settings.portal_enabled = False
    try:
        r = await browser().get("/report")
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    finally:
        app.state.settings.portal_enabled = True
