"""Email: a plain-text message with an HTML alternative, through the one mailer."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from tocsin.config import Settings
from tocsin.notify import mailer, templates
from tocsin.notify.channels.base import DeliveryError, Message


def build(settings: Settings, message: Message) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = settings.smtp_from
    mail["To"] = message.target
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(localtime=False)
    # Derived from the idempotency key, so a resend after a crash is recognisably the same mail.
    digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
    mail["Message-ID"] = f"<{digest}@tocsin>"
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies back to us
    mail["X-Tocsin-Idempotency-Key"] = message.idempotency_key
    mail.set_content(message.body)
    mail.add_alternative(templates.html(message.subject, message.body, message.link), subtype="html")
    return mail


def _smtp_error(exc: aiosmtplib.SMTPException) -> DeliveryError:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        permanent = bool(codes) and all(code >= 500 for code in codes)
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return DeliveryError(f"recipient refused: {detail}", permanent=permanent)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # 5xx is the server's final answer (unknown user, auth rejected, policy); 4xx means "try later".
        return DeliveryError(f"SMTP {exc.code}: {exc.message}", permanent=exc.code >= 500)
    return DeliveryError(f"SMTP failed: {type(exc).__name__}: {exc}", permanent=False)


class EmailChannel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def deliver(self, message: Message) -> None:
        try:
            await mailer.send(self.settings, build(self.settings, message))
        except mailer.MailerNotConfigured as exc:
            # Retried, not dropped: once an administrator configures SMTP (and restarts), the page goes out.
            raise DeliveryError(str(exc), permanent=False) from exc
        except aiosmtplib.SMTPException as exc:
            raise _smtp_error(exc) from exc
        except OSError as exc:
            raise DeliveryError(f"cannot reach the SMTP server: {exc}", permanent=False) from exc
