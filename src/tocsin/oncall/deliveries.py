"""Delivery results on the incident timeline: "Paged Raj Responder via email: delivered" or "... failed: why".

notify runs its result hooks inside the unit of work that records a result, which has locked the outbox rows
by then. Writing the timeline there would lock the incident row after them: the reverse of the order an
acknowledgement takes (the incident, then the outbox rows it withdraws), which on PostgreSQL can deadlock. So
there the hooks only schedule an `escalation.result` timer, and its handler writes the entry in a unit of work
of its own. SQLite runs one transaction at a time, so nothing can deadlock and the entry is written at once,
saving a write on the database that has only one writer. Every message about an incident is recorded, whoever
queued it (escalation, SLA, reminders).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth import service as auth
from tocsin.db import dialect_of, utcnow
from tocsin.engine import service as engine
from tocsin.errors import NotFound
from tocsin.incidents import service as incidents
from tocsin.incidents.models import EntryKind
from tocsin.notify import service as notify
from tocsin.notify.models import NotifyEvent, OutboxMessage

RESULT = "escalation.result"
_PAGES = {str(NotifyEvent.paged), str(NotifyEvent.escalated)}
ERROR_LENGTH = 500


async def _note(session: AsyncSession, message: OutboxMessage, result: str) -> None:
    """Write the result now (SQLite) or schedule its entry (PostgreSQL), for messages about an incident."""
    if message.incident_id is None:
        return
    payload = {
        "incident_id": message.incident_id,
        "outbox_id": message.id,
        "user_id": message.user_id,
        "channel": str(message.channel),
        "event": str(message.event),
        "result": result,
        "error": None if result == "delivered" else (message.last_error or "unknown error")[:ERROR_LENGTH],
    }
    if dialect_of(session) == "sqlite":
        await write_result(session=session, payload=payload, now=utcnow())
        return
    subject = f"out:{message.id}:{result}"
    await engine.schedule(session=session, kind=RESULT, subject=subject, due_at=utcnow(), payload=payload)


async def on_delivered(session: AsyncSession, message: OutboxMessage) -> None:
    """notify.service.on_delivered hook."""
    await _note(session, message, "delivered")


async def on_failed(session: AsyncSession, message: OutboxMessage) -> None:
    """notify.service.on_failed hook."""
    await _note(session, message, "failed")


def install() -> None:
    """Register the hooks on notify's extension points (idempotent)."""
    for hooks, hook in ((notify.on_delivered, on_delivered), (notify.on_failed, on_failed)):
        if hook not in hooks:
            hooks.append(hook)


async def write_result(*, session: AsyncSession, payload: dict[str, Any], now: datetime) -> bool:
    """Record one delivery result on its incident's timeline; False when the incident is gone."""
    name = "someone"
    if payload.get("user_id") is not None:
        try:
            name = (await auth.get_user(session=session, user_id=payload["user_id"])).name
        except NotFound:
            name = f"user {payload['user_id']}"
    event = str(payload.get("event"))
    what = (
        f"Paged {name}" if event in _PAGES else f"Notified {name} ({event.replace('_', ' ')})"
    ) + f" via {payload.get('channel')}"
    text = (
        f"{what}: delivered"
        if payload.get("result") == "delivered"
        else f"{what}: failed: {payload.get('error')}"
    )
    try:
        await incidents.add_system_entry(
            session=session,
            incident_id=int(payload["incident_id"]),
            kind=EntryKind.notification,
            text=text,
            data=payload,
            now=now,
        )
    except NotFound:
        return False
    return True
