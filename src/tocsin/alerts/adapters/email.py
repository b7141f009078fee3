"""Mail (RFC 5322 bytes): subject = summary, body = details, keyed by the address's `+tag` or by subject.

A subject prefix such as `RESOLVED:`, `[OK]` or `Recovery:` resolves the alert, `ACK:` acknowledges it;
prefixes and reply markers (`Re:`, `Fwd:`) are left out of the subject-based key, so the recovery mail of a
problem mail finds the alert that mail opened.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from typing import Any

from tocsin.alerts.adapters.base import (
    SOURCE_MAX,
    SUMMARY_MAX,
    Action,
    AlertEvent,
    IntakeRequest,
    PayloadError,
    clamp,
    clean_text,
    fit_key,
)
from tocsin.alerts.models import Severity
from tocsin.alerts.options import Options

_BODY_MAX = 16_384
_RAW_MAX = 65_536
_STATUS_WORDS = {
    **dict.fromkeys(["resolved", "recovery", "recovered", "ok", "cleared", "closed"], Action.resolve),
    **dict.fromkeys(["ack", "acknowledged", "acknowledge"], Action.acknowledge),
    **dict.fromkeys(["problem", "alert", "firing", "triggered", "critical", "warning"], Action.trigger),
}
_PREFIX = re.compile(r"^\s*(?:\[\s*([\w-]+)\s*\]|([\w-]+)\s*:)\s*")
_REPLY = {"re", "fw", "fwd", "aw", "wg", "sv", "tr"}


def split_subject(subject: str) -> tuple[Action, str]:
    """The action a subject's prefixes announce, and the subject without them."""
    action = Action.trigger
    while match := _PREFIX.match(subject):
        word = (match.group(1) or match.group(2)).lower()
        if word in _STATUS_WORDS:
            action = _STATUS_WORDS[word]
        elif word not in _REPLY:
            break
        subject = subject[match.end() :]
    return action, subject.strip()


def plus_tag(recipient: str) -> str:
    """`tag` in `key+tag@host`, or ''."""
    local = recipient.strip().strip("<>").rsplit("@", 1)[0]
    return local.partition("+")[2].strip()


def _text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return clean_text(str(content)).strip()


def _sent_at(value: Any) -> datetime | None:
    try:
        sent = parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError, IndexError):
        return None
    if sent is None:
        return None
    return sent.replace(tzinfo=UTC) if sent.tzinfo is None else sent.astimezone(UTC)


def event_from_mail(raw: bytes, recipient: str, severity: Severity) -> AlertEvent:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage objects
    subject = clean_text(" ".join(str(message.get("subject", "")).split()))
    action, core = split_subject(subject)
    body = _text_body(message)
    sender = clean_text(str(message.get("from", "")))
    tag = plus_tag(recipient)
    details = {
        "body": clamp(body, _BODY_MAX),
        "from": sender,
        "to": clean_text(str(message.get("to", ""))),
        "subject": subject,
        "message_id": clean_text(str(message.get("message-id", ""))),
    }
    return AlertEvent(
        dedup_key=fit_key(tag) if tag else fit_key("subject:" + core.lower()),
        action=action,
        summary=clamp(core or "(no subject)", SUMMARY_MAX),
        severity=severity,
        source=clamp(sender, SOURCE_MAX),
        details=details,
        occurred_at=_sent_at(message.get("date")),
        raw={"message": clamp(clean_text(raw.decode("utf-8", "replace")), _RAW_MAX)},
    )


class EmailAdapter:
    """Mail delivered to an integration's address (`<integration key>[+dedup]@<any host>`)."""

    def __init__(self, options: Options) -> None:
        self.options = options

    def parse(self, request: IntakeRequest) -> list[AlertEvent]:
        try:
            event = event_from_mail(request.body, request.recipient, self.options.default_severity)
        # The stdlib parser raises assorted errors on hostile mail; every one of them means "unreadable".
        except Exception as exc:
            raise PayloadError(
                f"the message could not be read as RFC 5322 mail ({type(exc).__name__})"
            ) from exc
        return [event]
