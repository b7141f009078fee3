"""The channel contract: a Message in, `deliver()` out, and a DeliveryError that says whether to retry."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from tocsin.config import Settings
from tocsin.db import utcnow
from tocsin.notify import http
from tocsin.notify.models import ChannelKind, NotifyEvent


@dataclass(frozen=True)
class Message:
    """What a channel sends: a snapshot of an outbox row (or a bundle of rows), free of the database."""

    id: int
    idempotency_key: str
    channel: ChannelKind
    target: str
    subject: str
    body: str
    event: NotifyEvent | str  # "bundle" for a bundle
    created_at: datetime
    link: str | None = None
    payload: Any = None
    incident_id: int | None = None
    secret: str | None = None  # the contact method's webhook signing secret
    count: int = 1  # how many outbox messages this one carries


class DeliveryError(Exception):
    """The channel could not deliver. `permanent`: retrying cannot help (a 404, a refused address).

    `retry_after` (seconds) is the server's own request to wait, when it made one.
    """

    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


class Channel(Protocol):
    async def deliver(self, message: Message) -> None:
        """Send the message or raise DeliveryError."""


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds, whether given as a number or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def check_reply(reply: http.Reply, now: datetime) -> None:
    """Classify an HTTP answer: 2xx is delivered; 408, 429 and 5xx are worth retrying; the rest are not."""
    if 200 <= reply.status < 300:
        return
    reason = f"HTTP {reply.status}: {reply.text[:300].strip()}".rstrip(": ")
    if reply.status == 429:
        raise DeliveryError(
            reason, permanent=False, retry_after=retry_after_seconds(reply.headers.get("retry-after"), now)
        )
    if reply.status == 408 or reply.status >= 500:
        raise DeliveryError(reason, permanent=False)
    if 300 <= reply.status < 400:
        raise DeliveryError(f"{reason} (redirects are not followed; use the final URL)", permanent=True)
    raise DeliveryError(reason, permanent=True)


async def post_json(
    settings: Settings, url: str, document: Any, headers: dict[str, str] | None = None
) -> http.Reply:
    """POST a JSON document through the one HTTP client, mapping every failure to a DeliveryError."""
    body = json.dumps(document, separators=(",", ":"), default=str).encode()
    return await post_bytes(settings, url, body, {"Content-Type": "application/json", **(headers or {})})


async def post_bytes(settings: Settings, url: str, body: bytes, headers: dict[str, str]) -> http.Reply:
    try:
        reply = await http.post(settings, url, content=body, headers=headers)
    except http.BlockedTarget as exc:
        raise DeliveryError(str(exc), permanent=True) from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise DeliveryError(f"the URL is not usable: {exc}", permanent=True) from exc
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"timed out: {type(exc).__name__}", permanent=False) from exc
    except httpx.TransportError as exc:
        raise DeliveryError(f"connection failed: {exc or type(exc).__name__}", permanent=False) from exc
    check_reply(reply, utcnow())
    return reply
