"""Live pages: incident changes pushed to browsers over server-sent events once they are committed.

An incident-event listener notes each changed incident id in the unit of work's `session.info`; the
Database's after-commit hook hands the ids to this process's `Hub`, which numbers each batch and wakes the
open event streams. A stream tells its page *that* something changed (`incidents`, and `inc-<id>` for the
incident a page shows), never what: the page fetches the fresh fragment through the normal, permission-checked
routes, so nothing confidential travels on the stream.

Several processes (PostgreSQL deployments, `tocsin worker`s, SQLite with more than one server) do not share a
Hub: each stream also polls the newest visible change every `POLL_SECONDS` as a fallback. Streams end after
`STREAM_SECONDS` (the browser reconnects with Last-Event-ID, and a missed batch is replayed as one refresh),
so a server shutting down is never held open by a page.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.errors import NotFound
from tocsin.incidents import events
from tocsin.incidents import service as incidents
from tocsin.incidents.events import IncidentEvent
from tocsin.incidents.service import SortKey
from tocsin.web.routing import ui_router
from tocsin.web.session import Ui, ui

CHANGED = "tocsin_ui_changed"  # session.info key: ids of the incidents this unit of work changed
POLL_SECONDS = 10.0
STREAM_SECONDS = 25.0
KEEP = 512  # batches remembered for replay after a reconnect

router = ui_router()


async def note_change(session: AsyncSession, event: IncidentEvent) -> None:
    """Incident-event listener: remember the changed incident until the unit of work commits."""
    session.info.setdefault(CHANGED, set()).add(event.incident_id)


@dataclass
class Hub:
    """This process's committed incident changes, numbered, for the open event streams."""

    seq: int = 0
    recent: deque[tuple[int, frozenset[int]]] = field(default_factory=lambda: deque(maxlen=KEEP))
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def after_commit(self, info: dict[str, Any]) -> None:
        changed = info.get(CHANGED)
        if changed:
            self.publish(frozenset(changed))

    def publish(self, ids: frozenset[int]) -> None:
        self.seq += 1
        self.recent.append((self.seq, ids))
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    def since(self, seq: int) -> frozenset[int] | None:
        """Ids changed after batch `seq`; None when that is too long ago to know (refresh everything)."""
        if seq >= self.seq:
            return frozenset()
        if not self.recent or self.recent[0][0] > seq + 1:
            return None
        return frozenset().union(*(ids for n, ids in self.recent if n > seq))

    async def wait(self, seconds: float) -> None:
        """Until the next batch is published, or `seconds` pass."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)


def hub(app: FastAPI) -> Hub:
    """The app's Hub, created and hooked to the database on first use."""
    found: Hub | None = getattr(app.state, "ui_hub", None)
    if found is None:
        found = Hub()
        events.LISTENERS.add(note_change)
        app.state.db.after_commit.append(found.after_commit)
        app.state.ui_hub = found
    return found


def current_seq(request: Request) -> int:
    return hub(request.app).seq


def _message(event: str, seq: int) -> bytes:
    return f"id: {seq}\nevent: {event}\ndata: {seq}\n\n".encode()


async def _newest(c: Ui, incident_id: int | None) -> tuple[datetime, int] | None:
    """The newest change the caller can see (or of one incident): the multi-process fallback's probe."""
    async with c.db.read() as s:
        if incident_id is not None:
            try:
                found = await incidents.get_incident(session=s, actor=c.actor, ref=incident_id)
            except NotFound:
                return None
            return found.updated_at, found.id
        rows, _ = await incidents.list_incidents(session=s, actor=c.actor, sort=SortKey.updated_at, limit=1)
    return (rows[0].updated_at, rows[0].id) if rows else None


async def stream(
    c: Ui, the_hub: Hub, since: int, incident_id: int | None, *, lifetime: float
) -> AsyncIterator[bytes]:
    """The event stream of one page: `incidents` on any change, `inc-<id>` for the incident it shows."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + lifetime
    seen = since
    probe = await _newest(c, incident_id)
    yield f"retry: 1000\nid: {the_hub.seq}\n\n".encode()
    while True:
        changed = the_hub.since(seen)
        seen = the_hub.seq
        if changed is None or changed:
            yield _message("incidents", seen)
            if incident_id is not None and (changed is None or incident_id in changed):
                yield _message(f"inc-{incident_id}", seen)
        left = ends - loop.time()
        if left <= 0:
            return
        before = the_hub.seq
        await the_hub.wait(min(POLL_SECONDS, left))
        if the_hub.seq == before:  # quiet here: has another process changed something?
            newer = await _newest(c, incident_id)
            if newer != probe:
                probe = newer
                yield _message("incidents", seen)
                if incident_id is not None:
                    yield _message(f"inc-{incident_id}", seen)
            else:
                yield b": keep-alive\n\n"


@router.get("/ui/events")
async def events_stream(
    request: Request,
    since: int | None = Query(default=None, ge=0),
    incident: str | None = Query(default=None, max_length=40),
    c: Ui = Depends(ui),
) -> StreamingResponse:
    """Server-sent events for live pages; `since` is the batch the page was rendered at."""
    the_hub = hub(request.app)
    last = request.headers.get("last-event-id", "")
    start = int(last) if last.isdigit() else since if since is not None else the_hub.seq
    incident_id = None
    if incident:
        incident_id = incidents.parse_ref(incident)
        async with c.db.read() as s:  # the page may only follow an incident its reader can see
            await incidents.get_incident(session=s, actor=c.actor, ref=incident_id)
    return StreamingResponse(
        stream(c, the_hub, min(start, the_hub.seq), incident_id, lifetime=STREAM_SECONDS),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
