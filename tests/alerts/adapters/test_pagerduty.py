"""PagerDuty Events v2: the documented event, generated keys, and PagerDuty-style error lists."""

from __future__ import annotations

import pytest

from tests.alerts.adapters.helpers import request
from tests.alerts.conftest import sample
from tocsin.alerts.adapters.base import Action, PayloadError
from tocsin.alerts.adapters.pagerduty import PagerDutyAdapter, routing_key_of
from tocsin.alerts.models import Severity
from tocsin.alerts.options import Options

adapter = PagerDutyAdapter(Options())


def test_the_documented_trigger() -> None:
    body = sample("pagerduty.json")
    assert routing_key_of(body) == "<integration key>"
    [event] = adapter.parse(request(body))
    assert (event.dedup_key, event.action) == ("db-down-1", Action.trigger)
    assert event.summary == "Example alert on host1.example.com"
    assert event.source == "host1.example.com"
    assert event.severity is Severity.critical
    assert event.labels == {"component": "postgres", "group": "prod-datapipe", "class": "deploy"}
    assert event.details == {"custom_details": {"ping time": "1500ms", "load avg": 0.75}}
    assert (
        event.occurred_at is not None and event.occurred_at.isoformat() == "2015-07-17T08:42:58.315000+00:00"
    )
    assert [link["text"] for link in event.links] == ["Runbook", "graph", "Sample Monitoring Service"]


def test_a_trigger_without_a_key_gets_a_fresh_one() -> None:
    body = sample("pagerduty.json")
    del body["dedup_key"]
    keys = {adapter.parse(request(body))[0].dedup_key for _ in range(3)}
    assert len(keys) == 3 and all(len(k) == 32 for k in keys)


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_acknowledge_and_resolve_need_only_the_key(action: str) -> None:
    [event] = adapter.parse(request({"routing_key": "k", "dedup_key": "db-down-1", "event_action": action}))
    assert (event.dedup_key, event.action) == ("db-down-1", Action(action))


def test_every_problem_is_listed() -> None:
    body = sample("pagerduty.json")
    body["dedup_key"] = "k" * 256
    body["payload"].update(summary="s" * 1025, severity="disaster", source="")
    with pytest.raises(PayloadError) as refused:
        adapter.parse(request(body))
    assert refused.value.errors == [
        "'dedup_key' is longer than 255 characters",
        "'payload.summary' is longer than 1024 characters",
        "'payload.source' is missing or blank",
        "'payload.severity' must be one of critical, error, warning, info",
    ]


def test_missing_essentials_are_named() -> None:
    with pytest.raises(PayloadError) as refused:
        adapter.parse(request({"routing_key": "k", "event_action": "resolve"}))
    assert refused.value.errors == [
        "'dedup_key' is missing or blank (it is required to acknowledge or resolve)"
    ]
    with pytest.raises(PayloadError) as refused:
        adapter.parse(request({"routing_key": "k", "event_action": "trigger"}))
    assert refused.value.errors == ["'payload' is missing or not an object (it is required to trigger)"]
    with pytest.raises(PayloadError) as refused:
        adapter.parse(request({"routing_key": "k", "event_action": ["trigger"]}))
    assert refused.value.errors == ["'event_action' must be one of trigger, acknowledge, resolve"]
