"""Claiming a due message for sending: lock it, respect its throttle, form its bundle, count the attempt.

This is the short write transaction before the network call. Concurrency (several workers on PostgreSQL):
the message's own row is locked `FOR UPDATE`, and bundle candidates with `SKIP LOCKED`, so two workers
never put one message in two bundles; a message being sent carries `sending_until`, so no other bundle
takes it meanwhile. The throttle is a soft limit: two workers may both pass it at the same instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.engine import service as engine
from tocsin.notify import bundle, configuration, throttle
from tocsin.notify.channels.base import Message
from tocsin.notify.models import ContactMethod, OutboxMessage, OutboxStatus
from tocsin.notify.service import DELIVER

SEND_LEASE = timedelta(minutes=5)  # far above any channel timeout; after a crash the engine retries anyway


@dataclass(frozen=True)
class Claimed:
    """A message to send now, carrying `member_ids` as a bundle if there are any."""

    leader_id: int
    member_ids: tuple[int, ...]
    message: Message
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class Deferred:
    """The destination's throttle is full: try again at `at`."""

    at: datetime


def snapshot(row: OutboxMessage, secret: str | None = None) -> Message:
    return Message(
        id=row.id,
        idempotency_key=row.idempotency_key,
        channel=row.channel,
        target=row.target,
        subject=row.subject,
        body=row.body,
        event=row.event,
        created_at=row.created_at,
        link=row.link,
        payload=row.payload,
        incident_id=row.incident_id,
        secret=secret,
    )


async def _throttled_until(session: AsyncSession, row: OutboxMessage, now: datetime) -> datetime | None:
    limit = await configuration.throttle_limit(session=session, channel=row.channel)
    if limit.max_messages <= 0:
        return None
    recent = await session.scalars(
        select(OutboxMessage.sent_at)
        .where(
            OutboxMessage.channel == row.channel,
            OutboxMessage.target == row.target,
            OutboxMessage.status == OutboxStatus.sent,
            OutboxMessage.sent_at > now - limit.window,
        )
        .order_by(OutboxMessage.sent_at.desc())
        .limit(limit.max_messages)
    )
    return throttle.blocked_until([t for t in recent if t is not None], limit, now)


async def _gather(session: AsyncSession, row: OutboxMessage, now: datetime) -> list[OutboxMessage]:
    """Take the other never-tried pending messages to the same destination due within the bundle window."""
    members = list(
        await session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.channel == row.channel,
                OutboxMessage.target == row.target,
                OutboxMessage.contact_method_id.is_not_distinct_from(row.contact_method_id),
                OutboxMessage.status == OutboxStatus.pending,
                OutboxMessage.id != row.id,
                OutboxMessage.attempts == 0,
                OutboxMessage.due_at <= now + bundle.WINDOW,
                or_(OutboxMessage.sending_until.is_(None), OutboxMessage.sending_until < now),
            )
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
            .limit(bundle.MAX_SIZE - 1)
            .with_for_update(skip_locked=True)
        )
    )
    for member in members:
        member.status, member.bundled_into = OutboxStatus.bundled, row.id
        await engine.cancel(session=session, kind=DELIVER, subject=str(member.id))
    return members


async def _members(session: AsyncSession, leader_id: int) -> list[OutboxMessage]:
    return list(
        await session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.bundled_into == leader_id,
                OutboxMessage.status == OutboxStatus.bundled,
                OutboxMessage.sent_at.is_(None),
            )
            .order_by(OutboxMessage.id)
        )
    )


async def claim(*, session: AsyncSession, outbox_id: int, now: datetime) -> Claimed | Deferred | None:
    """Prepare outbox message `outbox_id` for sending; None when there is nothing to send (any more).

    A bundle forms only on the first attempt and keeps its members on retries, so a retry resends the
    same content under the same idempotency key.
    """
    row = await session.scalar(select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update())
    if row is None or row.status != OutboxStatus.pending:
        return None
    until = await _throttled_until(session, row, now)
    if until is not None:
        row.due_at = until
        return Deferred(until)
    members = await (_gather(session, row, now) if row.attempts == 0 else _members(session, row.id))
    row.attempts += 1
    row.sending_until = now + SEND_LEASE
    method = await session.get(ContactMethod, row.contact_method_id) if row.contact_method_id else None
    message = bundle.compose(snapshot(row, method.secret if method else None), [snapshot(m) for m in members])
    return Claimed(row.id, tuple(m.id for m in members), message, row.attempts, row.created_at)
