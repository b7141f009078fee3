"""Grafana webhooks: managed alerting by fingerprint, legacy alerts by rule id."""

from __future__ import annotations

import pytest

from tests.alerts.adapters.helpers import request
from tests.alerts.conftest import sample
from tocsin.alerts.adapters.base import Action, PayloadError
from tocsin.alerts.adapters.grafana import GrafanaAdapter
from tocsin.alerts.models import Severity
from tocsin.alerts.options import Options

adapter = GrafanaAdapter(Options(default_severity=Severity.error))


def test_the_documented_managed_alert_becomes_one_trigger() -> None:
    [event] = adapter.parse(request(sample("grafana.json")))
    assert event.dedup_key == "c6eadffa33fcdf37"
    assert event.action is Action.trigger
    assert event.summary == "High memory in zone us-1"
    assert event.severity is Severity.error  # no severity label: the integration's default
    assert event.details["values"] == {"B": 44.23943737541908, "C": 1}
    assert event.details["title"] == "[FIRING:1] High memory usage"
    texts = [link["text"] for link in event.links]
    assert texts == ["Source", "Runbook", "Silence"]  # empty dashboard and panel URLs are left out


def test_a_legacy_alert_is_keyed_by_rule_id_and_ok_resolves_it() -> None:
    body = sample("grafana_legacy.json")
    [event] = adapter.parse(request(body))
    assert (event.dedup_key, event.action) == ("rule-7", Action.trigger)
    assert event.summary == "[Alerting] Disk almost full"
    assert event.details["evalMatches"][0]["value"] == 4.2
    assert {link["text"] for link in event.links} == {"Rule", "Image"}
    body.update(state="ok", title="[OK] Disk almost full")
    [resolved] = adapter.parse(request(body))
    assert (resolved.dedup_key, resolved.action) == ("rule-7", Action.resolve)


@pytest.mark.parametrize("state", ["paused", "pending"])
def test_legacy_paused_and_pending_states_are_not_alerts(state: str) -> None:
    body = sample("grafana_legacy.json")
    body["state"] = state
    assert adapter.parse(request(body)) == []


def test_a_legacy_alert_without_rule_id_is_refused() -> None:
    body = sample("grafana_legacy.json")
    del body["ruleId"]
    with pytest.raises(PayloadError, match="ruleId is missing"):
        adapter.parse(request(body))
