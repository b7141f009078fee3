"""CloudEvents 1.0 over HTTP: structured (`application/cloudevents+json`), batched, or binary (`ce-*`).

`source` + `id` identifies an event, so a repeat is dropped. The alert an event speaks about is named by the
`dedupkey` extension (or `dedup_key` in a JSON object `data`), else by `source` + `subject`, else the event
is its own alert. The `action` (trigger, acknowledge, resolve) and `severity` extensions, or `status` /
`severity` in `data`, say what happened and how bad it is.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from tocsin.alerts.adapters.base import (
    SOURCE_MAX,
    SUMMARY_MAX,
    AlertEvent,
    IntakeRequest,
    PayloadError,
    action_of,
    as_text,
    clamp,
    clean_text,
    fit_key,
    fit_raw,
    load_json,
    obj,
    parse_time,
    severity_of,
    type_name,
)
from tocsin.alerts.options import Options

REQUIRED = ("id", "source", "specversion", "type")
_CORE = {*REQUIRED, "subject", "time", "datacontenttype", "dataschema", "data", "data_base64"}
_TEXT_MAX = 16_384


def _pick(attrs: dict[str, Any], data: dict[str, Any], *names: str) -> str:
    for name in names:
        value = as_text(attrs.get(name)) or as_text(data.get(name))
        if value:
            return value
    return ""


def _summary(data: dict[str, Any], kind: str, subject: str, source: str) -> str:
    for name in ("summary", "title", "message", "description"):
        if text := as_text(data.get(name)):
            return text.splitlines()[0]
    return f"{kind}: {subject}" if subject else f"{kind} from {source}"


def event_from(
    attrs: dict[str, Any], data: Any, where: str, options: Options, raw: Any, body_size: int
) -> AlertEvent:
    """One CloudEvent (its context attributes and its data) as an alert event."""
    missing = [name for name in REQUIRED if not as_text(attrs.get(name))]
    if missing:
        raise PayloadError(f"{where}is missing the required attribute(s) {', '.join(missing)}")
    if as_text(attrs["specversion"]) != "1.0":
        raise PayloadError(f'{where}specversion must be "1.0", got {as_text(attrs["specversion"])!r}')
    source, event_id, kind = as_text(attrs["source"]), as_text(attrs["id"]), as_text(attrs["type"])
    if len(source) > 1024 or len(event_id) > 255:
        raise PayloadError(f"{where}source (at most 1024 characters) or id (at most 255) is too long")
    subject = as_text(attrs.get("subject"))
    fields = data if isinstance(data, dict) else {}
    key = _pick(attrs, fields, "dedupkey", "dedup_key") or (
        f"{source}#{subject}" if subject else f"{source}#{event_id}"
    )
    extensions = {k: as_text(v) for k, v in attrs.items() if k not in _CORE and as_text(v)}
    return AlertEvent(
        dedup_key=fit_key(key),
        action=action_of(_pick(attrs, fields, "action", "status", "state")),
        summary=clamp(_summary(fields, kind, subject, source), SUMMARY_MAX),
        severity=severity_of(_pick(attrs, fields, "severity"), options.default_severity),
        source=clamp(source, SOURCE_MAX),
        labels={"type": kind, **({"subject": subject} if subject else {}), **extensions},
        details={
            k: attrs[k] for k in ("type", "subject", "time", "datacontenttype", "dataschema") if k in attrs
        }
        | {"data": data},
        occurred_at=parse_time(attrs.get("time")),
        raw=fit_raw(raw, body_size),
        once=(source, event_id),
    )


def _structured(request: IntakeRequest, options: Options) -> list[AlertEvent]:
    body = request.json()
    batch = request.content_type == "application/cloudevents-batch+json"
    if batch and not isinstance(body, list):
        raise PayloadError(f"a batch must be a JSON array of events, got {type_name(body)}")
    items = body if batch else [body]
    events = []
    for index, item in enumerate(items):
        where = f"event [{index}] " if batch else "the event "
        event = obj(item, where.strip())
        data = event.get("data", event.get("data_base64"))
        events.append(event_from(event, data, where, options, event, len(request.body)))
    return events


def _binary(request: IntakeRequest, options: Options) -> list[AlertEvent]:
    attrs: dict[str, Any] = {
        name[3:]: clean_text(unquote(value, errors="replace"))
        for name, value in request.headers.items()
        if name.startswith("ce-")
    }
    content_type = request.content_type
    if content_type:
        attrs["datacontenttype"] = content_type
    data: Any = None
    if request.body:
        if not content_type or content_type == "application/json" or content_type.endswith("+json"):
            data = load_json(request.body)
        else:
            data = clamp(clean_text(request.body.decode("utf-8", "replace")), _TEXT_MAX)
    return [
        event_from(attrs, data, "the event ", options, {"attributes": attrs, "data": data}, len(request.body))
    ]


class CloudEventsAdapter:
    """CloudEvents 1.0 in any of the HTTP binding's three modes."""

    def __init__(self, options: Options) -> None:
        self.options = options

    def parse(self, request: IntakeRequest) -> list[AlertEvent]:
        if "ce-specversion" in request.headers or "ce-id" in request.headers:
            return _binary(request, self.options)
        return _structured(request, self.options)
