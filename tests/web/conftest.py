"""Helpers for the web UI tests: signed-in browsers (cookie + CSRF) for each persona, incidents to look at."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import People
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database
from tocsin.incidents import service as incidents
from tocsin.web import ui_auth, ui_report

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_TITLE = re.compile(r"<title>([^<]+)</title>")


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def title_of(html: str) -> str:
    found = _TITLE.search(html)
    assert found, "the page has no <title>"
    return found.group(1)


@dataclass
class Browser:
    """An httpx client that keeps cookies, like a browser without JavaScript."""

    client: httpx.AsyncClient
    csrf: str = ""

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        return await self.client.get(url, **kw)

    async def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        """A form post carrying the session's CSRF token, as the pages' forms do."""
        return await self.client.post(url, data={"csrf_token": self.csrf, **(data or {})}, **kw)


Login = Callable[[str], Awaitable[Browser]]


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Rate limits live in the process; each test starts with none used."""
    ui_auth.LOGIN_LIMIT.hits.clear()
    ui_report.PORTAL_LIMIT.hits.clear()


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[Callable[[], Browser]]:
    transport = httpx.ASGITransport(app=app)
    made: list[httpx.AsyncClient] = []

    def new() -> Browser:
        client = httpx.AsyncClient(transport=transport, base_url="http://tocsin.test")
        made.append(client)
        return Browser(client)

    yield new
    for c in made:
        await c.aclose()


@pytest.fixture
def login(browser: Callable[[], Browser], people: People) -> Login:
    """A browser signed in as the persona with this email (e.g. "reporter@example.com")."""

    async def sign_in(email: str) -> Browser:
        b = browser()
        page = await b.get("/login")
        r = await b.client.post(
            "/login", data={"csrf_token": csrf_of(page.text), "email": email, "password": PASSWORD}
        )
        assert r.status_code == 303, r.text
        b.csrf = csrf_of((await b.get("/incidents")).text)
        return b

    return sign_in


async def open_incident(db: Database, title: str = "Checkout is down", **kw: Any) -> str:
    """An incident filed by the system, as alerts would open it."""
    async with db.write() as s:
        incident = await incidents.create_incident(session=s, actor=SYSTEM, title=title, **kw)
        return incident.ref
