"""Notify operations other domains call: queue a message, notify a person by their rules, withdraw messages,
find people who cannot be reached, and the delivery record with its result hooks.

Nothing here sends anything: a message is an outbox row plus a `notify.deliver` timer, written in the
caller's transaction, and the engine delivers it after commit (see `delivery.py`).

Idempotency keys: callers choose them so that a repeated cause maps to the same key, e.g.
`inc:42:esc:1:2` (incident 42, escalation run 1, step 2). `notify_user` appends `:cm<id>:d<delay>` per
contact method and delay (`:account-email` for the fallback), so `cancel(idempotency_prefix=...)` with the
same prefix withdraws whatever of it has not gone out yet.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth import service as auth
from tocsin.auth.permissions import Actor, Can
from tocsin.db import dialect_of, upsert_insert, utcnow
from tocsin.engine import service as engine
from tocsin.errors import Forbidden, NotFound
from tocsin.notify import configuration, templates
from tocsin.notify.models import (
    ChannelKind,
    ContactMethod,
    NotificationRule,
    NotifyEvent,
    OutboxMessage,
    OutboxStatus,
    Urgency,
)

DELIVER = "notify.deliver"  # the engine timer kind; its subject is the outbox id
log = structlog.get_logger(__name__)

ResultHook = Callable[[AsyncSession, OutboxMessage], Awaitable[None]]
# Extension points: called once per outbox message (bundle members included) in the transaction that records
# the result, e.g. to append to the incident's timeline. A failing hook is logged and rolled back to its
# savepoint; it never undoes the record, which would resend the message.
on_delivered: list[ResultHook] = []
on_failed: list[ResultHook] = []


async def enqueue(
    *,
    session: AsyncSession,
    idempotency_key: str,
    channel: ChannelKind,
    target: str,
    subject: str,
    body: str,
    event: NotifyEvent,
    payload: Any = None,
    user_id: int | None = None,
    incident_id: int | None = None,
    contact_method_id: int | None = None,
    link: str | None = None,
    due_at: datetime | None = None,
    template_error: str | None = None,
) -> OutboxMessage | None:
    """Queue one message for delivery at `due_at` (now by default); None if the key was already queued.

    The row and its delivery timer are written in the caller's transaction, so the message goes out if and
    only if the cause commits. `contact_method_id` makes webhook deliveries signed with that method's secret.
    """
    now = utcnow()
    due = due_at or now
    stmt = (
        upsert_insert(dialect_of(session))(OutboxMessage)
        .values(
            idempotency_key=idempotency_key,
            channel=ChannelKind(channel),
            target=target,
            subject=templates.one_line(subject),
            body=body,
            link=link,
            payload=payload,
            event=NotifyEvent(event),
            user_id=user_id,
            contact_method_id=contact_method_id,
            incident_id=incident_id,
            status=OutboxStatus.pending,
            attempts=0,
            due_at=due,
            template_error=template_error,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(OutboxMessage.id)
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    if new_id is None:
        return None
    await engine.schedule(session=session, kind=DELIVER, subject=str(new_id), due_at=due)
    return await session.get(OutboxMessage, new_id)


async def _steps(session: AsyncSession, user_id: int, urgency: Urgency) -> list[tuple[ContactMethod, int]]:
    rows = await session.execute(
        select(ContactMethod, NotificationRule.delay_minutes)
        .join(NotificationRule, NotificationRule.contact_method_id == ContactMethod.id)
        .where(NotificationRule.user_id == user_id, NotificationRule.urgency == urgency)
        .order_by(NotificationRule.delay_minutes, ContactMethod.id)
    )
    return [(cm, delay) for cm, delay in rows.all()]


def _webhook_payload(ctx: Mapping[str, Any], rendered: templates.Rendered, key: str) -> dict[str, Any]:
    return {
        "event": ctx["event"],
        "urgency": ctx["urgency"],
        "idempotency_key": key,
        "subject": rendered.subject,
        "body": rendered.body,
        "url": ctx["url"],
        "incident": ctx["incident"],
        "recipient": ctx["user"],
    }


async def render(
    *, session: AsyncSession, event: NotifyEvent, channel: ChannelKind, ctx: Mapping[str, Any]
) -> templates.Rendered:
    """Render an event for a channel with the edited template if there is one (the default if it fails)."""
    subject, body = await configuration.template_override(session=session, event=event, channel=channel)
    rendered = templates.render(event, ctx, subject=subject, body=body)
    if rendered.error:
        log.warning(
            "notify.template_error", notify_event=str(event), channel=str(channel), error=rendered.error
        )
    return rendered


async def notify_user(
    *,
    session: AsyncSession,
    user_id: int,
    event: NotifyEvent,
    context: Mapping[str, Any],
    urgency: Urgency,
    idempotency_prefix: str,
    base_url: str,
) -> list[OutboxMessage]:
    """Queue messages to a person following their notification rules for `urgency`, each at its delay.

    `context` feeds the templates (see `templates.py`): at least {"incident": {"id", "ref"?, "title",
    "priority"?, ...}}; `base_url` is the public URL for the incident link. A person with no rules at all is
    reached at their account email at once, so a page is never silently dropped. Deactivated or unknown
    people get nothing. Returns the newly queued messages (already queued keys are skipped).
    """
    try:
        user = await auth.get_user(session=session, user_id=user_id)
    except NotFound:
        return []
    if not user.active:
        return []
    urgency = Urgency(urgency)
    steps: list[tuple[ContactMethod | None, ChannelKind, str, int]] = [
        (cm, ChannelKind(cm.kind), cm.address, delay) for cm, delay in await _steps(session, user_id, urgency)
    ]
    if not steps and not await _has_rules(session, user_id):
        steps = [(None, ChannelKind.email, user.email, 0)]
    ctx = templates.context(
        {**context, "user": {"id": user.id, "name": user.name}, "urgency": str(urgency)},
        event=event,
        base_url=base_url,
    )
    now, queued, rendered_for = utcnow(), [], {}
    for cm, kind, address, delay in steps:
        if kind not in rendered_for:
            rendered_for[kind] = await render(session=session, event=event, channel=kind, ctx=ctx)
        rendered = rendered_for[kind]
        key = f"{idempotency_prefix}:cm{cm.id}:d{delay}" if cm else f"{idempotency_prefix}:account-email"
        message = await enqueue(
            session=session,
            idempotency_key=key,
            channel=kind,
            target=address,
            subject=rendered.subject,
            body=rendered.body,
            event=event,
            user_id=user.id,
            incident_id=ctx["incident"]["id"],
            contact_method_id=cm.id if cm else None,
            link=ctx["url"],
            due_at=now + timedelta(minutes=delay),
            payload=_webhook_payload(ctx, rendered, key) if kind == ChannelKind.webhook else None,
            template_error=rendered.error,
        )
        if message is not None:
            queued.append(message)
    return queued


async def _has_rules(session: AsyncSession, user_id: int) -> bool:
    return (
        await session.scalar(select(NotificationRule.id).where(NotificationRule.user_id == user_id).limit(1))
        is not None
    )


async def _withdraw(session: AsyncSession, ids: Sequence[int]) -> int:
    """Cancel these messages and their timers. Other messages that were riding in one of them as a bundle
    go back to pending and are due now, so withdrawing a bundle's leader never strands its members."""
    if not ids:
        return 0
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .values(status=OutboxStatus.cancelled, sending_until=None)
    )
    for outbox_id in ids:
        await engine.cancel(session=session, kind=DELIVER, subject=str(outbox_id))
    stranded = list(
        await session.scalars(
            select(OutboxMessage.id).where(
                OutboxMessage.bundled_into.in_(ids),
                OutboxMessage.status == OutboxStatus.bundled,
                OutboxMessage.sent_at.is_(None),
            )
        )
    )
    now = utcnow()
    if stranded:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(stranded))
            .values(status=OutboxStatus.pending, bundled_into=None, due_at=now)
        )
    for outbox_id in stranded:
        await engine.schedule(session=session, kind=DELIVER, subject=str(outbox_id), due_at=now)
    return len(ids)


async def cancel(*, session: AsyncSession, idempotency_prefix: str) -> int:
    """Withdraw the pending messages whose key starts with the prefix (e.g. an incident was acknowledged
    before a delayed rule fired); returns how many. Messages already sent, or travelling inside another
    message's bundle, are left alone: they are on their way."""
    ids = await session.scalars(
        select(OutboxMessage.id).where(
            OutboxMessage.idempotency_key.startswith(idempotency_prefix, autoescape=True),
            OutboxMessage.status == OutboxStatus.pending,
        )
    )
    return await _withdraw(session, list(ids))


async def cancel_for_contact_method(*, session: AsyncSession, contact_method_id: int) -> int:
    """Withdraw every message still waiting to go to a contact method that is being deleted."""
    ids = await session.scalars(
        select(OutboxMessage.id).where(
            OutboxMessage.contact_method_id == contact_method_id,
            OutboxMessage.status.in_([OutboxStatus.pending, OutboxStatus.bundled]),
            OutboxMessage.sent_at.is_(None),
        )
    )
    return await _withdraw(session, list(ids))


async def users_without_contact(*, session: AsyncSession, user_ids: Sequence[int]) -> list[int]:
    """Those of `user_ids` a high-urgency page cannot reach through a working contact method.

    That is: unknown or deactivated people, people without a high-urgency rule (they would get only the
    account-email fallback, if that), and people whose every such rule targets a contact method whose last
    delivery failed permanently.
    """
    wanted = sorted(set(user_ids))
    if not wanted:
        return []
    reachable = set(
        await session.scalars(
            select(NotificationRule.user_id)
            .join(ContactMethod, ContactMethod.id == NotificationRule.contact_method_id)
            .where(
                NotificationRule.user_id.in_(wanted),
                NotificationRule.urgency == Urgency.high,
                ContactMethod.last_failure.is_(None),
            )
        )
    )
    missing = []
    for user_id in wanted:
        if user_id in reachable:
            try:
                if (await auth.get_user(session=session, user_id=user_id)).active:
                    continue
            except NotFound:
                pass
        missing.append(user_id)
    return missing


async def list_outbox(
    *,
    session: AsyncSession,
    actor: Actor,
    incident_id: int | None = None,
    status: OutboxStatus | None = None,
    user_id: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[OutboxMessage]:
    """Newest first, for troubleshooting deliveries (admins and managers)."""
    if not actor.can(Can.read_audit):
        raise Forbidden(f"your role ({actor.role}) may not read the delivery record")
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if incident_id is not None:
        stmt = stmt.where(OutboxMessage.incident_id == incident_id)
    if status is not None:
        stmt = stmt.where(OutboxMessage.status == status)
    if user_id is not None:
        stmt = stmt.where(OutboxMessage.user_id == user_id)
    if before_id is not None:
        stmt = stmt.where(OutboxMessage.id < before_id)
    return list(await session.scalars(stmt))


# --- the delivery record ---------------------------------------------------------------------------


async def _run_hooks(
    session: AsyncSession, hooks: Sequence[ResultHook], messages: Sequence[OutboxMessage]
) -> None:
    for message in messages:
        for hook in list(hooks):
            try:
                async with session.begin_nested():
                    await hook(session, message)
            except Exception:
                log.exception(
                    "notify.result_hook_failed",
                    hook=getattr(hook, "__qualname__", repr(hook)),
                    outbox_id=message.id,
                )


async def _load(session: AsyncSession, leader_id: int, member_ids: Sequence[int]) -> list[OutboxMessage]:
    rows = {
        m.id: m
        for m in await session.scalars(
            select(OutboxMessage).where(OutboxMessage.id.in_([leader_id, *member_ids]))
        )
    }
    return [rows[i] for i in [leader_id, *member_ids] if i in rows]


async def mark_sent(
    *, session: AsyncSession, leader_id: int, member_ids: Sequence[int], now: datetime
) -> None:
    """The channel accepted the message (and the bundle members it carried)."""
    messages = await _load(session, leader_id, member_ids)
    for m in messages:
        m.sent_at, m.sending_until = now, None
        if m.id == leader_id:
            m.status, m.last_error = OutboxStatus.sent, None
    leader = messages[0] if messages and messages[0].id == leader_id else None
    if leader is not None and leader.contact_method_id is not None:
        cm = await session.get(ContactMethod, leader.contact_method_id)
        if cm is not None:
            cm.last_failure = None
            if leader.event == NotifyEvent.test:
                cm.verified = True
    await _run_hooks(session, on_delivered, messages)


async def mark_failed(
    *, session: AsyncSession, leader_id: int, member_ids: Sequence[int], error: str
) -> None:
    """The message will not be delivered: refused for good, or out of retries."""
    messages = await _load(session, leader_id, member_ids)
    for m in messages:
        m.status, m.sending_until = OutboxStatus.failed, None
        m.last_error = error[:2000] if m.id == leader_id else f"bundle #{leader_id} failed: {error}"[:2000]
        if m.contact_method_id is not None:
            cm = await session.get(ContactMethod, m.contact_method_id)
            if cm is not None:
                cm.last_failure = error[:2000]
    await _run_hooks(session, on_failed, messages)


async def mark_retry(*, session: AsyncSession, leader_id: int, error: str, at: datetime) -> None:
    """A transient failure: the message (with any bundle members) is tried again at `at`."""
    message = await session.get(OutboxMessage, leader_id)
    if message is not None:
        message.due_at, message.sending_until, message.last_error = at, None, error[:2000]
