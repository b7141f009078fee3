"""Alertmanager webhooks: one event per fingerprint, firing triggers, resolved resolves."""

from __future__ import annotations

import pytest

from tests.alerts.adapters.helpers import request
from tests.alerts.conftest import sample
from tocsin.alerts.adapters.alertmanager import AlertmanagerAdapter
from tocsin.alerts.adapters.base import Action, PayloadError
from tocsin.alerts.models import Severity
from tocsin.alerts.options import Options

adapter = AlertmanagerAdapter(Options())


def test_the_documented_webhook_becomes_one_trigger_keyed_by_fingerprint() -> None:
    [event] = adapter.parse(request(sample("alertmanager.json")))
    assert event.dedup_key == "1a30ba71cca2921f"
    assert event.action is Action.trigger
    assert event.summary == "Probe failure on server.example.org"
    assert event.severity is Severity.critical
    assert event.source == "https://server.example.org"
    assert event.labels["job"] == "http_checks"
    assert event.occurred_at is not None and event.occurred_at.year == 2023
    assert event.details["endsAt"] == "0001-01-01T00:00:00Z"
    assert event.raw["alerts"][0]["fingerprint"] == "1a30ba71cca2921f"
    assert event.raw["groupKey"].startswith("{}/")


def test_links_keep_only_web_addresses() -> None:
    body = sample("alertmanager.json")
    body["alerts"][0]["annotations"]["runbook_url"] = "javascript:alert(1)"
    body["alerts"][0]["generatorURL"] = "http://prometheus.example.org:9090/graph"
    [event] = adapter.parse(request(body))
    assert event.links == [{"href": "http://prometheus.example.org:9090/graph", "text": "Source"}]


def test_alerts_sharing_a_summary_or_group_stay_distinct_and_resolved_ones_resolve() -> None:
    body = sample("alertmanager.json")
    second = {
        **body["alerts"][0],
        "fingerprint": "2b41cb82ddb3a320",
        "status": "resolved",
        "endsAt": "2023-02-06T14:00:00Z",
    }
    body["alerts"].append(second)
    first, other = adapter.parse(request(body))
    assert first.summary == other.summary
    assert (first.dedup_key, first.action) == ("1a30ba71cca2921f", Action.trigger)
    assert (other.dedup_key, other.action) == ("2b41cb82ddb3a320", Action.resolve)


def test_unknown_fields_are_tolerated() -> None:
    body = sample("alertmanager.json")
    body["notification_reason"] = "new"
    body["alerts"][0]["something_new"] = {"x": 1}
    assert len(adapter.parse(request(body))) == 1


def test_without_a_fingerprint_the_label_set_identifies_the_alert() -> None:
    body = sample("alertmanager.json")
    del body["alerts"][0]["fingerprint"]
    [a] = adapter.parse(request(body))
    body["alerts"][0]["annotations"]["summary"] = "changed"
    [b] = adapter.parse(request(body))
    assert a.dedup_key == b.dedup_key and a.dedup_key.startswith("labels:")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda b: b.pop("alerts"), "alerts must be an array"),
        (lambda b: b.update(alerts={"a": 1}), "got an object"),
        (lambda b: b["alerts"][0].update(status="burning"), "alerts[0].status must be firing or resolved"),
        (lambda b: b["alerts"][0].update(fingerprint="", labels={}), "alerts[0].fingerprint is missing"),
        (lambda b: b["alerts"].append("nope"), "alerts[1] must be a JSON object"),
    ],
)
def test_a_custom_template_missing_essentials_is_refused_naming_what_is_missing(change, named) -> None:  # type: ignore[no-untyped-def]
    body = sample("alertmanager.json")
    change(body)
    with pytest.raises(PayloadError) as refused:
        adapter.parse(request(body))
    assert named in " ".join(refused.value.errors)


def test_an_alert_without_its_own_status_takes_the_webhooks() -> None:
    body = sample("alertmanager.json")
    del body["alerts"][0]["status"]
    body["status"] = "resolved"
    [event] = adapter.parse(request(body))
    assert event.action is Action.resolve


def test_five_hundred_alerts_make_five_hundred_events() -> None:
    body = sample("alertmanager.json")
    template = body["alerts"][0]
    body["alerts"] = [{**template, "fingerprint": f"{i:016x}"} for i in range(500)]
    events = adapter.parse(request(body))
    assert len({e.dedup_key for e in events}) == 500
