"""Whatever bytes arrive, an adapter answers with storable events or a PayloadError, never anything else."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tocsin.alerts.adapters import ADAPTERS
from tocsin.alerts.adapters.base import DEDUP_KEY_MAX, SUMMARY_MAX, AlertEvent, IntakeRequest, PayloadError
from tocsin.alerts.models import IntegrationKind
from tocsin.alerts.options import GenericOptions, Options

# Field names the adapters look for, so random documents often take the interesting paths.
WORDS = [
    "alerts",
    "status",
    "labels",
    "annotations",
    "fingerprint",
    "startsAt",
    "generatorURL",
    "values",
    "ruleId",
    "ruleName",
    "state",
    "evalMatches",
    "routing_key",
    "event_action",
    "dedup_key",
    "payload",
    "summary",
    "source",
    "severity",
    "timestamp",
    "custom_details",
    "links",
    "images",
    "href",
    "id",
    "specversion",
    "type",
    "subject",
    "time",
    "data",
    "dedupkey",
    "action",
    "title",
    "firing",
    "resolved",
    "trigger",
    "resolve",
    "1.0",
    "critical",
    "http://x",
    "alerting",
    "ok",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(WORDS)
    | st.text(max_size=20)
)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=5), inner, max_size=6)
    ),
    max_leaves=40,
)
headers = st.dictionaries(
    st.sampled_from(
        ["ce-id", "ce-source", "ce-specversion", "ce-type", "ce-subject", "ce-action", "ce-x", "content-type"]
    ),
    st.sampled_from(
        [
            "1.0",
            "a",
            "%ZZ",
            "%00",
            "%ff",
            "application/json",
            "text/plain",
            "application/cloudevents-batch+json",
        ]
    )
    | st.text(max_size=10),
)
KINDS = [k for k in ADAPTERS]


def options(kind: IntegrationKind) -> Options:
    return GenericOptions() if kind is IntegrationKind.generic else Options()


def storable(value: Any) -> bool:
    if isinstance(value, str):
        value.encode("utf-8")  # raises on a lone surrogate
        return "\x00" not in value
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(storable(k) and storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(storable(v) for v in value)
    return value is None or isinstance(value, bool | int)


def check(kind: IntegrationKind, request: IntakeRequest) -> None:
    try:
        events = ADAPTERS[kind](options(kind)).parse(request)
    except PayloadError as exc:
        assert exc.errors and all(isinstance(e, str) and e for e in exc.errors)
        return
    for event in events:
        assert isinstance(event, AlertEvent)
        assert event.dedup_key and len(event.dedup_key) <= DEDUP_KEY_MAX
        assert len(event.summary) <= SUMMARY_MAX and len(event.source) <= 255
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in event.labels.items())
        assert all(link["href"].startswith(("http://", "https://")) for link in event.links)
        assert storable(
            [
                event.summary,
                event.source,
                event.dedup_key,
                event.labels,
                event.links,
                event.details,
                event.raw,
            ]
        )
        json.dumps([event.details, event.raw], ensure_ascii=False).encode("utf-8")


fuzz = settings(
    max_examples=int(os.environ.get("TOCSIN_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@fuzz
@given(kind=st.sampled_from(KINDS), document=documents, extra=headers)
def test_random_json_documents(kind: IntegrationKind, document: Any, extra: dict[str, str]) -> None:
    check(kind, IntakeRequest(json.dumps(document).encode(), extra, "k+tag@example.com"))


@fuzz
@given(kind=st.sampled_from(KINDS), body=st.binary(max_size=300), extra=headers)
def test_random_bytes(kind: IntegrationKind, body: bytes, extra: dict[str, str]) -> None:
    check(kind, IntakeRequest(body, extra, "k@example.com"))


@fuzz
@given(body=st.text(max_size=300), recipient=st.text(max_size=30))
def test_random_mail_text(body: str, recipient: str) -> None:
    check(IntegrationKind.email, IntakeRequest(body.encode("utf-8", "surrogatepass"), {}, recipient))
