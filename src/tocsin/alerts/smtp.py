"""The inbound mail listener: an aiosmtpd server in the app's event loop that turns mail into alerts.

Recipients are checked at RCPT time, so mail to an unknown address is refused before its data is sent.
A message is acknowledged (250) only once its alerts are committed; a storage failure answers 451, and
the sending mail server retries later, as it would for any temporary failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import structlog
from aiosmtpd.smtp import SMTP, Envelope, Session

from tocsin.alerts import service
from tocsin.alerts.intake import MAX_BODY
from tocsin.db import Database, utcnow
from tocsin.errors import DomainError

log = structlog.get_logger(__name__)


class MailIntake:
    """aiosmtpd handler: one alert event per accepted recipient of each message."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        async with self.db.read() as s:
            found = await service.email_integration(session=s, recipient=address)
        if found is None:
            return "550 5.1.1 no active email integration has this address"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw: Any = envelope.original_content or envelope.content or b""
        raw = raw if isinstance(raw, bytes) else str(raw).encode("utf-8", "replace")
        stored = 0
        try:
            async with self.db.write() as s:  # all recipients in one transaction: a retry repeats nothing
                for recipient in envelope.rcpt_tos:
                    try:
                        await service.ingest_email(session=s, recipient=recipient, raw=raw, now=utcnow())
                        stored += 1
                    except DomainError as exc:  # refused before writing: the integration went away
                        log.info("mail recipient refused", recipient=recipient, reason=exc.detail)
        except Exception as exc:  # storage failed: a temporary failure the sending server retries
            log.error("mail not stored", error=repr(exc))
            return "451 4.3.0 the alert could not be stored; try again later"
        if not stored:
            return "550 5.1.1 no active email integration has this address"
        return "250 Message accepted"


async def serve_smtp(db: Database, host: str, port: int, *, hostname: str | None = None) -> asyncio.Server:
    """Listen for mail on host:port in the running loop; close the returned server to stop."""
    handler = MailIntake(db)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, hostname=hostname, data_size_limit=MAX_BODY, loop=loop), host, port
    )


async def run_smtpd(db: Database, host: str, port: int) -> None:
    """`tocsin smtpd`: listen until SIGTERM or SIGINT, then close the listener and the database."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    server = await serve_smtp(db, host, port)
    log.info("mail intake listening", host=host, port=port)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        await db.dispose()
