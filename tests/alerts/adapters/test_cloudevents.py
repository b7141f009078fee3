"""CloudEvents: structured, batched and binary mode; source + id identify an event."""

from __future__ import annotations

import json

import pytest

from tests.alerts.adapters.helpers import request
from tocsin.alerts.adapters.base import Action, PayloadError
from tocsin.alerts.adapters.cloudevents import CloudEventsAdapter
from tocsin.alerts.models import Severity
from tocsin.alerts.options import Options

adapter = CloudEventsAdapter(Options())
STRUCTURED = {"content-type": "application/cloudevents+json"}
EVENT = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "/monitors/disk",
    "type": "com.example.disk.full",
    "subject": "db1:/var",
    "time": "2024-03-01T10:00:00Z",
    "severity": "critical",
    "datacontenttype": "application/json",
    "data": {"summary": "Disk full on db1", "used": 0.99},
}


def test_a_structured_event_is_keyed_by_source_and_subject() -> None:
    [event] = adapter.parse(request(EVENT, STRUCTURED))
    assert event.dedup_key == "/monitors/disk#db1:/var"
    assert event.once == ("/monitors/disk", "evt-1")
    assert event.summary == "Disk full on db1"
    assert event.severity is Severity.critical
    assert event.action is Action.trigger
    assert event.labels == {"type": "com.example.disk.full", "subject": "db1:/var", "severity": "critical"}
    assert event.details["data"]["used"] == 0.99
    assert event.occurred_at is not None and event.occurred_at.hour == 10


def test_status_in_data_resolves_and_the_dedupkey_extension_names_the_alert() -> None:
    body = {**EVENT, "id": "evt-2", "dedupkey": "disk-db1", "data": {"status": "resolved"}}
    [event] = adapter.parse(request(body, STRUCTURED))
    assert (event.dedup_key, event.action) == ("disk-db1", Action.resolve)
    assert event.summary == "com.example.disk.full: db1:/var"


def test_binary_mode_reads_attributes_from_headers_and_data_from_the_body() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "evt-3",
        "ce-source": "/monitors/disk",
        "ce-type": "com.example.disk.full",
        "ce-subject": "db1%3A%2Fvar",
        "ce-action": "acknowledge",
        "content-type": "application/json",
    }
    [event] = adapter.parse(request({"title": "Disk full"}, headers))
    assert event.dedup_key == "/monitors/disk#db1:/var"
    assert event.action is Action.acknowledge
    assert event.summary == "Disk full"
    assert event.raw["attributes"]["datacontenttype"] == "application/json"


def test_binary_mode_keeps_text_data_as_text() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "e",
        "ce-source": "s",
        "ce-type": "t",
        "content-type": "text/plain",
    }
    [event] = adapter.parse(request(b"hello", headers))
    assert event.details["data"] == "hello"
    assert event.summary == "t from s"


def test_a_batch_is_several_events() -> None:
    batch = [EVENT, {**EVENT, "id": "evt-9", "subject": "db2:/var"}]
    events = adapter.parse(request(batch, {"content-type": "application/cloudevents-batch+json"}))
    assert [e.once for e in events] == [("/monitors/disk", "evt-1"), ("/monitors/disk", "evt-9")]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            {k: v for k, v in EVENT.items() if k not in ("id", "type")},
            "missing the required attribute(s) id, type",
        ),
        ({**EVENT, "specversion": "0.3"}, 'specversion must be "1.0"'),
        ([EVENT], "the event must be a JSON object"),
    ],
)
def test_missing_required_attributes_are_named(body: object, named: str) -> None:
    with pytest.raises(PayloadError) as refused:
        adapter.parse(request(json.dumps(body).encode(), STRUCTURED))
    assert named in refused.value.message
