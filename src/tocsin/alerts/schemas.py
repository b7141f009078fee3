"""API shapes for integrations, alerts, routing rules, maintenance windows and per-service alert settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from tocsin.alerts.alert_settings import DEFAULT_WINDOW
from tocsin.alerts.flapping import DEFAULT_CYCLES, DEFAULT_WINDOW_MINUTES, MAX_WINDOW_MINUTES
from tocsin.alerts.models import AlertStatus, IntegrationKind, Severity, Suppression
from tocsin.alerts.routing import MAX_CONDITIONS, Op, RuleAction
from tocsin.api_common import In, Out


class IntegrationIn(In):
    service_id: int
    name: str = Field(min_length=1, max_length=200)
    kind: IntegrationKind
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="Options for this kind; see the docs of "
        "rate_limit_per_minute, rate_limit_burst, default_severity, mapping "
        "(generic) and interval_seconds / grace_seconds (heartbeat).",
    )
    active: bool = True


class IntegrationPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    service_id: int | None = None
    config: dict[str, Any] | None = Field(default=None, description="Replaces the whole config.")
    active: bool | None = None


class IntegrationOut(Out):
    id: int
    service_id: int
    name: str
    kind: IntegrationKind
    key_prefix: str = Field(description="The first characters of the key, to tell keys apart.")
    config: dict[str, Any]
    active: bool
    created_at: datetime
    last_checkin_at: datetime | None


class IntegrationKey(IntegrationOut):
    key: str = Field(description="The secret key, shown once; store it now.")
    intake_url: str = Field(description="Where the sender posts (for email: the address it mails to).")


class AlertOut(Out):
    id: int
    integration_id: int
    service_id: int
    dedup_key: str
    status: AlertStatus
    summary: str
    severity: Severity
    source: str
    labels: dict[str, str]
    links: list[dict[str, str]]
    details: dict[str, Any]
    count: int
    started_at: datetime | None
    first_seen_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    incident_id: int | None
    suppressed: bool = Field(description="Stored but opening no incident (maintenance window or rule).")
    suppressed_by: Suppression | None
    suppressed_reason: str | None
    flapping: bool = Field(description="Opened and resolved too often; its resolves are held.")


class AlertDetail(AlertOut):
    raw: Any = Field(description="The latest payload for this alert (over 64 KB: a truncation marker).")


# --- routing rules ---------------------------------------------------------------------------------


class ConditionIn(In):
    """`field` is severity, source, summary or labels.<name>; `op` equals / in / regex (anchored) / exists."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    field: str = Field(max_length=107, examples=["labels.team"])
    op: Op
    value: str | list[str] | None = Field(
        default=None, description="A string; a list for in; none for exists."
    )
    negate: bool = False


class RuleIn(In):
    name: str = Field(min_length=1, max_length=200)
    conditions: list[ConditionIn] = Field(
        default_factory=list, max_length=MAX_CONDITIONS, description="All must hold; none: any alert."
    )
    action: RuleAction = Field(
        default=RuleAction.route, description="route, suppress (store quietly) or drop."
    )
    integration_id: int | None = Field(default=None, description="Scope: only this integration's alerts.")
    service_id: int | None = Field(
        default=None, description="Scope: only alerts of this service's integrations."
    )
    target_service_id: int | None = Field(
        default=None, description="Route to this service (default: its own)."
    )
    type_key: str | None = Field(
        default=None, max_length=40, description="Incident type (default it_service)."
    )
    impact: int | None = Field(default=None, ge=1, le=3, description="Default: from the service.")
    urgency: int | None = Field(default=None, ge=1, le=3, description="Default: from the alert's severity.")
    active: bool = True
    position: int | None = Field(default=None, ge=1, description="1 is tried first; default: last.")


class RulePatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    conditions: list[ConditionIn] | None = Field(default=None, max_length=MAX_CONDITIONS)
    action: RuleAction | None = None
    integration_id: int | None = None
    service_id: int | None = None
    target_service_id: int | None = None
    type_key: str | None = Field(default=None, max_length=40)
    impact: int | None = Field(default=None, ge=1, le=3)
    urgency: int | None = Field(default=None, ge=1, le=3)
    active: bool | None = None
    position: int | None = Field(default=None, ge=1)


class RuleOut(Out):
    id: int
    position: int
    name: str
    conditions: list[dict[str, Any]]
    action: RuleAction
    integration_id: int | None
    service_id: int | None
    target_service_id: int | None
    type_key: str | None
    impact: int | None
    urgency: int | None
    active: bool
    created_at: datetime
    updated_at: datetime


class RuleOrder(In):
    ids: list[int] = Field(max_length=1000, description="Every rule id, in the order to try them.")


# --- maintenance windows ---------------------------------------------------------------------------


class WindowIn(In):
    name: str = Field(min_length=1, max_length=200)
    service_id: int | None = None
    matchers: list[ConditionIn] = Field(
        default_factory=list, max_length=MAX_CONDITIONS, description="Label (or field) conditions; all hold."
    )
    starts_at: datetime
    ends_at: datetime


class WindowPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    service_id: int | None = None
    matchers: list[ConditionIn] | None = Field(default=None, max_length=MAX_CONDITIONS)
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class WindowOut(Out):
    id: int
    name: str
    service_id: int | None
    matchers: list[dict[str, Any]]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    created_at: datetime
    updated_at: datetime


# --- per-service alert settings --------------------------------------------------------------------


class AlertSettingsIn(In):
    grouping_window_minutes: int = Field(
        default=DEFAULT_WINDOW,
        ge=0,
        le=10_080,
        description="Alerts of one grouping key join the open incident that took one within this many "
        "minutes; 0: every alert opens its own incident.",
    )
    group_by: list[str] | None = Field(
        default=None,
        max_length=10,
        description="Labels whose values make the grouping key; default: alertname, else PagerDuty "
        "group/class, else the summary.",
    )
    auto_resolve: bool = Field(default=True, description="Resolve the incident when all its alerts resolve.")
    flap_cycles: int = Field(
        default=DEFAULT_CYCLES, ge=0, le=1000, description="Open/resolve cycles that make an alert flapping."
    )
    flap_window_minutes: int = Field(default=DEFAULT_WINDOW_MINUTES, ge=1, le=MAX_WINDOW_MINUTES)
    default_impact: int | None = Field(
        default=None, ge=1, le=3, description="Impact of incidents alerts open; default: from the tier."
    )
    severity_urgency: dict[str, int] | None = Field(
        default=None, description="Severity -> urgency; default critical 1, error 2, warning 3, info 3."
    )


class AlertSettingsOut(AlertSettingsIn):
    model_config = ConfigDict(extra="ignore")

    service_id: int
    customized: bool = Field(description="False while the service uses the defaults.")
