"""The UI in a real browser (Debian's Chromium through Playwright) against `tocsin serve` with the demo data:
report, queue, working an incident, confidentiality, escaping, live updates, phone-sized pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.web.browser_support import (
    ADMIN,
    CHROMIUM_ARGS,
    REPORTER,
    SCREENSHOTS,
    Server,
    demo_server,
    ensure_chromium,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with demo_server(tmp_path_factory.mktemp("browser")) as running:
        yield running


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    path = ensure_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(path), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Session:
    """A signed-in browser context that records Content-Security-Policy violations and page errors."""

    def __init__(
        self, chromium: Browser, server: Server, who: tuple[str, str], viewport: dict[str, int]
    ) -> None:
        self.context: BrowserContext = chromium.new_context(viewport=viewport, base_url=server.base_url)
        self.problems: list[str] = []
        self.page = self.new_page()
        self.page.goto("/login")
        self.page.get_by_label("Email").fill(who[0])
        self.page.get_by_label("Password").fill(who[1])
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_url("**/incidents")

    def new_page(self) -> Page:
        page = self.context.new_page()
        page.on("console", lambda m: self.problems.append(m.text) if "Refused" in m.text else None)
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        return page

    def shot(self, name: str, page: Page | None = None) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (page or self.page).screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()
        assert self.problems == [], f"CSP violations or script errors: {self.problems}"


@pytest.fixture
def admin(chromium: Browser, server: Server) -> Iterator[Session]:
    session = Session(chromium, server, ADMIN, DESKTOP)
    yield session
    session.close()


def report(page: Page, title: str) -> str:
    """File an IT incident through the form; returns its reference."""
    page.goto("/report?type=it_service")
    page.get_by_label("What happened, in a few words").fill(title)
    page.get_by_role("button", name="Report incident").click()
    page.wait_for_url(re.compile(r"/incidents/INC-\d+$"))
    return page.url.rsplit("/", 1)[1]


def test_an_admin_reports_a_safety_incident_and_works_it_to_resolution_and_back(admin: Session) -> None:
    page = admin.page
    admin.shot("queue-desktop")
    page.get_by_role("button", name="Report an incident").click()
    page.get_by_role("button", name="Workplace safety").click()
    expect(page.get_by_label("Actual severity")).to_be_visible()
    page.get_by_label("What happened, in a few words").fill("Forklift clipped racking in aisle 7")
    page.get_by_label("Details").fill("Nobody hurt; upright bent.")
    page.locator("label.level", has_text="Many people").locator("input").check()
    page.locator("label.level", has_text="Work has stopped").locator("input").check()
    expect(page.locator("#priority-preview")).to_contain_text("P1")  # the live priority, from the matrix
    page.get_by_label("Date of injury, illness or event").fill("2024-05-31")
    page.get_by_text("More details, if you know them").click()
    page.get_by_label("Time of event").fill("14:05")
    page.get_by_label("Where the event occurred").fill("Warehouse B, aisle 7")
    page.get_by_label("What happened? Tell us how the injury occurred").fill("Reversing forklift hit it.")
    page.get_by_label("Actual severity").select_option("near_miss")
    page.get_by_label("Potential severity").select_option("lost_time")
    page.get_by_label("Treated in an emergency room?").select_option("no")
    admin.shot("report-safety-desktop")
    page.get_by_role("button", name="Report incident").click()
    page.wait_for_url(re.compile(r"/incidents/INC-\d+$"))
    ref = page.url.rsplit("/", 1)[1]
    head = page.locator("#incident-head")
    expect(head).to_contain_text("Forklift clipped racking in aisle 7")
    expect(head).to_contain_text("P1")
    page.get_by_text("Workplace safety details").click()
    expect(head).to_contain_text("near miss")

    page.goto("/incidents")
    expect(page.locator(f"#row-{ref}")).to_contain_text("Forklift clipped racking")
    page.locator(f"#row-{ref} a").click()

    page.get_by_role("button", name="Acknowledge").click()
    expect(head.locator(".state")).to_have_text("acknowledged")
    page.get_by_text("Assign…").click()
    page.get_by_label("Assignee").select_option(label="Raj Responder")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(head).to_contain_text("Raj Responder")
    page.get_by_label("Add a note").fill("Racking inspector called.")
    page.get_by_role("button", name="Add note").click()
    expect(page.locator("#timeline")).to_contain_text("Racking inspector called.")
    page.get_by_text("Resolve…").click()
    page.get_by_label("Resolution code").select_option("solution_provided")
    page.get_by_label("What was done").fill("Upright replaced and inspected.")
    page.get_by_role("button", name="Resolve", exact=True).click()
    expect(head.locator(".state")).to_have_text("resolved")
    admin.shot("incident-resolved-desktop")
    page.get_by_text("Reopen…").click()
    page.get_by_label("Why it is not fixed").fill("The upright moved again.")
    page.get_by_role("button", name="Reopen", exact=True).click()
    expect(head.locator(".state")).to_have_text("in progress")
    expect(page.locator("#timeline")).to_contain_text("Reopened")


def test_a_refused_action_shows_its_reason_on_the_page(admin: Session) -> None:
    page = admin.page
    report(page, "Resolve me without a summary")
    page.get_by_text("Resolve…").click()
    page.get_by_label("Resolution code").select_option("duplicate")
    page.get_by_label("What was done").fill("Same as the other one")
    page.get_by_role("button", name="Resolve", exact=True).click()
    expect(page.locator("#flash")).to_contain_text("duplicate_of")


def test_a_reporter_cannot_open_a_confidential_incident(
    chromium: Browser, server: Server, admin: Session
) -> None:
    admin.page.goto("/incidents?f=1&type=security")
    secret = admin.page.locator("a", has_text="Phishing campaign").first.get_attribute("href")
    assert secret is not None
    rory = Session(chromium, server, REPORTER, DESKTOP)
    rory.page.goto(secret)
    expect(rory.page.locator("h1")).to_have_text("Not found")
    rory.page.goto("/incidents")
    expect(rory.page.locator("table.queue")).not_to_contain_text("Phishing")
    rory.shot("queue-reporter")
    rory.close()


def test_html_in_a_title_renders_as_text(admin: Session) -> None:
    page = admin.page
    payload = '<img src=x onerror="document.body.dataset.pwned=1">Printer jam'
    ref = report(page, payload)
    expect(page.locator("#incident-head h1")).to_contain_text(payload)
    page.goto("/incidents")
    expect(page.locator(f"#row-{ref}")).to_contain_text(payload)
    assert page.evaluate("document.body.dataset.pwned") is None
    assert page.locator(f"#row-{ref} img").count() == 0


def test_a_second_page_sees_new_incidents_and_notes_without_reloading(admin: Session) -> None:
    watcher = admin.new_page()
    watcher.goto("/incidents")
    watcher.wait_for_timeout(500)  # the event stream connects
    ref = report(admin.page, "Badge readers offline at the south gate")
    expect(watcher.locator(f"#row-{ref}")).to_contain_text("Badge readers offline", timeout=10_000)
    admin.shot("queue-live-update", watcher)

    watcher.goto(f"/incidents/{ref}")
    watcher.wait_for_timeout(500)
    admin.page.get_by_label("Add a note").fill("Facilities on the way.")
    admin.page.get_by_role("button", name="Add note").click()
    expect(watcher.locator("#timeline")).to_contain_text("Facilities on the way.", timeout=10_000)
    watcher.close()


def test_the_main_pages_fit_a_phone(chromium: Browser, server: Server) -> None:
    phone = Session(chromium, server, ADMIN, PHONE)
    page = phone.page
    for name, path in [
        ("queue-phone", "/incidents"),
        ("incident-phone", "/incidents/INC-1"),
        ("report-phone", "/report?type=safety"),
        ("oncall-phone", "/oncall/schedules/1"),
    ]:
        page.goto(path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, f"{path} scrolls sideways on a phone ({width}px)"
        phone.shot(name)
    phone.close()


def test_the_other_pages_render(admin: Session) -> None:
    page = admin.page
    for name, path in [
        ("incident-desktop", "/incidents/INC-1"),
        ("oncall-desktop", "/oncall"),
        ("schedule-month-desktop", "/oncall/schedules/1?view=month"),
        ("policy-desktop", "/oncall/policies/1"),
        ("services-desktop", "/services"),
        ("service-desktop", "/services/1"),
        ("alerts-desktop", "/alerts"),
        ("admin-desktop", "/admin"),
        ("admin-matrix-desktop", "/admin/matrix"),
        ("admin-type-desktop", "/admin/types/safety"),
    ]:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert page.title().endswith("· Tocsin")
        admin.shot(name)
    page.goto("/services/1")
    page.get_by_text("Add an integration").click()
    page.locator("#int-name").fill("Prometheus")
    page.get_by_role("button", name="Add integration").click()
    expect(page.locator("#intake-url")).to_have_value(re.compile(r"/intake/alertmanager/[a-z2-7]{32}$"))
    admin.shot("service-new-integration")
