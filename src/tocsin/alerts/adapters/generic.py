"""Generic JSON: the integration's field mapping (data, not code) says where summary, key, severity and
status are. Without a dedup key the alert is identified by a stable hash of its summary and source."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from tocsin.alerts.adapters.base import (
    SOURCE_MAX,
    SUMMARY_MAX,
    AlertEvent,
    IntakeRequest,
    PayloadError,
    action_of,
    as_text,
    clamp,
    fit_key,
    fit_raw,
    severity_of,
    stable_key,
    str_map,
    type_name,
)
from tocsin.alerts.models import Severity
from tocsin.alerts.options import FieldMap, GenericOptions, Options

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@lru_cache(maxsize=256)
def compile_path(path: str) -> tuple[str | int, ...]:
    """`alert.tags[0].name` (a leading `$.` is allowed) as the steps to walk: names and list indexes."""
    path = path.strip()
    path = path[2:] if path.startswith("$.") else path.lstrip("$")
    return tuple(name if name else int(index) for name, index in _STEP.findall(path))


def lookup(value: Any, path: str) -> Any:
    """The value at `path`, or None when any step is missing or of the wrong kind."""
    for step in compile_path(path):
        if isinstance(step, int) and isinstance(value, list) and step < len(value):
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict):
            value = value.get(step)
        else:
            return None
    return value


def _event(item: Any, where: str, mapping: FieldMap, default: Severity, body_size: int) -> AlertEvent:
    if not isinstance(item, dict):
        raise PayloadError(f"{where} must be a JSON object, got {type_name(item)}")
    summary = as_text(lookup(item, mapping.summary))
    if not summary:
        raise PayloadError(
            f"{where} has no summary at '{mapping.summary}' (set config.mapping.summary to "
            "the field that holds it)"
        )
    source = as_text(lookup(item, mapping.source)) if mapping.source else ""
    key = as_text(lookup(item, mapping.dedup_key)) if mapping.dedup_key else ""
    word = as_text(lookup(item, mapping.severity)) if mapping.severity else ""
    severity = mapping.severity_map.get(word) or severity_of(word, default)
    status = lookup(item, mapping.status) if mapping.status else None
    details = lookup(item, mapping.details) if mapping.details else item
    resolve = {w.lower() for w in mapping.resolve_values}
    acknowledge = {w.lower() for w in mapping.acknowledge_values}
    return AlertEvent(
        dedup_key=fit_key(key) if key else stable_key(summary, source),
        action=action_of(status, resolve, acknowledge),
        summary=clamp(summary.splitlines()[0], SUMMARY_MAX),
        severity=severity,
        source=clamp(source, SOURCE_MAX),
        labels=str_map(item.get("labels")),
        details=details if isinstance(details, dict) else {"value": details},
        raw=fit_raw(item, body_size),
    )


class GenericAdapter:
    """Any JSON a tool can send, read through the integration's mapping."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.mapping = options.mapping if isinstance(options, GenericOptions) else FieldMap()

    def parse(self, request: IntakeRequest) -> list[AlertEvent]:
        body = request.json()
        items = lookup(body, self.mapping.events) if self.mapping.events else body
        if self.mapping.events and not isinstance(items, list):
            raise PayloadError(f"no array of events at '{self.mapping.events}' (config.mapping.events)")
        items = items if isinstance(items, list) else [items]
        size = len(request.body)
        return [
            _event(
                item,
                f"event [{i}]" if len(items) > 1 else "the event",
                self.mapping,
                self.options.default_severity,
                size,
            )
            for i, item in enumerate(items)
        ]
