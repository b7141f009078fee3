"""Every page renders for every persona with a title, an empty state where there is nothing, and no 500."""

from __future__ import annotations

import pytest

from tests.conftest import People
from tests.web.conftest import Login, open_incident, title_of
from tocsin.alerts import service as alerts
from tocsin.alerts.adapters.base import Action, AlertEvent
from tocsin.alerts.models import IntegrationKind, Severity
from tocsin.auth.permissions import SYSTEM
from tocsin.catalog import service as catalog
from tocsin.db import Database, utcnow

pytestmark = pytest.mark.anyio

PERSONAS = ["admin", "manager", "responder", "reporter", "viewer"]
# Pages and who may open them (others get a 403 page, which has a title too).
PAGES = {
    "/incidents": set(PERSONAS),
    "/report": set(PERSONAS),
    "/report?type=safety": set(PERSONAS),
    "/oncall": {"admin", "manager", "responder", "viewer"},
    "/services": set(PERSONAS),
    "/alerts": {"admin", "manager", "responder", "viewer"},
    "/admin": {"admin", "manager"},
    "/admin/users": {"admin"},
    "/admin/teams": {"admin", "manager"},
    "/admin/types": {"admin"},
    "/admin/types/safety": {"admin"},
    "/admin/matrix": {"admin"},
    "/admin/sla": {"admin"},
    "/admin/templates": {"admin"},
    "/admin/routing": {"admin"},
}


@pytest.mark.parametrize("persona", PERSONAS)
async def test_each_page_renders_with_a_title_for_each_persona(
    persona: str, login: Login, people: People, db: Database
) -> None:
    ref = await open_incident(db, team_id=people.team_a)
    b = await login(f"{persona}@example.com")
    pages = dict(PAGES)
    pages[f"/incidents/{ref}"] = {"admin", "manager", "responder", "viewer"}
    for path, allowed in pages.items():
        r = await b.get(path)
        expected = 200 if persona in allowed else (404 if path.startswith("/incidents/") else 403)
        assert r.status_code == expected, f"{persona} {path}: {r.status_code} {r.text[:300]}"
        assert title_of(r.text).endswith("· Tocsin"), path
        assert r.headers["content-type"].startswith("text/html")


async def test_the_queue_says_so_when_nothing_matches(login: Login) -> None:
    b = await login("admin@example.com")
    r = await b.get("/incidents", params={"f": "1", "q": "no such words anywhere"})
    assert r.status_code == 200
    assert "No incidents here" in r.text


async def test_the_queue_filters_pages_and_links_back(login: Login, db: Database) -> None:
    for n in range(55):
        await open_incident(db, title=f"Disk full {n}", impact=2, urgency=2)
    b = await login("admin@example.com")
    first = await b.get("/incidents", params={"f": "1", "state": "new", "priority": "3", "q": "Disk"})
    assert first.status_code == 200
    assert "Disk full 54" in first.text and "Disk full 4<" not in first.text
    older = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = await b.get("/incidents" + older)
    assert "Disk full 4<" in second.text and "Disk full 54" not in second.text
    newer = second.text.split('rel="prev"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    again = await b.get("/incidents" + newer)
    assert "Disk full 54" in again.text


async def test_the_home_page_sends_people_to_the_queue_or_the_login(login: Login, browser: object) -> None:
    b = await login("responder@example.com")
    r = await b.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/incidents"
    anonymous = browser()  # type: ignore[operator]
    r = await anonymous.get("/")
    assert r.headers["location"] == "/login"


async def test_an_unknown_incident_is_a_404_page_not_a_500(login: Login) -> None:
    b = await login("admin@example.com")
    for path in ("/incidents/INC-999999", "/incidents/not-a-ref", "/incidents/INC-99999999999999999999"):
        r = await b.get(path)
        assert r.status_code == 404, path
        assert "Not found" in title_of(r.text)


async def test_an_admin_adds_and_reorders_routing_rules(login: Login) -> None:
    b = await login("admin@example.com")
    for name in ("Drop test alerts", "Page on production"):
        r = await b.post(
            "/admin/routing",
            {"name": name, "action": "drop", "conditions": "labels.env equals test\nnot severity in info"},
        )
        assert r.status_code == 303, r.text
    page = (await b.get("/admin/routing")).text
    assert page.index("1. Drop test alerts") < page.index("2. Page on production")
    assert "not severity in info" in page
    rule_id = page.split("2. Page on production")[0].rsplit('id="rule-', 1)[1].split('"')[0]
    assert (await b.post(f"/admin/routing/{rule_id}", {"position": "1"})).status_code == 303
    page = (await b.get("/admin/routing")).text
    assert page.index("1. Page on production") < page.index("2. Drop test alerts")
    bad = await b.post("/admin/routing", {"name": "Broken", "conditions": "severity sounds loud"})
    assert bad.status_code == 422


async def test_alerts_show_on_their_list_and_on_the_incident_they_opened(login: Login, db: Database) -> None:
    async with db.write() as s:
        service = await catalog.create_service(session=s, actor=SYSTEM, slug="shop", name="Shop")
        integration, _ = await alerts.create_integration(
            session=s, actor=SYSTEM, service_id=service.id, name="Prometheus", kind=IntegrationKind.generic
        )
        event = AlertEvent(
            dedup_key="disk-1",
            action=Action.trigger,
            summary="Disk 95% on db-1",
            severity=Severity.critical,
            raw={"secret_sauce": "<b>raw</b>"},
        )
        await alerts.ingest(session=s, integration_id=integration.id, events=[event], now=utcnow())
    b = await login("responder@example.com")
    listing = (await b.get("/alerts")).text
    assert "Disk 95% on db-1" in listing and "Prometheus" in listing
    alert_id = listing.split('hx-get="/alerts/')[1].split("/")[0]
    raw = await b.get(f"/alerts/{alert_id}/raw", headers={"HX-Request": "true"})
    assert "secret_sauce" in raw.text and "&lt;b&gt;raw&lt;/b&gt;" in raw.text
    incident = listing.split('href="/incidents/')[1].split('"')[0]
    page = (await b.get(f"/incidents/{incident}")).text
    assert "Disk 95% on db-1" in page and f"/alerts?incident={incident.removeprefix('INC-')}" in page
    assert (await b.get("/alerts?status=resolved")).text.count("Disk 95%") == 0
