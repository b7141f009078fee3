"""Decoding intake bodies: bad JSON, bad UTF-8, deep nesting and values databases refuse."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin.alerts.adapters.base import (
    _RISKY_ESCAPE,
    MAX_DEPTH,
    PayloadError,
    _finite,
    _refuse_constant,
    _too_deep,
    clean,
    fit_raw,
    load_json,
    severity_of,
)
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


def by_json_alone(body: bytes) -> Any:
    """What load_json decoded before orjson: json's own reading, with the same refusals."""
    text = body.decode("utf-8").removeprefix("\ufeff")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except (RecursionError, ValueError) as exc:
        raise PayloadError(str(exc)) from exc
    return clean(value) if _RISKY_ESCAPE.search(body) else value


def same_outcome(body: bytes) -> None:
    try:
        expected = by_json_alone(body)
    except PayloadError:
        with pytest.raises(PayloadError):
            load_json(body)
        return
    except UnicodeDecodeError:
        return
    if _too_deep(expected):
        with pytest.raises(PayloadError, match="nested more than"):
            load_json(body)
        return
    got = load_json(body)
    assert got == expected and type(got) is type(expected)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)  # ints stay ints


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_orjson_reads_every_document_as_json_did(value: Any, ascii_only: bool) -> None:
    same_outcome(json.dumps(value, ensure_ascii=ascii_only).encode())


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([*'{}[]":,-.0123456789eE \\u', "true", "null", "1e999", "\\ud800", "é"])))
def test_orjson_refuses_what_json_refused_and_reads_the_rest_alike(pieces: list[str]) -> None:
    same_outcome("".join(pieces).encode())


@pytest.mark.parametrize(
    "body",
    [b"12345678901234567890", b"[-98765432109876543210, 1.5]", b'{"a": 1, "a": 2}', b'"\\ud800x"', b"-0"],
)
def test_orjson_and_json_agree_on_big_integers_repeated_keys_and_surrogates(body: bytes) -> None:
    same_outcome(body)
