"""PagerDuty Events API v2: trigger, acknowledge and resolve, keyed by dedup_key within the routing key."""

from __future__ import annotations

import uuid
from typing import Any

from tocsin.alerts.adapters.base import (
    DEDUP_KEY_MAX,
    SUMMARY_MAX,
    Action,
    AlertEvent,
    IntakeRequest,
    PayloadError,
    as_text,
    clamp,
    fit_raw,
    link,
    parse_time,
)
from tocsin.alerts.models import Severity
from tocsin.alerts.options import Options

_ACTIONS = {a.value: a for a in Action}
_SEVERITIES = {s.value: s for s in Severity}


def routing_key_of(body: Any) -> str:
    """The integration key a PagerDuty event names, or '' when it names none."""
    return as_text(body.get("routing_key")) if isinstance(body, dict) else ""


def _dedup_key(body: dict[str, Any], action: Action | None, errors: list[str]) -> str:
    value = body.get("dedup_key")
    if value is None or value == "":
        if action in (Action.acknowledge, Action.resolve):
            errors.append("'dedup_key' is missing or blank (it is required to acknowledge or resolve)")
        return uuid.uuid4().hex  # a trigger without a key gets one, returned in the answer
    if not isinstance(value, str):
        errors.append("'dedup_key' must be a string")
        return ""
    if len(value) > DEDUP_KEY_MAX:
        errors.append(f"'dedup_key' is longer than {DEDUP_KEY_MAX} characters")
    return value


def _payload(body: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    payload = body.get("payload")
    if not isinstance(payload, dict):
        errors.append("'payload' is missing or not an object (it is required to trigger)")
        return {}
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > SUMMARY_MAX:
        errors.append(f"'payload.summary' is longer than {SUMMARY_MAX} characters")
    source = payload.get("source")
    if not isinstance(source, str) or not source.strip():
        errors.append("'payload.source' is missing or blank")
    if as_text(payload.get("severity")) not in _SEVERITIES:
        errors.append("'payload.severity' must be one of critical, error, warning, info")
    return payload


def _links(body: dict[str, Any]) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for name, kind in (("links", ""), ("images", "image")):
        items = body.get(name)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                text = as_text(item.get("text")) or as_text(item.get("alt"))
                found += link(item.get("href") or item.get("src"), text, **({"kind": kind} if kind else {}))
    return found + link(body.get("client_url"), as_text(body.get("client")) or "Client")


def event_from(body: Any, body_size: int) -> AlertEvent:
    """One PagerDuty event; every problem found is listed in the PayloadError."""
    if not isinstance(body, dict):
        raise PayloadError("Event object is invalid", ["the body must be a JSON object"])
    errors: list[str] = []
    action = _ACTIONS.get(as_text(body.get("event_action")))
    if action is None:
        errors.append("'event_action' must be one of trigger, acknowledge, resolve")
    key = _dedup_key(body, action, errors)
    payload = _payload(body, errors) if action is Action.trigger else {}
    if errors or action is None:
        raise PayloadError("Event object is invalid", errors)
    if action is not Action.trigger:
        return AlertEvent(dedup_key=key, action=action, raw=fit_raw(body, body_size))
    labels = {k: as_text(payload.get(k)) for k in ("component", "group", "class") if as_text(payload.get(k))}
    details = payload.get("custom_details")
    return AlertEvent(
        dedup_key=key,
        action=action,
        summary=str(payload["summary"]).strip(),
        severity=_SEVERITIES[as_text(payload["severity"])],
        source=clamp(str(payload["source"]).strip(), 255),
        labels=labels,
        links=_links(body),
        details={"custom_details": details} if details is not None else {},
        occurred_at=parse_time(payload.get("timestamp")),
        raw=fit_raw(body, body_size),
    )


class PagerDutyAdapter:
    """Anything that speaks PagerDuty's Events API v2 (the routing key is checked by the route)."""

    def __init__(self, options: Options) -> None:
        self.options = options

    def parse(self, request: IntakeRequest) -> list[AlertEvent]:
        return [event_from(request.json(), len(request.body))]
