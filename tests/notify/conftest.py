"""Fixtures for the notify tests: a real SMTP server and HTTP receiver, settings pointing at them, people."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.notify.receivers import HttpReceiver, SmtpServer, serve
from tocsin.auth import service as auth
from tocsin.auth.models import Role
from tocsin.auth.permissions import SYSTEM
from tocsin.config import Settings
from tocsin.db import Database
from tocsin.engine.handlers import EngineContext
from tocsin.notify import contacts, service
from tocsin.notify.models import ChannelKind, NotifyEvent, OutboxMessage, Urgency


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    server = serve(r)
    yield r
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(database_url: str, smtp: SmtpServer) -> Settings:
    """The suite's settings plus the local SMTP server; private targets allowed (receivers are local)."""
    return Settings(
        database_url=database_url,
        demo=True,
        secret_key="test-secret-key-0123456789",
        max_body_bytes=65_536,
        base_url="https://tocsin.example.com",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        smtp_from="Tocsin <tocsin@example.com>",
        allow_private_targets=True,
        http_timeout_seconds=5,
        engine=False,
    )


@pytest.fixture
def ctx(db: Database, settings: Settings) -> EngineContext:
    return EngineContext(db=db, settings=settings)


@dataclass
class Contact:
    user_id: int
    method_id: int
    secret: str | None


MakeContact = Callable[..., Awaitable[Contact]]


@pytest.fixture
def make_contact(db: Database) -> MakeContact:
    """A new person with one contact method and one rule (high urgency, no delay unless told)."""
    count = 0

    async def make(
        kind: ChannelKind,
        address: str,
        *,
        delay: int = 0,
        urgency: Urgency = Urgency.high,
        user_id: int | None = None,
    ) -> Contact:
        nonlocal count
        count += 1
        async with db.write() as s:
            if user_id is None:
                user = await auth.create_user(
                    session=s,
                    actor=SYSTEM,
                    email=f"person{count}@example.com",
                    name=f"Person {count}",
                    role=Role.responder,
                )
                user_id = user.id
            cm, secret = await contacts.create_contact_method(
                session=s, actor=SYSTEM, user_id=user_id, kind=kind, address=address
            )
            await contacts.create_rule(
                session=s,
                actor=SYSTEM,
                user_id=user_id,
                contact_method_id=cm.id,
                urgency=urgency,
                delay_minutes=delay,
            )
        return Contact(user_id, cm.id, secret)

    return make


@pytest.fixture
def hooks() -> Iterator[tuple[list[int], list[int]]]:
    """Registers result hooks recording delivered and failed outbox ids; unregisters them afterwards."""
    delivered: list[int] = []
    failed: list[int] = []

    async def on_delivered(session: AsyncSession, message: OutboxMessage) -> None:
        delivered.append(message.id)

    async def on_failed(session: AsyncSession, message: OutboxMessage) -> None:
        failed.append(message.id)

    service.on_delivered.append(on_delivered)
    service.on_failed.append(on_failed)
    yield delivered, failed
    service.on_delivered.remove(on_delivered)
    service.on_failed.remove(on_failed)


INCIDENT = {"incident": {"id": 7, "title": "Database down", "priority": "P1", "service": "billing"}}


async def page(
    db: Database,
    user_id: int,
    prefix: str,
    *,
    incident: dict[str, object] | None = None,
    urgency: Urgency = Urgency.high,
) -> list[int]:
    async with db.write() as s:
        queued = await service.notify_user(
            session=s,
            user_id=user_id,
            event=NotifyEvent.paged,
            context=incident or INCIDENT,
            urgency=urgency,
            idempotency_prefix=prefix,
            base_url="https://tocsin.example.com",
        )
        return [m.id for m in queued]
