"""People's own notification settings: contact methods, personal rules, and test messages."""

from __future__ import annotations

import secrets
import uuid

import httpx
from pydantic.networks import validate_email
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit import service as audit
from tocsin.auth import service as auth
from tocsin.auth.permissions import Actor, Can
from tocsin.db import utcnow
from tocsin.errors import Conflict, Forbidden, Invalid, NotFound
from tocsin.notify import service, templates
from tocsin.notify.models import (
    ChannelKind,
    ContactMethod,
    NotificationRule,
    NotifyEvent,
    OutboxMessage,
    Urgency,
)

MAX_DELAY_MINUTES = 24 * 60


async def _owner(session: AsyncSession, actor: Actor, user_id: int) -> None:
    """People manage their own settings; admins anyone's."""
    if actor.user_id != user_id and not actor.can(Can.manage_users):
        raise Forbidden("you may only manage your own contact methods and notification rules")
    await auth.get_user(session=session, user_id=user_id)


def _check_address(kind: ChannelKind, address: str) -> str:
    address = address.strip()
    if kind == ChannelKind.email:
        try:
            return validate_email(address)[1]
        except PydanticCustomError as exc:
            raise Invalid(f"address is not an email address: {exc}", field="address") from exc
    try:
        url = httpx.URL(address)
    except httpx.InvalidURL as exc:
        raise Invalid(f"address is not a URL: {exc}", field="address") from exc
    if url.scheme not in ("https", "http") or not url.host:
        raise Invalid(
            f"a {kind} address must be an https:// URL (http:// is accepted on closed networks)",
            field="address",
        )
    if len(address) > 1000:
        raise Invalid("address is longer than 1000 characters", field="address")
    return address


def _view(cm: ContactMethod) -> dict[str, object]:
    return {
        "user_id": cm.user_id,
        "kind": cm.kind,
        "address": cm.address,
        "label": cm.label,
        "verified": cm.verified,
        "has_secret": cm.secret is not None,
    }


async def get_contact_method(
    *, session: AsyncSession, actor: Actor, user_id: int, method_id: int
) -> ContactMethod:
    await _owner(session, actor, user_id)
    cm = await session.get(ContactMethod, method_id)
    if cm is None or cm.user_id != user_id:
        raise NotFound(f"user {user_id} has no contact method {method_id}")
    return cm


async def list_contact_methods(*, session: AsyncSession, actor: Actor, user_id: int) -> list[ContactMethod]:
    await _owner(session, actor, user_id)
    return list(
        await session.scalars(
            select(ContactMethod).where(ContactMethod.user_id == user_id).order_by(ContactMethod.id)
        )
    )


async def create_contact_method(
    *,
    session: AsyncSession,
    actor: Actor,
    user_id: int,
    kind: ChannelKind,
    address: str,
    label: str = "",
    secret: str | None = None,
) -> tuple[ContactMethod, str | None]:
    """Add a way to reach a person. A webhook gets a signing secret (generated unless given), returned here
    once; other kinds take none."""
    await _owner(session, actor, user_id)
    kind = ChannelKind(kind)
    if secret is not None and kind != ChannelKind.webhook:
        raise Invalid("only webhook contact methods take a signing secret", field="secret")
    if kind == ChannelKind.webhook and secret is None:
        secret = secrets.token_urlsafe(32)
    cm = ContactMethod(
        user_id=user_id,
        kind=kind,
        address=_check_address(kind, address),
        label=label,
        verified=False,
        secret=secret,
        created_at=utcnow(),
    )
    session.add(cm)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="contact_method.create",
        entity_type="contact_method",
        entity_id=cm.id,
        after=_view(cm),
    )
    return cm, secret


async def update_contact_method(
    *,
    session: AsyncSession,
    actor: Actor,
    user_id: int,
    method_id: int,
    address: str | None = None,
    label: str | None = None,
    rotate_secret: bool = False,
) -> tuple[ContactMethod, str | None]:
    """Change a contact method; a new address must be verified again. Returns the new secret if rotated."""
    cm = await get_contact_method(session=session, actor=actor, user_id=user_id, method_id=method_id)
    before = _view(cm)
    if address is not None and address.strip() != cm.address:
        cm.address, cm.verified, cm.last_failure = _check_address(cm.kind, address), False, None
    if label is not None:
        cm.label = label
    new_secret = None
    if rotate_secret:
        if cm.kind != ChannelKind.webhook:
            raise Invalid("only webhook contact methods have a signing secret", field="rotate_secret")
        cm.secret = new_secret = secrets.token_urlsafe(32)
    audit.record(
        session=session,
        actor=actor.ref,
        action="contact_method.update",
        entity_type="contact_method",
        entity_id=cm.id,
        before=before,
        after=_view(cm) | ({"secret": "rotated"} if new_secret else {}),
    )
    return cm, new_secret


async def delete_contact_method(*, session: AsyncSession, actor: Actor, user_id: int, method_id: int) -> None:
    """Remove a contact method, its rules, and the messages still waiting to go to it."""
    cm = await get_contact_method(session=session, actor=actor, user_id=user_id, method_id=method_id)
    await service.cancel_for_contact_method(session=session, contact_method_id=cm.id)
    audit.record(
        session=session,
        actor=actor.ref,
        action="contact_method.delete",
        entity_type="contact_method",
        entity_id=cm.id,
        before=_view(cm),
    )
    await session.delete(cm)
    await session.flush()


async def send_test(
    *, session: AsyncSession, actor: Actor, user_id: int, method_id: int, base_url: str
) -> OutboxMessage:
    """Queue a test message to a contact method; its successful delivery marks the method verified."""
    cm = await get_contact_method(session=session, actor=actor, user_id=user_id, method_id=method_id)
    user = await auth.get_user(session=session, user_id=user_id)
    ctx = templates.context(
        {"user": {"id": user.id, "name": user.name}}, event=NotifyEvent.test, base_url=base_url
    )
    kind = ChannelKind(cm.kind)
    rendered = await service.render(session=session, event=NotifyEvent.test, channel=kind, ctx=ctx)
    message = await service.enqueue(
        session=session,
        idempotency_key=f"test:cm{cm.id}:{uuid.uuid4().hex}",
        channel=kind,
        target=cm.address,
        subject=rendered.subject,
        body=rendered.body,
        event=NotifyEvent.test,
        user_id=user_id,
        contact_method_id=cm.id,
        template_error=rendered.error,
    )
    assert message is not None  # a fresh random key cannot collide
    return message


# --- rules -----------------------------------------------------------------------------------------


def _rule_view(rule: NotificationRule) -> dict[str, object]:
    return {
        "user_id": rule.user_id,
        "urgency": rule.urgency,
        "delay_minutes": rule.delay_minutes,
        "contact_method_id": rule.contact_method_id,
    }


async def _check_rule(
    session: AsyncSession, user_id: int, contact_method_id: int, delay_minutes: int
) -> None:
    cm = await session.get(ContactMethod, contact_method_id)
    if cm is None or cm.user_id != user_id:
        raise Invalid(f"user {user_id} has no contact method {contact_method_id}", field="contact_method_id")
    if not 0 <= delay_minutes <= MAX_DELAY_MINUTES:
        raise Invalid(f"delay_minutes must be between 0 and {MAX_DELAY_MINUTES}", field="delay_minutes")


async def _refuse_duplicate(
    session: AsyncSession, *, contact_method_id: int, urgency: Urgency, delay_minutes: int, rule_id: int = 0
) -> None:
    if (
        await session.scalar(
            select(NotificationRule.id).where(
                NotificationRule.contact_method_id == contact_method_id,
                NotificationRule.urgency == urgency,
                NotificationRule.delay_minutes == delay_minutes,
                NotificationRule.id != rule_id,
            )
        )
        is not None
    ):
        raise Conflict("the same rule (contact method, urgency, delay) already exists")


async def list_rules(*, session: AsyncSession, actor: Actor, user_id: int) -> list[NotificationRule]:
    await _owner(session, actor, user_id)
    return list(
        await session.scalars(
            select(NotificationRule)
            .where(NotificationRule.user_id == user_id)
            .order_by(NotificationRule.urgency, NotificationRule.delay_minutes, NotificationRule.id)
        )
    )


async def get_rule(*, session: AsyncSession, actor: Actor, user_id: int, rule_id: int) -> NotificationRule:
    await _owner(session, actor, user_id)
    rule = await session.get(NotificationRule, rule_id)
    if rule is None or rule.user_id != user_id:
        raise NotFound(f"user {user_id} has no notification rule {rule_id}")
    return rule


async def create_rule(
    *,
    session: AsyncSession,
    actor: Actor,
    user_id: int,
    contact_method_id: int,
    urgency: Urgency = Urgency.high,
    delay_minutes: int = 0,
) -> NotificationRule:
    """'For `urgency` notifications, reach me on this contact method `delay_minutes` after the cause.'"""
    await _owner(session, actor, user_id)
    await _check_rule(session, user_id, contact_method_id, delay_minutes)
    await _refuse_duplicate(
        session, contact_method_id=contact_method_id, urgency=Urgency(urgency), delay_minutes=delay_minutes
    )
    rule = NotificationRule(
        user_id=user_id,
        urgency=Urgency(urgency),
        delay_minutes=delay_minutes,
        contact_method_id=contact_method_id,
        created_at=utcnow(),
    )
    session.add(rule)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="notification_rule.create",
        entity_type="notification_rule",
        entity_id=rule.id,
        after=_rule_view(rule),
    )
    return rule


async def update_rule(
    *,
    session: AsyncSession,
    actor: Actor,
    user_id: int,
    rule_id: int,
    contact_method_id: int | None = None,
    urgency: Urgency | None = None,
    delay_minutes: int | None = None,
) -> NotificationRule:
    rule = await get_rule(session=session, actor=actor, user_id=user_id, rule_id=rule_id)
    before = _rule_view(rule)
    method = contact_method_id if contact_method_id is not None else rule.contact_method_id
    level = Urgency(urgency) if urgency is not None else Urgency(rule.urgency)
    delay = delay_minutes if delay_minutes is not None else rule.delay_minutes
    await _check_rule(session, user_id, method, delay)
    await _refuse_duplicate(
        session, contact_method_id=method, urgency=level, delay_minutes=delay, rule_id=rule.id
    )
    rule.contact_method_id, rule.urgency, rule.delay_minutes = method, level, delay
    audit.record(
        session=session,
        actor=actor.ref,
        action="notification_rule.update",
        entity_type="notification_rule",
        entity_id=rule.id,
        before=before,
        after=_rule_view(rule),
    )
    return rule


async def delete_rule(*, session: AsyncSession, actor: Actor, user_id: int, rule_id: int) -> None:
    rule = await get_rule(session=session, actor=actor, user_id=user_id, rule_id=rule_id)
    audit.record(
        session=session,
        actor=actor.ref,
        action="notification_rule.delete",
        entity_type="notification_rule",
        entity_id=rule.id,
        before=_rule_view(rule),
    )
    await session.delete(rule)
    await session.flush()
