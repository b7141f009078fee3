"""Per-integration configuration as data: rate limit, default severity, flapping, generic field mapping,
heartbeats."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tocsin.alerts.flapping import MAX_WINDOW_MINUTES
from tocsin.alerts.models import IntegrationKind, Severity
from tocsin.errors import Invalid

# Status words senders use, by default (the generic mapping can replace them); the adapters use them too.
RESOLVE_WORDS = ("resolved", "resolve", "ok", "closed", "recovered", "inactive", "normal")
ACKNOWLEDGE_WORDS = ("acknowledged", "acknowledge", "ack")


class Options(BaseModel):
    """What every integration can be told. The defaults are generous: the limit exists to stop a runaway
    sender from starving the others, not to shape normal traffic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit_per_minute: int | None = Field(
        default=600_000, ge=1, description="Requests per minute this integration may send; null for no limit."
    )
    rate_limit_burst: int = Field(
        default=20_000, ge=1, description="Requests allowed at once above the rate."
    )
    default_severity: Severity = Field(
        default=Severity.warning, description="Severity of alerts whose payload names none."
    )
    flap_cycles: int | None = Field(
        default=None,
        ge=0,
        le=1000,
        description="Open/resolve cycles of one alert within flap_window_minutes that make it flapping "
        "(0: never); null takes the service's alert settings.",
    )
    flap_window_minutes: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WINDOW_MINUTES,
        description="The flapping window; null takes the service's.",
    )


class FieldMap(BaseModel):
    """Where the generic adapter finds each field: dotted paths into the body (`alert.host`, `tags[0]`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events: str | None = Field(
        default=None,
        description="Path to an array of events; default: the body "
        "itself (an object is one event, an array is several).",
    )
    summary: str = "summary"
    dedup_key: str | None = Field(
        default="dedup_key",
        description="Without a value here the key is a stable hash of summary and source.",
    )
    severity: str | None = "severity"
    status: str | None = "status"
    source: str | None = "source"
    details: str | None = Field(
        default=None, description="Path to an object kept as details; default: the whole event."
    )
    severity_map: dict[str, Severity] = Field(default_factory=dict, description="Sender's words to ours.")
    resolve_values: list[str] = Field(
        default_factory=lambda: list(RESOLVE_WORDS),
        description="Status values (any case) that resolve the alert.",
    )
    acknowledge_values: list[str] = Field(
        default_factory=lambda: list(ACKNOWLEDGE_WORDS),
        description="Status values (any case) that acknowledge it.",
    )


class GenericOptions(Options):
    mapping: FieldMap = Field(default_factory=FieldMap)


class HeartbeatOptions(Options):
    interval_seconds: int = Field(default=300, ge=10, le=90 * 86_400, description="Expected check-in period.")
    grace_seconds: int = Field(
        default=60, ge=0, le=7 * 86_400, description="Lateness tolerated before alerting."
    )


OPTIONS: dict[IntegrationKind, type[Options]] = {
    IntegrationKind.generic: GenericOptions,
    IntegrationKind.heartbeat: HeartbeatOptions,
}


def options_for(kind: IntegrationKind | str, config: dict[str, Any] | None) -> Options:
    """Validate an integration's config for its kind; an Invalid (422) names each wrong field."""
    model = OPTIONS.get(IntegrationKind(kind), Options)
    try:
        return model.model_validate(config or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"config.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else f"config: {e['msg']}"
            for e in exc.errors()[:5]
        )
        raise Invalid(problems) from exc
