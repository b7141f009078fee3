"""Generic JSON through a field mapping written as data."""

from __future__ import annotations

import pytest

from tests.alerts.adapters.helpers import request
from tocsin.alerts.adapters.base import Action, PayloadError, stable_key
from tocsin.alerts.adapters.generic import GenericAdapter, lookup
from tocsin.alerts.models import Severity
from tocsin.alerts.options import FieldMap, GenericOptions

MAPPED = GenericAdapter(
    GenericOptions(
        mapping=FieldMap(
            summary="alert.title",
            dedup_key="alert.id",
            severity="alert.level",
            status="state",
            source="origin.host",
            severity_map={"P1": Severity.critical},
            resolve_values=["CLEARED"],
        )
    )
)


def test_paths_walk_objects_and_arrays() -> None:
    body = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert lookup(body, "a.b[1].c") == 2
    assert lookup(body, "$.a.b[0].c") == 1
    assert lookup(body, "a.b[5].c") is None
    assert lookup(body, "a.x.y") is None


def test_the_mapping_finds_each_field() -> None:
    body = {
        "alert": {"title": "Queue backlog", "id": "q-7", "level": "P1"},
        "state": "open",
        "origin": {"host": "mq1"},
    }
    [event] = MAPPED.parse(request(body))
    assert (event.summary, event.dedup_key, event.severity, event.source) == (
        "Queue backlog",
        "q-7",
        Severity.critical,
        "mq1",
    )
    assert event.action is Action.trigger
    assert event.details == body
    body["state"] = "cleared"
    assert MAPPED.parse(request(body))[0].action is Action.resolve


def test_without_a_key_the_alert_is_identified_by_summary_and_source() -> None:
    [event] = MAPPED.parse(request({"alert": {"title": "Queue backlog"}, "origin": {"host": "mq1"}}))
    assert event.dedup_key == stable_key("Queue backlog", "mq1")
    [again] = MAPPED.parse(request({"alert": {"title": "Queue backlog"}, "origin": {"host": "mq1"}, "x": 1}))
    assert again.dedup_key == event.dedup_key


def test_the_default_mapping_reads_plain_field_names_and_arrays_are_several_events() -> None:
    adapter = GenericAdapter(GenericOptions())
    events = adapter.parse(
        request([{"summary": "a", "severity": "warning"}, {"summary": "b", "status": "ok"}])
    )
    assert [(e.summary, e.severity, e.action) for e in events] == [
        ("a", Severity.warning, Action.trigger),
        ("b", Severity.warning, Action.resolve),
    ]


def test_a_missing_summary_names_the_path_to_fix() -> None:
    with pytest.raises(PayloadError, match=r"no summary at 'alert.title'.*config.mapping.summary"):
        MAPPED.parse(request({"alert": {}}))
