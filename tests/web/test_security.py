"""The UI's defences: sessions, CSRF on every form, escaping, security headers, confidentiality."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import People
from tests.web.conftest import PASSWORD, Browser, Login, csrf_of, open_incident
from tocsin.db import Database

pytestmark = pytest.mark.anyio


async def test_logging_in_sets_an_httponly_samesite_session_cookie(
    browser: Callable[[], Browser], people: People
) -> None:
    b = browser()
    page = await b.get("/login")
    r = await b.client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "email": "admin@example.com", "password": PASSWORD},
    )
    assert r.status_code == 303 and r.headers["location"] == "/incidents"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("tocsin_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie


async def test_a_wrong_password_shows_the_form_again(browser: Callable[[], Browser], people: People) -> None:
    b = browser()
    page = await b.get("/login")
    r = await b.client.post(
        "/login", data={"csrf_token": csrf_of(page.text), "email": "admin@example.com", "password": "nope"}
    )
    assert r.status_code == 401
    assert "email or password is wrong" in r.text and 'value="admin@example.com"' in r.text


async def test_the_login_form_refuses_a_post_without_its_token(
    browser: Callable[[], Browser], people: People
) -> None:
    b = browser()
    await b.get("/login")
    r = await b.client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert r.status_code == 403
    assert "tocsin_session" not in r.headers.get("set-cookie", "")


async def test_a_form_post_without_the_csrf_token_is_refused(login: Login, db: Database) -> None:
    ref = await open_incident(db)
    b = await login("admin@example.com")
    r = await b.client.post(f"/incidents/{ref}/notes", data={"text": "sneaky", "visibility": "internal"})
    assert r.status_code == 403
    assert "CSRF" in r.text
    r = await b.client.post(
        f"/incidents/{ref}/notes", data={"text": "sneaky", "csrf_token": "forged", "visibility": "internal"}
    )
    assert r.status_code == 403
    page = await b.get(f"/incidents/{ref}")
    assert "sneaky" not in page.text


async def test_htmx_posts_carry_the_token_in_a_header(login: Login, db: Database) -> None:
    ref = await open_incident(db)
    b = await login("admin@example.com")
    r = await b.client.post(
        f"/incidents/{ref}/notes",
        data={"text": "from htmx", "visibility": "internal"},
        headers={"X-CSRF-Token": b.csrf, "HX-Request": "true"},
    )
    assert r.status_code == 303
    assert "from htmx" in (await b.get(f"/incidents/{ref}")).text


async def test_logging_out_needs_the_token_and_ends_the_session(login: Login) -> None:
    b = await login("responder@example.com")
    assert (await b.client.post("/logout")).status_code == 403
    r = await b.post("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = await b.get("/incidents")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


async def test_pages_redirect_to_the_login_and_back(browser: Callable[[], Browser]) -> None:
    r = await browser().get("/incidents?f=1&state=new")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/incidents%3Ff%3D1%26state%3Dnew"
    r = await browser().get("/incidents", headers={"HX-Request": "true"})
    assert r.headers["HX-Redirect"].startswith("/login")


async def test_the_login_never_sends_people_to_another_site(browser: Callable[[], Browser]) -> None:
    page = await browser().get("/login?next=//evil.example/")
    assert 'name="next" value="/incidents"' in page.text


async def test_a_reporter_cannot_see_a_confidential_incident(
    login: Login, people: People, db: Database
) -> None:
    secret = await open_incident(db, title="Laptop stolen", type_key="security", team_id=people.team_b)
    reporter = await login("reporter@example.com")
    assert (await reporter.get(f"/incidents/{secret}")).status_code == 404
    assert "Laptop stolen" not in (await reporter.get("/incidents?f=1")).text
    responder = await login("responder@example.com")  # team A: not one of its responders either
    assert (await responder.get(f"/incidents/{secret}")).status_code == 404
    r = await responder.get(f"/ui/events?incident={secret}")
    assert r.status_code == 404


async def test_html_in_a_title_is_shown_as_text(login: Login, db: Database) -> None:
    ref = await open_incident(db, title='<script>alert("x")</script><img src=x onerror=alert(1)>')
    b = await login("admin@example.com")
    for path in ("/incidents", f"/incidents/{ref}"):
        text = (await b.get(path)).text
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text


async def test_pages_carry_the_security_headers(login: Login) -> None:
    b = await login("admin@example.com")
    for path in ("/incidents", "/oncall", "/report"):
        r = await b.get(path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-store"
        assert "<script>" not in r.text and " style=" not in r.text and " onclick=" not in r.text


async def test_static_assets_are_served_with_their_licenses(browser: Callable[[], Browser]) -> None:
    b = browser()
    for path in (
        "/static/vendor/htmx/htmx.min.js",
        "/static/vendor/htmx/LICENSE",
        "/static/vendor/htmx-ext-sse/sse.min.js",
        "/static/vendor/htmx-ext-sse/LICENSE",
        "/static/vendor/pico/pico.min.css",
        "/static/vendor/pico/LICENSE.md",
        "/static/app.js",
        "/static/app.css",
    ):
        assert (await b.get(path)).status_code == 200, path


async def test_password_guessing_is_cut_off(browser: Callable[[], Browser], people: People) -> None:
    b = browser()
    token = csrf_of((await b.get("/login")).text)
    codes = []
    for _ in range(21):
        form = {"csrf_token": token, "email": "admin@example.com", "password": "x"}
        r = await b.client.post("/login", data=form)
        codes.append(r.status_code)
    assert codes[:20] == [401] * 20 and codes[20] == 429
