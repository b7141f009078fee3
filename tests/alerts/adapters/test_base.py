"""Decoding intake bodies: bad JSON, bad UTF-8, deep nesting and values databases refuse."""

from __future__ import annotations

import pytest

from tocsin.alerts.adapters.base import MAX_DEPTH, PayloadError, fit_raw, load_json, severity_of
from tocsin.alerts.models import Severity


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "nested more than"),
        (b"[" * 100_000, "nested more than"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": 1e999}', "not valid JSON"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "not valid JSON"),
    ],
)
def test_bodies_that_cannot_be_stored_are_refused_with_the_reason(body: bytes, says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        load_json(body)


def test_nul_and_lone_surrogates_are_replaced_not_refused() -> None:
    assert load_json(rb'{"a\u0000": ["x\u0000y", "\ud800"]}') == {"a": ["xy", "\ufffd"]}
    assert load_json(b"\xef\xbb\xbf[1]") == [1]


def test_deep_but_allowed_nesting_passes() -> None:
    assert load_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None


def test_raw_payloads_over_64_kb_become_a_marker() -> None:
    big = {"x": "y" * 70_000}
    kept = fit_raw(big, 70_010)
    assert kept["truncated"] is True and kept["size_bytes"] > 65_536 and len(kept["head"]) == 4096
    assert fit_raw({"x": 1}, 70_010) == {"x": 1}


def test_severity_words() -> None:
    assert severity_of("CRITICAL", Severity.info) is Severity.critical
    assert severity_of("warn", Severity.info) is Severity.warning
    assert severity_of("purple", Severity.error) is Severity.error
    assert severity_of({"x": 1}, Severity.info) is Severity.info
