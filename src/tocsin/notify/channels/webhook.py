"""Generic webhook: a JSON document, signed with the contact method's secret.

Headers on every request:
  X-Tocsin-Timestamp: <unix seconds>
  X-Tocsin-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body bytes)>  (if a secret is set)
  X-Tocsin-Idempotency-Key: <stable across retries of the same message>
  X-Tocsin-Event: paged | acknowledged | ... | bundle

How a receiver verifies (Python; any language with HMAC-SHA256 works the same way):

    ts = request.headers["X-Tocsin-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + raw_body, "sha256").hexdigest()
    if not hmac.compare_digest(expected, request.headers["X-Tocsin-Signature"]):
        return 401                                   # not from us, or altered
    if abs(time.time() - int(ts)) > 300:
        return 401                                   # a replay of an old request
    if seen_before(request.headers["X-Tocsin-Idempotency-Key"]):
        return 200                                   # a retry of a message already handled: do nothing
    handle(json.loads(raw_body))

Verify against the raw bytes, before parsing. The timestamp is signed, so an attacker cannot refresh it; the
five-minute window bounds replays, and remembering idempotency keys for a day (Tocsin retries for at most
24 hours) makes the receiver safe against our own retries, which re-sign with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tocsin.config import Settings
from tocsin.db import utcnow
from tocsin.notify.channels.base import Message, post_bytes

REPLAY_WINDOW_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, sent: str, *, now: float, tolerance: int = REPLAY_WINDOW_SECONDS
) -> bool:
    """The receiver's check, as documented above (used by our tests; receivers may copy it)."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), sent)


def document(message: Message) -> Any:
    """The caller's payload if it gave one, otherwise a plain description of the message."""
    if message.payload is not None:
        return message.payload
    return {
        "id": message.id,
        "idempotency_key": message.idempotency_key,
        "event": str(message.event),
        "subject": message.subject,
        "body": message.body,
        "url": message.link,
        "incident_id": message.incident_id,
        "created_at": message.created_at.isoformat(),
    }


class WebhookChannel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def deliver(self, message: Message) -> None:
        body = json.dumps(document(message), separators=(",", ":"), default=str).encode()
        timestamp = str(int(utcnow().timestamp()))
        headers = {
            "Content-Type": "application/json",
            "X-Tocsin-Timestamp": timestamp,
            "X-Tocsin-Idempotency-Key": message.idempotency_key,
            "X-Tocsin-Event": str(message.event),
        }
        if message.secret:
            headers["X-Tocsin-Signature"] = signature(message.secret, timestamp, body)
        await post_bytes(self.settings, message.target, body, headers)
