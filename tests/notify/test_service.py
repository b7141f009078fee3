"""The notify service as other domains use it: notify_user, fallbacks, reachability, hooks, templates."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.notify.conftest import MakeContact, page
from tests.notify.driver import fire_due
from tests.notify.receivers import HttpReceiver, SmtpServer
from tocsin.auth import service as auth
from tocsin.auth.models import Role
from tocsin.auth.permissions import SYSTEM
from tocsin.engine.handlers import EngineContext
from tocsin.notify import configuration, contacts, service
from tocsin.notify.models import ChannelKind, ContactMethod, NotifyEvent, OutboxMessage, OutboxStatus, Urgency

pytestmark = pytest.mark.anyio


async def new_user(ctx: EngineContext, email: str, *, active: bool = True) -> int:
    async with ctx.db.write() as s:
        user = await auth.create_user(session=s, actor=SYSTEM, email=email, name="New", role=Role.responder)
        if not active:
            await auth.update_user(session=s, actor=SYSTEM, user_id=user.id, active=False)
        return user.id


async def test_rules_expand_into_one_message_per_contact_method_at_its_delay(
    ctx: EngineContext, make_contact: MakeContact
) -> None:
    person = await make_contact(ChannelKind.email, "a@example.com")
    await make_contact(ChannelKind.slack, "https://hooks.example.com/x", delay=3, user_id=person.user_id)
    await make_contact(ChannelKind.email, "low@example.com", urgency=Urgency.low, user_id=person.user_id)
    async with ctx.db.write() as s:
        queued = await service.notify_user(
            session=s,
            user_id=person.user_id,
            event=NotifyEvent.paged,
            context={"incident": {"id": 9, "title": "T"}},
            urgency=Urgency.high,
            idempotency_prefix="inc:9:esc:1:0",
            base_url="https://t.example",
        )
    assert [(m.channel, m.target) for m in queued] == [
        (ChannelKind.email, "a@example.com"),
        (ChannelKind.slack, "https://hooks.example.com/x"),
    ]
    email, slack = queued
    assert (slack.due_at - email.due_at).total_seconds() == pytest.approx(180, abs=1)
    assert email.incident_id == 9 and email.link == "https://t.example/incidents/INC-9"
    assert slack.idempotency_key.startswith("inc:9:esc:1:0:cm") and slack.idempotency_key.endswith(":d3")


async def test_a_person_without_rules_is_paged_at_their_account_email(ctx: EngineContext) -> None:
    user_id = await new_user(ctx, "norules@example.com")
    ids = await page(ctx.db, user_id, "inc:7")
    async with ctx.db.read() as s:
        row = await s.get(OutboxMessage, ids[0])
    assert row is not None and (row.channel, row.target) == (ChannelKind.email, "norules@example.com")
    assert row.idempotency_key == "inc:7:account-email"


async def test_deactivated_and_unknown_people_get_nothing(ctx: EngineContext) -> None:
    inactive = await new_user(ctx, "gone@example.com", active=False)
    assert await page(ctx.db, inactive, "inc:7") == []
    assert await page(ctx.db, 999_999, "inc:7") == []


async def test_users_without_contact_names_who_a_page_cannot_reach(
    ctx: EngineContext, make_contact: MakeContact
) -> None:
    ok = await make_contact(ChannelKind.email, "ok@example.com")
    low_only = await make_contact(ChannelKind.email, "low@example.com", urgency=Urgency.low)
    broken = await make_contact(ChannelKind.slack, "https://hooks.example.com/dead")
    nothing = await new_user(ctx, "nothing@example.com")
    async with ctx.db.write() as s:
        method = await s.get(ContactMethod, broken.method_id)
        assert method is not None
        method.last_failure = "HTTP 404: no_service"
    async with ctx.db.read() as s:
        missing = await service.users_without_contact(
            session=s, user_ids=[ok.user_id, low_only.user_id, broken.user_id, nothing, 424242]
        )
    assert missing == sorted([low_only.user_id, broken.user_id, nothing, 424242])


async def test_a_delivered_test_message_verifies_the_contact_method_and_a_failing_hook_changes_nothing(
    ctx: EngineContext, receiver: HttpReceiver, make_contact: MakeContact, hooks: tuple[list[int], list[int]]
) -> None:
    async def broken_hook(session: AsyncSession, message: OutboxMessage) -> None:
        await session.execute(select(1))
        raise RuntimeError("timeline is down")

    person = await make_contact(ChannelKind.webhook, receiver.url("/hook"))
    async with ctx.db.write() as s:
        message = await contacts.send_test(
            session=s,
            actor=SYSTEM,
            user_id=person.user_id,
            method_id=person.method_id,
            base_url="https://t.example",
        )
    service.on_delivered.insert(0, broken_hook)
    try:
        await fire_due(ctx)
    finally:
        service.on_delivered.remove(broken_hook)
    assert receiver.received[0].json["event"] == "test"
    assert hooks[0] == [message.id]
    async with ctx.db.read() as s:
        method = await s.get(ContactMethod, person.method_id)
        row = await s.get(OutboxMessage, message.id)
    assert method is not None and method.verified
    assert row is not None and row.status == OutboxStatus.sent


async def test_an_edited_template_is_used_and_a_broken_one_falls_back_with_the_error_on_record(
    ctx: EngineContext, smtp: SmtpServer, make_contact: MakeContact
) -> None:
    person = await make_contact(ChannelKind.email, "a@example.com")
    async with ctx.db.write() as s:
        await configuration.set_template(
            session=s,
            actor=SYSTEM,
            event=NotifyEvent.paged,
            channel=ChannelKind.email,
            subject="PAGE {{ incident.ref }}",
            body="{{ incident.title | upper }} -> {{ url }}",
        )
    await page(ctx.db, person.user_id, "inc:7:a")
    await fire_due(ctx)  # (sent apart, or the two would travel as one bundle)
    async with ctx.db.write() as s:  # an edit that passed validation but breaks on real data
        await configuration.set_template(
            session=s,
            actor=SYSTEM,
            event=NotifyEvent.paged,
            channel=ChannelKind.email,
            subject=None,
            body="{{ incident.summary.upper() }}",
        )
    await page(ctx.db, person.user_id, "inc:7:b", incident={"incident": {"id": 8, "title": "Disk"}})
    await fire_due(ctx)
    first, second = smtp.mailbox.messages
    assert first["Subject"] == "PAGE INC-7"
    assert first.get_body(("plain",)).get_content().strip() == (
        "DATABASE DOWN -> https://tocsin.example.com/incidents/INC-7"
    )
    assert "You are paged for INC-8: Disk" in second.get_body(("plain",)).get_content()
    async with ctx.db.read() as s:
        rows = list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert rows[0].template_error is None
    assert rows[1].template_error and "upper" in rows[1].template_error


async def test_deleting_a_contact_method_withdraws_its_pending_messages(
    ctx: EngineContext, make_contact: MakeContact
) -> None:
    person = await make_contact(ChannelKind.email, "a@example.com", delay=10)
    [outbox_id] = await page(ctx.db, person.user_id, "inc:7")
    async with ctx.db.write() as s:
        await contacts.delete_contact_method(
            session=s, actor=SYSTEM, user_id=person.user_id, method_id=person.method_id
        )
    async with ctx.db.read() as s:
        row = await s.get(OutboxMessage, outbox_id)
        assert await contacts.list_rules(session=s, actor=SYSTEM, user_id=person.user_id) == []
    assert row is not None and row.status == OutboxStatus.cancelled
