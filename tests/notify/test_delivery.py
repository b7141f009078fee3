"""Delivering the outbox through real servers: SMTP, Slack/Teams/webhook receivers, failures and retries."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from tests.notify.conftest import MakeContact, page
from tests.notify.driver import drain, fire_due
from tests.notify.receivers import HttpReceiver, SmtpServer
from tocsin.db import Database, utcnow
from tocsin.engine import service as engine
from tocsin.engine.handlers import EngineContext, Fired
from tocsin.notify import retry, service
from tocsin.notify.delivery import HANDLERS
from tocsin.notify.models import ChannelKind, NotifyEvent, OutboxMessage, OutboxStatus

pytestmark = pytest.mark.anyio


async def outbox(db: Database) -> list[OutboxMessage]:
    async with db.read() as s:
        return list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_a_page_by_email_arrives_with_subject_body_link_and_recipient(
    ctx: EngineContext, smtp: SmtpServer, make_contact: MakeContact, hooks: tuple[list[int], list[int]]
) -> None:
    person = await make_contact(ChannelKind.email, "oncall@example.com")
    [outbox_id] = await page(ctx.db, person.user_id, "inc:7:page")
    assert await fire_due(ctx) == 1
    [mail] = smtp.mailbox.messages
    assert mail["To"] == "oncall@example.com"
    assert mail["Subject"] == "[P1] INC-7: Database down"
    text = mail.get_body(("plain",)).get_content()
    assert "You are paged for INC-7: Database down" in text
    assert "https://tocsin.example.com/incidents/INC-7" in text
    assert 'href="https://tocsin.example.com/incidents/INC-7"' in mail.get_body(("html",)).get_content()
    [row] = await outbox(ctx.db)
    assert (row.status, row.attempts, row.sent_at is not None) == (OutboxStatus.sent, 1, True)
    assert hooks[0] == [outbox_id]


async def test_slack_teams_and_signed_webhook_posts_arrive_and_verify(
    ctx: EngineContext, receiver: HttpReceiver, make_contact: MakeContact
) -> None:
    slack = await make_contact(ChannelKind.slack, receiver.url("/slack"))
    teams = await make_contact(ChannelKind.teams, receiver.url("/teams"))
    hook = await make_contact(ChannelKind.webhook, receiver.url("/hook"))
    assert hook.secret
    receiver.secrets["/hook"] = hook.secret
    for person in (slack, teams, hook):
        await page(ctx.db, person.user_id, f"inc:7:u{person.user_id}")
    await fire_due(ctx)
    assert receiver.rejected == []
    got = {r.path: r for r in receiver.received}
    assert got["/slack"].json["text"].startswith("*[P1] INC-7: Database down*")
    card = got["/teams"].json["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["actions"][0]["url"] == "https://tocsin.example.com/incidents/INC-7"
    webhook = got["/hook"]
    assert webhook.headers["x-tocsin-signature"].startswith("sha256=")
    assert webhook.headers["x-tocsin-idempotency-key"] == f"inc:7:u{hook.user_id}:cm{hook.method_id}:d0"
    assert webhook.json["incident"]["ref"] == "INC-7" and webhook.json["event"] == "paged"
    assert {m.status for m in await outbox(ctx.db)} == {OutboxStatus.sent}


async def test_a_tampered_or_replayed_webhook_is_rejected_by_a_verifying_receiver(
    ctx: EngineContext, receiver: HttpReceiver, make_contact: MakeContact
) -> None:
    hook = await make_contact(ChannelKind.webhook, receiver.url("/hook"))
    receiver.secrets["/hook"] = "not-the-secret-we-were-given"
    await page(ctx.db, hook.user_id, "inc:7")
    await fire_due(ctx)
    assert receiver.rejected == ["bad signature"]
    [row] = await outbox(ctx.db)
    assert row.status == OutboxStatus.failed and "401" in (row.last_error or "")


async def test_a_receiver_failing_then_recovering_gets_every_message_exactly_once(
    ctx: EngineContext, receiver: HttpReceiver, make_contact: MakeContact
) -> None:
    people = [await make_contact(ChannelKind.webhook, receiver.url(f"/hook/{i}")) for i in range(5)]
    for i, person in enumerate(people):
        receiver.secrets[f"/hook/{i}"] = person.secret or ""
        await page(ctx.db, person.user_id, f"inc:7:u{person.user_id}")
    receiver.fail_next(12, status=500)
    with time_machine.travel(utcnow(), tick=True) as clock:
        await drain(ctx, clock=clock)
    keys = [r.headers["x-tocsin-idempotency-key"] for r in receiver.received]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == 5
    rows = await outbox(ctx.db)
    assert {r.status for r in rows} == {OutboxStatus.sent}
    assert sum(r.attempts for r in rows) == 5 + 12
    assert receiver.rejected == []


async def test_a_4xx_is_permanent_and_not_retried(
    ctx: EngineContext, receiver: HttpReceiver, make_contact: MakeContact, hooks: tuple[list[int], list[int]]
) -> None:
    person = await make_contact(ChannelKind.slack, receiver.url("/gone"))
    [outbox_id] = await page(ctx.db, person.user_id, "inc:7")
    receiver.fail_next(1, status=404)
    with time_machine.travel(utcnow(), tick=True) as clock:
        await drain(ctx, clock=clock)
    assert receiver.attempts == 1
    [row] = await outbox(ctx.db)
    assert (row.status, row.attempts) == (OutboxStatus.failed, 1)
    assert row.last_error and row.last_error.startswith("HTTP 404")
    assert hooks[1] == [outbox_id]
    async with ctx.db.read() as s:
        assert await engine.pending(session=s, kind=service.DELIVER) == []
        method = await s.get(service.ContactMethod, person.method_id)
    assert method is not None and method.last_failure and "404" in method.last_failure


async def test_a_429_is_retried_after_the_retry_after_it_asks_for(
    ctx: EngineContext, receiver: HttpReceiver, make_contact: MakeContact
) -> None:
    person = await make_contact(ChannelKind.slack, receiver.url("/slack"))
    await page(ctx.db, person.user_id, "inc:7")
    receiver.fail_next(1, status=429, headers={"Retry-After": "120"})
    start = utcnow()
    with time_machine.travel(start, tick=False) as clock:
        await fire_due(ctx)
        async with ctx.db.read() as s:
            [timer] = await engine.pending(session=s, kind=service.DELIVER)
        assert timer.due_at == start + timedelta(seconds=120)
        await drain(ctx, clock=clock)
    [delivered] = receiver.received
    assert delivered.at >= (start + timedelta(seconds=120)).timestamp()
    [row] = await outbox(ctx.db)
    assert (row.status, row.attempts) == (OutboxStatus.sent, 2)


async def test_transient_failures_back_off_exponentially_then_give_up(
    ctx: EngineContext, receiver: HttpReceiver, make_contact: MakeContact
) -> None:
    person = await make_contact(ChannelKind.slack, receiver.url("/down"))
    await page(ctx.db, person.user_id, "inc:7")
    receiver.fail_next(100, status=503)
    fired_at = []
    with time_machine.travel(utcnow(), tick=False) as clock:
        while await fire_due(ctx):
            fired_at.append(utcnow())
            async with ctx.db.read() as s:
                timers = await engine.pending(session=s, kind=service.DELIVER)
            if timers:
                clock.move_to(timers[0].due_at)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(fired_at)]
    assert gaps[:4] == [10, 20, 40, 80] and max(gaps) == 3600
    [row] = await outbox(ctx.db)
    assert (row.status, row.attempts) == (OutboxStatus.failed, retry.MAX_ATTEMPTS)
    assert row.last_error and row.last_error.startswith(
        f"gave up after {retry.MAX_ATTEMPTS} attempts: HTTP 503"
    )


async def test_private_targets_are_refused_when_not_allowed(
    ctx: EngineContext, make_contact: MakeContact
) -> None:
    addresses = [
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest",
        "http://localhost:9/x",
    ]
    for n, address in enumerate(addresses):
        person = await make_contact(ChannelKind.webhook, address)
        await page(ctx.db, person.user_id, f"inc:{n}")
    guarded = EngineContext(
        db=ctx.db, settings=ctx.settings.model_copy(update={"allow_private_targets": False})
    )
    await fire_due(guarded)
    rows = await outbox(ctx.db)
    assert [(r.status, r.attempts) for r in rows] == [(OutboxStatus.failed, 1)] * len(addresses)
    assert all("non-public address" in (r.last_error or "") for r in rows)


async def test_enqueuing_the_same_key_twice_makes_one_row_and_one_delivery(
    ctx: EngineContext, receiver: HttpReceiver
) -> None:
    async with ctx.db.write() as s:
        first = await service.enqueue(
            session=s,
            idempotency_key="inc:7:step:1",
            channel=ChannelKind.slack,
            target=receiver.url("/slack"),
            subject="S",
            body="B",
            event=NotifyEvent.paged,
        )
    async with ctx.db.write() as s:
        again = await service.enqueue(
            session=s,
            idempotency_key="inc:7:step:1",
            channel=ChannelKind.slack,
            target=receiver.url("/slack"),
            subject="S",
            body="B",
            event=NotifyEvent.paged,
        )
    assert first is not None and again is None
    await fire_due(ctx)
    async with ctx.db.write() as s:  # and after delivery too
        assert (
            await service.enqueue(
                session=s,
                idempotency_key="inc:7:step:1",
                channel=ChannelKind.slack,
                target=receiver.url("/slack"),
                subject="S",
                body="B",
                event=NotifyEvent.paged,
            )
            is None
        )
    assert await fire_due(ctx) == 0
    assert len(receiver.received) == 1
    assert len(await outbox(ctx.db)) == 1


async def test_a_storm_of_50_pages_to_one_person_becomes_a_few_messages_listing_all_of_them(
    ctx: EngineContext, smtp: SmtpServer, make_contact: MakeContact, hooks: tuple[list[int], list[int]]
) -> None:
    person = await make_contact(ChannelKind.email, "oncall@example.com")
    ids = []
    for n in range(1, 51):
        ids += await page(
            ctx.db,
            person.user_id,
            f"inc:{n}:page",
            incident={"incident": {"id": n, "title": f"Disk full on host {n}"}},
        )
    await fire_due(ctx)
    mails = smtp.mailbox.messages
    assert 1 <= len(mails) <= 3
    text = "\n".join(m.get_body(("plain",)).get_content() for m in mails).replace("\r\n", "\n")
    for n in range(1, 51):
        assert f"INC-{n}: Disk full on host {n}\n" in text
    rows = await outbox(ctx.db)
    assert all(r.sent_at is not None for r in rows)
    assert {r.status for r in rows} == {OutboxStatus.sent, OutboxStatus.bundled}
    assert sorted(hooks[0]) == sorted(ids)


async def test_the_throttle_defers_the_overflow_to_when_the_window_frees(
    ctx: EngineContext, receiver: HttpReceiver, make_contact: MakeContact
) -> None:
    from tocsin.auth.permissions import SYSTEM
    from tocsin.notify import configuration

    async with ctx.db.write() as s:
        await configuration.set_throttle(
            session=s, actor=SYSTEM, channel=ChannelKind.slack, max_messages=2, window_seconds=60
        )
    person = await make_contact(ChannelKind.slack, receiver.url("/slack"))
    start = utcnow()
    with time_machine.travel(start, tick=False) as clock:
        for n in range(3):  # 20 s apart: too far apart to bundle
            await page(ctx.db, person.user_id, f"inc:{n}")
            await fire_due(ctx)
            clock.shift(20)
        assert len(receiver.received) == 2
        await drain(ctx, clock=clock)
    assert len(receiver.received) == 3
    assert receiver.received[2].at == pytest.approx((start + timedelta(seconds=60)).timestamp())


async def test_one_channel_failing_does_not_hold_up_another(
    ctx: EngineContext, smtp: SmtpServer, receiver: HttpReceiver, make_contact: MakeContact
) -> None:
    person = await make_contact(ChannelKind.slack, receiver.url("/slack"))
    await make_contact(ChannelKind.email, "oncall@example.com", user_id=person.user_id)
    receiver.fail_next(1, status=500)
    await page(ctx.db, person.user_id, "inc:7")
    await fire_due(ctx)
    assert len(smtp.mailbox.messages) == 1
    by_channel = {r.channel: r for r in await outbox(ctx.db)}
    assert by_channel[ChannelKind.email].status == OutboxStatus.sent
    assert by_channel[ChannelKind.slack].status == OutboxStatus.pending
    assert by_channel[ChannelKind.slack].last_error == "HTTP 500: ok"


async def test_an_address_the_mail_server_refuses_fails_permanently(
    ctx: EngineContext, smtp: SmtpServer, make_contact: MakeContact
) -> None:
    person = await make_contact(ChannelKind.email, "bounce@example.com")
    await page(ctx.db, person.user_id, "inc:7")
    await fire_due(ctx)
    [row] = await outbox(ctx.db)
    assert row.status == OutboxStatus.failed and "550" in (row.last_error or "")
    assert smtp.mailbox.messages == []


async def test_a_delayed_rule_waits_and_is_withdrawn_by_cancel(
    ctx: EngineContext, smtp: SmtpServer, make_contact: MakeContact
) -> None:
    person = await make_contact(ChannelKind.email, "first@example.com")
    await make_contact(ChannelKind.email, "later@example.com", delay=5, user_id=person.user_id)
    await page(ctx.db, person.user_id, "inc:7:esc:1")
    async with ctx.db.read() as s:
        due = sorted(t.due_at for t in await engine.pending(session=s, kind=service.DELIVER))
    assert due[1] - due[0] >= timedelta(minutes=5) - timedelta(seconds=1)
    await fire_due(ctx)
    assert [m["To"] for m in smtp.mailbox.messages] == ["first@example.com"]
    async with ctx.db.write() as s:
        assert await service.cancel(session=s, idempotency_prefix="inc:7:") == 1
    async with ctx.db.read() as s:
        assert await engine.pending(session=s, kind=service.DELIVER) == []
        assert (
            await s.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.cancelled)
            )
            == 1
        )


async def test_workers_firing_concurrently_send_each_message_exactly_once(
    ctx: EngineContext, receiver: HttpReceiver, make_contact: MakeContact
) -> None:
    person = await make_contact(ChannelKind.webhook, receiver.url("/hook"))
    receiver.secrets["/hook"] = person.secret or ""
    for n in range(20):
        await page(ctx.db, person.user_id, f"inc:{n}")
    async with ctx.db.read() as s:
        timers = await engine.pending(session=s, kind=service.DELIVER)
    fired = [Fired(t.id, t.kind, t.subject, t.due_at, t.payload, 1, f"worker-{t.id}") for t in timers]
    await asyncio.gather(*(HANDLERS[service.DELIVER](ctx, f) for f in fired))
    keys = []
    for request in receiver.received:
        doc = request.json
        keys += (
            [m["idempotency_key"] for m in doc["messages"]]
            if doc["event"] == "bundle"
            else [doc["idempotency_key"]]
        )
    assert sorted(keys) == sorted(f"inc:{n}:cm{person.method_id}:d0" for n in range(20))
    assert len(receiver.received) < 20  # bundles formed despite the race
    assert {r.status for r in await outbox(ctx.db)} <= {OutboxStatus.sent, OutboxStatus.bundled}


async def test_without_an_smtp_server_email_waits_and_retries_instead_of_being_dropped(
    ctx: EngineContext, make_contact: MakeContact
) -> None:
    person = await make_contact(ChannelKind.email, "a@example.com")
    await page(ctx.db, person.user_id, "inc:7")
    await fire_due(EngineContext(db=ctx.db, settings=ctx.settings.model_copy(update={"smtp_host": None})))
    [row] = await outbox(ctx.db)
    assert row.status == OutboxStatus.pending and "TOCSIN_SMTP_HOST" in (row.last_error or "")


async def test_withdrawing_a_bundle_leader_sends_the_messages_it_carried_on_their_own(
    ctx: EngineContext, receiver: HttpReceiver, make_contact: MakeContact
) -> None:
    person = await make_contact(ChannelKind.slack, receiver.url("/slack"))
    for n in (1, 2, 3):
        await page(ctx.db, person.user_id, f"inc:{n}", incident={"incident": {"id": n, "title": f"T{n}"}})
    receiver.fail_next(1, status=503)
    await fire_due(ctx)  # the bundle of three failed and waits for its retry
    assert [r.status for r in await outbox(ctx.db)] == [OutboxStatus.pending] + [OutboxStatus.bundled] * 2
    async with ctx.db.write() as s:  # incident 1 is acknowledged: its page is withdrawn
        assert await service.cancel(session=s, idempotency_prefix="inc:1:") == 1
    await fire_due(ctx)
    [delivered] = receiver.received
    assert "INC-2: T2" in delivered.json["text"] and "INC-3: T3" in delivered.json["text"]
    assert "INC-1" not in delivered.json["text"]
    statuses = [r.status for r in await outbox(ctx.db)]
    assert statuses[0] == OutboxStatus.cancelled and set(statuses[1:]) == {
        OutboxStatus.sent,
        OutboxStatus.bundled,
    }
