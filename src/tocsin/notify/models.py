"""Tables of the notify domain: the outbox, contact methods, personal rules, throttles and templates."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, BigId, JSONType, UTCDateTime


class ChannelKind(StrEnum):
    """How a message travels; each kind is one plugin in `notify/channels/` (SMS and voice come later)."""

    email = "email"
    slack = "slack"
    teams = "teams"
    webhook = "webhook"


class NotifyEvent(StrEnum):
    """Why a message is sent; each event has a default template per channel."""

    paged = "paged"
    acknowledged = "acknowledged"
    escalated = "escalated"
    sla_warning = "sla_warning"
    sla_breached = "sla_breached"
    resolved = "resolved"
    reminder = "reminder"
    test = "test"


class OutboxStatus(StrEnum):
    pending = "pending"  # waiting for its timer (first try, a retry, or a throttle window)
    sent = "sent"  # accepted by the channel (alone, or as the leader of a bundle)
    bundled = "bundled"  # travels inside the message `bundled_into`; sent_at is set when that one is sent
    failed = "failed"  # permanent refusal, or given up after the retry budget
    cancelled = "cancelled"  # withdrawn before sending (e.g. acknowledged before a delayed rule fired)


class Urgency(StrEnum):
    high = "high"
    low = "low"


class OutboxMessage(Base):
    """One message to one destination, written in the same transaction as its cause."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
        # Bundling looks for pending messages to the same destination due soon.
        Index("ix_outbox_destination_due", "channel", "target", "status", "due_at"),
        # The throttle counts recent sends to a destination.
        Index("ix_outbox_destination_sent", "channel", "target", "sent_at"),
        Index("ix_outbox_incident_id", "incident_id", "id"),
        Index("ix_outbox_status_id", "status", "id"),
        Index("ix_outbox_user_id", "user_id", "id"),
        Index("ix_outbox_bundled_into", "bundled_into"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), nullable=False)
    channel: Mapped[ChannelKind] = mapped_column(String(20), nullable=False)
    target: Mapped[str] = mapped_column(String(1000), nullable=False)  # email address or URL
    subject: Mapped[str] = mapped_column(String(500), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    link: Mapped[str | None] = mapped_column(String(1000))  # the incident's page, listed in bundles
    payload: Mapped[Any] = mapped_column(JSONType, nullable=True)  # Slack blocks, webhook JSON...
    event: Mapped[NotifyEvent] = mapped_column(String(20), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    contact_method_id: Mapped[int | None] = mapped_column(
        ForeignKey("contact_methods.id", ondelete="SET NULL"), index=True
    )
    # No foreign key: the incidents table is another domain's, and a notification outlives nothing there.
    incident_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[OutboxStatus] = mapped_column(String(20), nullable=False, default=OutboxStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)  # mirrors its timer
    # Set while a worker is sending it, so another message's bundle does not pick it up meanwhile.
    sending_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(2000))
    template_error: Mapped[str | None] = mapped_column(String(2000))  # a custom template failed; default used
    bundled_into: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ContactMethod(Base):
    """Where a person can be reached.

    The webhook signing secret is stored in plain text: HMAC signing needs the raw value back, and an
    encryption key kept next to the database would add ceremony, not protection. The API shows it only when
    it is created or rotated, and the audit log never records it.
    """

    __tablename__ = "contact_methods"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[ChannelKind] = mapped_column(String(20), nullable=False)
    address: Mapped[str] = mapped_column(String(1000), nullable=False)
    label: Mapped[str] = mapped_column(String(100), nullable=False, default="")
    verified: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)  # a test message arrived
    secret: Mapped[str | None] = mapped_column(String(200))
    last_failure: Mapped[str | None] = mapped_column(String(2000))  # last permanent failure, until a success
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    @property
    def has_secret(self) -> bool:
        return self.secret is not None


class NotificationRule(Base):
    """'For a high-urgency page, reach me on this contact method after N minutes.'"""

    __tablename__ = "notification_rules"
    __table_args__ = (
        UniqueConstraint("contact_method_id", "urgency", "delay_minutes", name="uq_notification_rules_step"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    urgency: Mapped[Urgency] = mapped_column(String(10), nullable=False)
    delay_minutes: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    contact_method_id: Mapped[int] = mapped_column(
        ForeignKey("contact_methods.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ChannelThrottle(Base):
    """At most `max_messages` per `window_seconds` to any one destination of a channel kind (0 = no limit).

    A missing row means the built-in default in `notify/throttle.py`.
    """

    __tablename__ = "channel_throttles"

    channel: Mapped[ChannelKind] = mapped_column(String(20), primary_key=True)
    max_messages: Mapped[int] = mapped_column(Integer, nullable=False)
    window_seconds: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class NotificationTemplate(Base):
    """An edited template for one event on one channel; a NULL part means the built-in default."""

    __tablename__ = "notification_templates"
    __table_args__ = (UniqueConstraint("event", "channel", name="uq_notification_templates_event"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event: Mapped[NotifyEvent] = mapped_column(String(20), nullable=False)
    channel: Mapped[ChannelKind] = mapped_column(String(20), nullable=False)
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_by: Mapped[str] = mapped_column(String(120), nullable=False)
