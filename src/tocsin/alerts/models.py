"""Tables of the alerts domain: integrations, alerts, CloudEvents already seen, and the data that routes,
groups and quiets alerts (routing rules, maintenance windows, per-service alert settings, grouping and
flapping state).

An alert row is also the record of its own machine events: `count`, `first_seen_at`, `last_seen_at`,
`acknowledged_at`, `resolved_at` and the latest `raw` payload say what the sender told us and when. Individual
alert events are not written to the audit log (an alert storm would swamp it); changes people make to
integrations, rules, windows and settings are, and what alerts do to an incident is on its timeline.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, BigId, JSONType, UTCDateTime


class IntegrationKind(StrEnum):
    alertmanager = "alertmanager"
    grafana = "grafana"
    pagerduty = "pagerduty"
    cloudevents = "cloudevents"
    generic = "generic"
    email = "email"
    heartbeat = "heartbeat"


class AlertStatus(StrEnum):
    triggered = "triggered"
    acknowledged = "acknowledged"
    resolved = "resolved"


class Severity(StrEnum):
    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"


class Suppression(StrEnum):
    """Why a stored alert opens no incident and notifies nobody."""

    maintenance = "maintenance"  # received inside a maintenance window
    rule = "rule"  # a routing rule with action suppress


# The predicate of the partial unique index, spelled once: ON CONFLICT must repeat it verbatim.
OPEN_ALERT = "status != 'resolved'"


class Integration(Base):
    """A source of alerts for one service; its secret key (stored hashed) admits intake and nothing else."""

    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[IntegrationKind] = mapped_column(String(20), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    key_prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_checkin_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # heartbeats only


class Alert(Base):
    """One problem a sender reported, de-duplicated by key while it is open."""

    __tablename__ = "alerts"
    __table_args__ = (
        # One open alert per key and integration; a resolved one frees the key for the next occurrence.
        Index(
            "uq_alerts_open_key",
            "integration_id",
            "dedup_key",
            unique=True,
            sqlite_where=text(OPEN_ALERT),
            postgresql_where=text(OPEN_ALERT),
        ),
        Index("ix_alerts_integration_id_id", "integration_id", "id"),
        Index("ix_alerts_status_id", "status", "id"),
        # No index on last_seen_at (or count): a repeat then changes no indexed column, so PostgreSQL can
        # update the row in place (HOT) instead of writing an entry into every index per repeat.
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"), nullable=False)
    dedup_key: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[AlertStatus] = mapped_column(String(20), nullable=False)
    summary: Mapped[str] = mapped_column(String(1024), nullable=False)
    severity: Mapped[Severity] = mapped_column(String(10), nullable=False)
    source: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, nullable=False, default=dict)
    links: Mapped[list[dict[str, str]]] = mapped_column(JSONType, nullable=False, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    raw: Mapped[Any] = mapped_column(JSONType, nullable=True, deferred=True)  # latest payload, size-capped
    count: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the sender says it began
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The incident the alert was grouped into; none while suppressed (or if grouping could not run).
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    suppressed_by: Mapped[Suppression | None] = mapped_column(String(20))
    suppressed_reason: Mapped[str | None] = mapped_column(String(300))
    # Flapping: opened and resolved too often; a resolve is then held back until the alert stays quiet.
    flapping: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=false())
    held_resolve_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def suppressed(self) -> bool:
        return self.suppressed_by is not None


class SeenEvent(Base):
    """CloudEvents already ingested: `source` + `id` identifies an event, so a repeat is dropped."""

    __tablename__ = "alert_seen_events"
    __table_args__ = (UniqueConstraint("integration_id", "source", "event_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    integration_id: Mapped[int] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False
    )
    source: Mapped[str] = mapped_column(String(1024), nullable=False)
    event_id: Mapped[str] = mapped_column(String(255), nullable=False)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class RoutingRule(Base):
    """One routing rule: conditions (all must hold) on an alert, and what to do with a match.

    Rules are evaluated in `position` order, first match wins; a rule may be scoped to one integration or to
    the integrations of one service (neither: global). See tocsin.alerts.routing for the grammar.
    """

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    integration_id: Mapped[int | None] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False, default=list)
    action: Mapped[str] = mapped_column(String(20), nullable=False)  # routing.RuleAction
    target_service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"))
    type_key: Mapped[str | None] = mapped_column(
        ForeignKey("incident_types.key", ondelete="SET NULL"), nullable=True
    )
    impact: Mapped[int | None] = mapped_column(SmallInteger)
    urgency: Mapped[int | None] = mapped_column(SmallInteger)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class MaintenanceWindow(Base):
    """A scheduled time when alerts for a service (and/or matching labels) are stored but open nothing."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    matchers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False, default=list)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    created_by: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class ServiceAlertSettings(Base):
    """How alerts for one service are grouped, resolved and judged flapping; absent row: the defaults."""

    __tablename__ = "service_alert_settings"

    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    grouping_window_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    group_by: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    auto_resolve: Mapped[bool] = mapped_column(Boolean, nullable=False)
    flap_cycles: Mapped[int] = mapped_column(Integer, nullable=False)
    flap_window_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    default_impact: Mapped[int | None] = mapped_column(SmallInteger)
    severity_urgency: Mapped[dict[str, int] | None] = mapped_column(JSONType, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class AlertGroup(Base):
    """The incident that alerts of one (service, grouping key) currently go to, and when one last did.

    One row per key, locked while a batch decides whether to attach or open: two processes receiving the
    same storm make one incident.
    """

    __tablename__ = "alert_groups"

    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    group_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), index=True
    )
    last_alert_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class AlertFlap(Base):
    """Recent resolve times of one alert key: the memory that flapping detection counts cycles in."""

    __tablename__ = "alert_flaps"

    integration_id: Mapped[int] = mapped_column(
        ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    dedup_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    resolved_times: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
