"""Prometheus Alertmanager webhooks (version 4): one event per alert, keyed by its fingerprint.

Never by summary (distinct alerts share one) nor by groupKey (grouping would hide new alerts). A webhook is
refused whole when an alert in it is malformed, so that a sender's template error is seen, not half-applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tocsin.alerts.adapters.base import (
    SOURCE_MAX,
    SUMMARY_MAX,
    Action,
    AlertEvent,
    IntakeRequest,
    PayloadError,
    as_text,
    clamp,
    fit_key,
    fit_raw,
    link,
    obj,
    parse_time,
    severity_of,
    stable_key,
    str_map,
    type_name,
)
from tocsin.alerts.options import Options

_STATUS = {"firing": Action.trigger, "resolved": Action.resolve}
_MAX_REPORTED = 10

# Extra per-alert fields a sender adds beyond Alertmanager's: (field, link text, kind).
LinkFields = tuple[tuple[str, str, str], ...]
Extra = Callable[[dict[str, Any]], dict[str, Any]]


def summary_of(labels: dict[str, str], annotations: dict[str, str], fingerprint: str) -> str:
    for name in ("summary", "message", "description", "title"):
        if annotations.get(name):
            return annotations[name].splitlines()[0]
    alertname = labels.get("alertname", "")
    instance = labels.get("instance", "")
    if alertname:
        return f"{alertname} on {instance}" if instance else alertname
    return f"alert {fingerprint}"


def _identity(alert: dict[str, Any], labels: dict[str, str], where: str) -> str:
    fingerprint = as_text(alert.get("fingerprint"))
    if fingerprint:
        return fingerprint
    if labels:  # senders older than Alertmanager 0.19 or a custom template: the label set is the identity
        return "labels:" + stable_key(*sorted(f"{k}={v}" for k, v in labels.items()))
    raise PayloadError(
        f"{where}.fingerprint is missing and there are no labels: nothing identifies the alert"
    )


def webhook_events(
    request: IntakeRequest, body: Any, options: Options, *, links: LinkFields = (), extra: Extra | None = None
) -> list[AlertEvent]:
    """The events of an Alertmanager-shaped webhook (Grafana's managed alerting uses the same envelope)."""
    envelope = obj(body, "the body")
    alerts = envelope.get("alerts")
    if not isinstance(alerts, list):
        got = "missing" if "alerts" not in envelope else type_name(alerts)
        raise PayloadError(f"alerts must be an array of alerts, got {got}")
    context = {k: v for k, v in envelope.items() if k != "alerts"}
    events: list[AlertEvent] = []
    errors: list[str] = []
    for index, item in enumerate(alerts):
        try:
            events.append(_event(request, item, f"alerts[{index}]", context, options, links, extra))
        except PayloadError as exc:
            errors.append(exc.message)
            if len(errors) >= _MAX_REPORTED:
                break
    if errors:
        raise PayloadError(f"{len(errors)} alert(s) in the webhook are invalid: {errors[0]}", errors)
    return events


def _event(
    request: IntakeRequest,
    item: Any,
    where: str,
    context: dict[str, Any],
    options: Options,
    link_fields: LinkFields,
    extra: Extra | None,
) -> AlertEvent:
    alert = obj(item, where)
    status = alert.get("status", context.get("status"))
    if status not in _STATUS:
        raise PayloadError(
            f"{where}.status must be firing or resolved, got {as_text(status) or type_name(status)}"
        )
    labels = str_map(alert.get("labels"))
    annotations = str_map(alert.get("annotations"))
    key = _identity(alert, labels, where)
    links = link(alert.get("generatorURL"), "Source") + link(annotations.get("runbook_url"), "Runbook")
    for name, text, kind in link_fields:
        links += link(alert.get(name), text, **({"kind": kind} if kind else {}))
    details: dict[str, Any] = {
        "annotations": annotations,
        "startsAt": alert.get("startsAt"),
        "endsAt": alert.get("endsAt"),
    }
    for name in ("receiver", "groupKey", "externalURL", "orgId", "title"):
        if name in context:
            details[name] = context[name]
    if extra is not None:
        details.update(extra(alert))
    return AlertEvent(
        dedup_key=fit_key(key),
        action=_STATUS[status],
        summary=clamp(summary_of(labels, annotations, key), SUMMARY_MAX),
        severity=severity_of(labels.get("severity"), options.default_severity),
        source=clamp(
            labels.get("instance") or labels.get("job") or as_text(context.get("receiver")), SOURCE_MAX
        ),
        labels=labels,
        links=links,
        details=details,
        occurred_at=parse_time(alert.get("startsAt")),
        raw=fit_raw({**context, "alerts": [alert]}, len(request.body)),
    )


class AlertmanagerAdapter:
    """Prometheus Alertmanager's webhook_config receiver."""

    def __init__(self, options: Options) -> None:
        self.options = options

    def parse(self, request: IntakeRequest) -> list[AlertEvent]:
        return webhook_events(request, request.json(), self.options)
