"""Real mail, sent with smtplib to the listener on a random port, becomes an alert."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import anyio
import pytest
from sqlalchemy import select

from tocsin.alerts import service
from tocsin.alerts.models import Alert, IntegrationKind
from tocsin.alerts.smtp import serve_smtp
from tocsin.app import create_app
from tocsin.auth.permissions import SYSTEM
from tocsin.config import Settings
from tocsin.db import Database

pytestmark = pytest.mark.anyio


def send(port: int, to: str, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "nagios@example.com"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("CRITICAL - load average 42")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(message)


async def test_mail_to_an_integration_address_opens_an_alert_and_strangers_are_refused(
    db: Database, service_id: int
) -> None:
    async with db.write() as s:
        _, key = await service.create_integration(
            session=s, actor=SYSTEM, service_id=service_id, name="mail", kind=IntegrationKind.email
        )
    server = await serve_smtp(db, "127.0.0.1", 0, hostname="tocsin.test")
    port = server.sockets[0].getsockname()[1]
    try:
        await anyio.to_thread.run_sync(send, port, f"{key}+web1-load@alerts.example", "PROBLEM: load on web1")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            await anyio.to_thread.run_sync(send, port, "stranger@alerts.example", "hello")
    finally:
        server.close()
        await server.wait_closed()
    async with db.read() as s:
        [alert] = list(await s.scalars(select(Alert)))
    assert (alert.dedup_key, alert.summary) == ("web1-load", "load on web1")
    assert alert.details["body"] == "CRITICAL - load average 42"


async def test_the_app_runs_the_mail_listener_when_a_port_is_set(
    settings: Settings, db: Database, service_id: int
) -> None:
    async with db.write() as s:
        _, key = await service.create_integration(
            session=s, actor=SYSTEM, service_id=service_id, name="mail", kind=IntegrationKind.email
        )
    app = create_app(settings.model_copy(update={"smtp_listen_port": 0}), database=db)
    async with app.router.lifespan_context(app):
        port = app.state.alert_mail.sockets[0].getsockname()[1]
        await anyio.to_thread.run_sync(send, port, f"{key}@alerts.example", "PROBLEM: queue backlog")
    async with db.read() as s:
        [alert] = list(await s.scalars(select(Alert)))
    assert alert.summary == "queue backlog" and alert.incident_id is not None
