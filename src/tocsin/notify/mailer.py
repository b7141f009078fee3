"""The one mailer: sends a prepared message through the SMTP server the settings name."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from tocsin.config import Settings


class MailerNotConfigured(Exception):
    """No SMTP server is configured (TOCSIN_SMTP_HOST)."""


def _password(settings: Settings) -> str | None:
    # Read at each send so a rotated password file needs no restart.
    if settings.smtp_password_file is not None:
        return settings.smtp_password_file.read_text().strip()
    return settings.smtp_password.get_secret_value() if settings.smtp_password else None


async def send(settings: Settings, message: EmailMessage) -> None:
    """Hand `message` (with From/To set) to the SMTP server; raises aiosmtplib's errors or OSError."""
    if not settings.smtp_host:
        raise MailerNotConfigured(
            "no SMTP server is configured: set TOCSIN_SMTP_HOST (and TOCSIN_SMTP_PORT, "
            "TOCSIN_SMTP_SECURITY, TOCSIN_SMTP_USERNAME/PASSWORD as needed)"
        )
    security = settings.smtp_security
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=_password(settings) if settings.smtp_username else None,
        use_tls=security == "tls",
        start_tls=security == "starttls",
        timeout=settings.smtp_timeout_seconds,
    )
