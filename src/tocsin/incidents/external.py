"""What other domains write onto an incident: timeline entries for alerts, pages, escalations, SLA clocks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import SYSTEM, Actor
from tocsin.db import utcnow
from tocsin.errors import NotFound
from tocsin.incidents.models import EntryKind, Incident, TimelineEntry, Visibility
from tocsin.incidents.store import record


async def add_system_entry(
    *,
    session: AsyncSession,
    incident_id: int,
    kind: EntryKind,
    text: str,
    data: dict[str, Any] | None = None,
    actor: Actor = SYSTEM,
    visibility: Visibility = Visibility.internal,
    now: datetime | None = None,
) -> TimelineEntry:
    """Record on the incident's timeline (and in the audit log) something another domain did for it.

    No permission check: callers are the engine's handlers and intake, acting as the system.
    """
    incident = await session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"no incident INC-{incident_id}")
    return record(
        session,
        incident,
        actor,
        kind,
        text,
        now=now or utcnow(),
        action=f"system.{kind}",
        visibility=visibility,
        data=data,
    )
