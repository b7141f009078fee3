"""API shapes for contact methods, notification rules, templates, throttles and the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from tocsin.api_common import In, Out
from tocsin.notify.models import ChannelKind, NotifyEvent, OutboxStatus, Urgency


class ContactMethodIn(In):
    kind: ChannelKind
    address: str = Field(min_length=3, max_length=1000, description="Email address, or the webhook URL.")
    label: str = Field(default="", max_length=100)
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="Webhook signing secret; generated when omitted.",
    )


class ContactMethodPatch(In):
    address: str | None = Field(default=None, min_length=3, max_length=1000)
    label: str | None = Field(default=None, max_length=100)
    rotate_secret: bool = Field(default=False, description="Webhook only: replace the signing secret.")


class ContactMethodOut(Out):
    id: int
    user_id: int
    kind: ChannelKind
    address: str
    label: str
    verified: bool
    has_secret: bool
    last_failure: str | None
    created_at: datetime


class ContactMethodSecret(ContactMethodOut):
    secret: str | None = Field(description="The webhook signing secret: shown now, not again.")


class RuleIn(In):
    contact_method_id: int
    urgency: Urgency = Urgency.high
    delay_minutes: int = Field(default=0, ge=0, le=1440)


class RulePatch(In):
    contact_method_id: int | None = None
    urgency: Urgency | None = None
    delay_minutes: int | None = Field(default=None, ge=0, le=1440)


class RuleOut(Out):
    id: int
    user_id: int
    contact_method_id: int
    urgency: Urgency
    delay_minutes: int
    created_at: datetime


class TemplateIn(In):
    subject: str | None = Field(
        default=None, max_length=2000, description="Jinja; null restores the default."
    )
    body: str | None = Field(default=None, max_length=20000, description="Jinja; null restores the default.")


class TemplateOut(Out):
    event: NotifyEvent
    channel: ChannelKind
    subject: str | None
    body: str | None
    default_subject: str
    default_body: str


class ThrottleIn(In):
    max_messages: int = Field(ge=0, le=100_000, description="Per destination and window; 0 = no limit.")
    window_seconds: int = Field(ge=1, le=86_400)


class ThrottleOut(Out):
    channel: ChannelKind
    max_messages: int
    window_seconds: int


class OutboxOut(Out):
    id: int
    idempotency_key: str
    channel: ChannelKind
    target: str
    subject: str
    body: str
    link: str | None
    payload: Any
    event: NotifyEvent
    user_id: int | None
    contact_method_id: int | None
    incident_id: int | None
    status: OutboxStatus
    attempts: int
    due_at: datetime
    last_error: str | None
    template_error: str | None
    bundled_into: int | None
    created_at: datetime
    sent_at: datetime | None
