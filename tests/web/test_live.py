"""Live pages: committed incident changes reach the open event streams, and only as "something changed"."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import People
from tests.web.conftest import Login, open_incident
from tocsin.auth.models import Role
from tocsin.auth.permissions import SYSTEM, Actor
from tocsin.db import Database
from tocsin.incidents import service as incidents
from tocsin.web import live
from tocsin.web.session import Ui

pytestmark = pytest.mark.anyio


def test_the_hub_replays_what_a_reconnecting_page_missed() -> None:
    hub = live.Hub()
    assert hub.since(0) == frozenset()
    hub.publish(frozenset({1}))
    hub.publish(frozenset({2, 3}))
    assert hub.since(0) == {1, 2, 3} and hub.since(1) == {2, 3} and hub.since(2) == frozenset()
    for n in range(live.KEEP + 5):
        hub.publish(frozenset({n}))
    assert hub.since(1) is None  # too long ago: the page refreshes everything


async def _events(stream: Any, count: int) -> list[str]:
    names: list[str] = []
    async for chunk in stream:
        names += [line[7:] for line in chunk.decode().splitlines() if line.startswith("event: ")]
        if len(names) >= count:
            break
    return names


async def test_a_committed_change_reaches_the_stream_of_the_incident_page(
    app: Any, db: Database, people: People
) -> None:
    ref = await open_incident(db, team_id=people.team_a)
    hub = live.hub(app)
    admin = Actor(kind="user", user_id=people.admin.user_id, role=Role.admin, name="Admin")
    c = Ui(db, app.state.settings, admin, "")
    incident_id = incidents.parse_ref(ref)
    stream = live.stream(c, hub, hub.seq, incident_id, lifetime=5)
    waiting = asyncio.create_task(_events(stream, 2))
    await asyncio.sleep(0.2)
    async with db.write() as s:
        await incidents.add_note(session=s, actor=SYSTEM, ref=ref, text="progress")
    assert await asyncio.wait_for(waiting, 5) == ["incidents", f"inc-{incident_id}"]


async def test_the_event_stream_answers_signed_in_pages_only(login: Login, browser: Any) -> None:
    r = await browser().get("/ui/events")
    assert r.status_code == 303
    b = await login("viewer@example.com")
    live.STREAM_SECONDS, saved = 0.2, live.STREAM_SECONDS
    try:
        r = await b.get("/ui/events")
    finally:
        live.STREAM_SECONDS = saved
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.text.startswith("retry: 1000\n")
