"""Extra fields per incident type: definitions, and validation of an incident's values against them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tocsin.errors import Invalid
from tocsin.incidents.fields import FieldDef, FieldKind, check_definitions, validate_extra
from tocsin.incidents.seed import DEFAULT_TYPES, SAFETY_FIELDS, SECURITY_FIELDS

SAFETY_MINIMUM = {
    "event_date": "2024-05-02",
    "location": "Warehouse 3, bay 4",
    "what_happened": "Slipped on a wet floor",
    "actual_severity": "first_aid",
    "potential_severity": "lost_time",
}


def test_a_safety_report_needs_the_core_osha_fields_and_names_each_missing_one() -> None:
    with pytest.raises(Invalid) as refused:
        validate_extra(SAFETY_FIELDS, {"employee_name": "Ana Ruiz"}, type_key="safety")
    detail = refused.value.detail
    for name in ("event_date", "location", "what_happened", "actual_severity", "potential_severity"):
        assert f"extra.{name}" in detail
    assert "required for type safety" in detail
    assert validate_extra(SAFETY_FIELDS, SAFETY_MINIMUM, type_key="safety").values == SAFETY_MINIMUM


def test_safety_values_are_checked_by_kind() -> None:
    bad = SAFETY_MINIMUM | {
        "employee_birth_date": "02/05/1990",
        "event_time": "25:00",
        "hospitalized_overnight": "yes",
        "actual_severity": "bruise",
        "employee_sex": "x",
    }
    with pytest.raises(Invalid) as refused:
        validate_extra(SAFETY_FIELDS, bad, type_key="safety")
    problems = refused.value.extra["problems"]
    assert any("employee_birth_date" in p and "ISO date" in p for p in problems)
    assert any("event_time" in p and "time of day" in p for p in problems)
    assert any("hospitalized_overnight" in p and "true or false" in p for p in problems)
    assert any("actual_severity" in p and "fatality, lost_time" in p for p in problems)
    assert len(problems) == 5


def test_every_osha_301_item_is_a_safety_field() -> None:
    names = {f.name for f in SAFETY_FIELDS}
    assert {
        "employee_name",
        "employee_address",
        "employee_birth_date",
        "employee_hire_date",
        "employee_sex",
        "physician",
        "treatment_facility",
        "emergency_room",
        "hospitalized_overnight",
        "case_number",
        "event_date",
        "event_time",
        "work_start_time",
        "activity_before",
        "what_happened",
        "injury",
        "object_or_substance",
        "death_date",
        "actual_severity",
        "potential_severity",
    } <= names


def test_security_impact_scales_and_typed_indicators() -> None:
    good = {
        "functional_impact": "high",
        "information_impact": "privacy",
        "recoverability": "supplemented",
        "indicators": [
            {"type": "ip", "value": " 203.0.113.9 "},
            {"type": "domain", "value": "Evil.Example."},
            {"type": "hash", "value": "D41D8CD98F00B204E9800998ECF8427E"},
            {"type": "url", "value": "https://evil.example/x"},
            {"type": "ip", "value": "198.51.100.0/24"},
        ],
    }
    checked = validate_extra(SECURITY_FIELDS, good, type_key="security").values
    assert checked["indicators"][0] == {"type": "ip", "value": "203.0.113.9"}
    assert checked["indicators"][1]["value"] == "evil.example"
    assert checked["indicators"][2]["value"] == "d41d8cd98f00b204e9800998ecf8427e"
    with pytest.raises(Invalid, match=r"recoverability.*regular, supplemented"):
        validate_extra(SECURITY_FIELDS, {"recoverability": "maybe"}, type_key="security")
    for bad in (
        [{"type": "ip", "value": "999.1.1.1"}],
        [{"type": "hash", "value": "abc"}],
        [{"type": "sha", "value": "abc"}],
        [{"value": "1.2.3.4"}],
        "1.2.3.4",
        [{"type": "email", "value": "nobody"}],
        [{"type": "url", "value": "evil.example"}],
    ):
        with pytest.raises(Invalid, match=r"extra\.indicators"):
            validate_extra(SECURITY_FIELDS, {"indicators": bad}, type_key="security")


def test_unknown_fields_are_refused_with_the_known_ones_listed() -> None:
    with pytest.raises(Invalid) as refused:
        validate_extra(SECURITY_FIELDS, {"colour": "red"}, type_key="security")
    assert "extra.colour: not a field of type security" in refused.value.detail
    assert "functional_impact" in refused.value.detail
    with pytest.raises(Invalid, match="its fields: none"):
        validate_extra([], {"anything": 1}, type_key="it_service")


def test_numbers_persons_and_empty_optionals() -> None:
    defs = [
        FieldDef(name="count", label="Count", kind=FieldKind.number),
        FieldDef(name="owner", label="Owner", kind=FieldKind.person),
        FieldDef(name="note", label="Note", kind=FieldKind.text),
    ]
    checked = validate_extra(defs, {"count": 2.5, "owner": 7, "note": ""}, type_key="t")
    assert checked.values == {"count": 2.5, "owner": 7} and checked.person_ids == {7}
    for bad in (
        {"count": True},
        {"count": "3"},
        {"count": float("nan")},
        {"owner": "7"},
        {"owner": 0},
        {"owner": 2**70},
        {"note": 5},
    ):
        with pytest.raises(Invalid):
            validate_extra(defs, bad, type_key="t")


def test_field_definitions_are_checked() -> None:
    with pytest.raises(ValidationError, match="needs a non-empty choices"):
        FieldDef(name="level", label="Level", kind=FieldKind.choice)
    with pytest.raises(ValidationError, match="only choice fields take choices"):
        FieldDef(name="level", label="Level", kind=FieldKind.text, choices=["a"])
    with pytest.raises(ValidationError):
        FieldDef(name="Bad Name", label="x", kind=FieldKind.text)
    twice = [FieldDef(name="a", label="A", kind=FieldKind.text)] * 2
    with pytest.raises(Invalid, match="given more than once: a"):
        check_definitions(twice)


def test_every_seeded_type_has_valid_unique_fields() -> None:
    assert {t.key for t in DEFAULT_TYPES} == {
        "it_service",
        "security",
        "devops",
        "safety",
        "quality",
        "data_protection",
        "facility",
    }
    for t in DEFAULT_TYPES:
        check_definitions(t.fields)
    confidential = {t.key for t in DEFAULT_TYPES if t.confidential}
    assert confidential == {"security", "data_protection"}
