"""Grafana webhooks: managed alerting (`version: "1"`, Alertmanager's envelope) and legacy rule alerts."""

from __future__ import annotations

from typing import Any

from tocsin.alerts.adapters.alertmanager import webhook_events
from tocsin.alerts.adapters.base import (
    SUMMARY_MAX,
    Action,
    AlertEvent,
    IntakeRequest,
    PayloadError,
    as_text,
    clamp,
    fit_raw,
    link,
    obj,
    severity_of,
    str_map,
)
from tocsin.alerts.options import Options

_LINKS = (
    ("silenceURL", "Silence", ""),
    ("dashboardURL", "Dashboard", ""),
    ("panelURL", "Panel", ""),
    ("imageURL", "Image", "image"),
)
# Legacy states: paused and pending are not alerts yet (or any more), so they produce no event.
_LEGACY_STATE = {
    "alerting": Action.trigger,
    "no_data": Action.trigger,
    "ok": Action.resolve,
    "paused": None,
    "pending": None,
}


def _values(alert: dict[str, Any]) -> dict[str, Any]:
    return {k: alert[k] for k in ("values", "valueString") if k in alert}


def legacy_events(request: IntakeRequest, body: dict[str, Any], options: Options) -> list[AlertEvent]:
    """A legacy (pre-8) Grafana alert notification, de-duplicated by its rule id."""
    rule_id = as_text(body.get("ruleId"))
    rule_name = as_text(body.get("ruleName"))
    if not rule_id:
        raise PayloadError("ruleId is missing: a legacy Grafana alert is identified by its rule id")
    state = as_text(body.get("state"))
    if state not in _LEGACY_STATE:
        raise PayloadError(f"state must be one of {', '.join(_LEGACY_STATE)}, got {state or 'nothing'}")
    action = _LEGACY_STATE[state]
    if action is None:
        return []
    tags = str_map(body.get("tags"))
    summary = as_text(body.get("title")) or rule_name or f"Grafana rule {rule_id}"
    details: dict[str, Any] = {
        k: body[k]
        for k in ("message", "evalMatches", "state", "ruleName", "orgId", "dashboardId", "panelId")
        if k in body
    }
    return [
        AlertEvent(
            dedup_key=f"rule-{rule_id}"[:255],
            action=action,
            summary=clamp(summary, SUMMARY_MAX),
            severity=severity_of(tags.get("severity"), options.default_severity),
            source=clamp(rule_name, 255),
            labels=tags,
            links=link(body.get("ruleUrl"), "Rule") + link(body.get("imageUrl"), "Image", kind="image"),
            details=details,
            raw=fit_raw(body, len(request.body)),
        )
    ]


class GrafanaAdapter:
    """Grafana's webhook contact point, in both its current and its legacy body."""

    def __init__(self, options: Options) -> None:
        self.options = options

    def parse(self, request: IntakeRequest) -> list[AlertEvent]:
        body = obj(request.json(), "the body")
        if "alerts" not in body and ("ruleId" in body or "ruleName" in body or "evalMatches" in body):
            return legacy_events(request, body, self.options)
        return webhook_events(request, body, self.options, links=_LINKS, extra=_values)
