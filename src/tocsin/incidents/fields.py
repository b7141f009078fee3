"""Per-type extra fields: their definitions and the validation of an incident's `extra` values against them.

Pure: person fields are checked for shape here and reported back, so the service can confirm the users exist.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tocsin.errors import Invalid

TEXT_MAX = 10_000
INDICATORS_MAX = 500


class FieldKind(StrEnum):
    text = "text"
    number = "number"
    date = "date"  # ISO date, 2024-05-31
    time = "time"  # time of day, 14:05 (OSHA 301 asks for time of event and time work began)
    choice = "choice"
    person = "person"  # a user id
    boolean = "boolean"
    indicators = "indicators"  # typed indicators of compromise: [{"type": "ip", "value": "203.0.113.9"}]


class IndicatorType(StrEnum):
    ip = "ip"
    domain = "domain"
    url = "url"
    hash = "hash"
    email = "email"
    file = "file"
    other = "other"


class FieldDef(BaseModel):
    """One extra field an incident type carries."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60, description="Key in the incident's extra.")
    label: str = Field(min_length=1, max_length=200)
    kind: FieldKind
    required: bool = False
    choices: list[str] | None = Field(default=None, description="The allowed values of a choice field.")
    help: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _choices_match_kind(self) -> FieldDef:
        if self.kind == FieldKind.choice:
            if not self.choices:
                raise ValueError(f"field {self.name}: a choice field needs a non-empty choices list")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"field {self.name}: choices must be unique")
        elif self.choices is not None:
            raise ValueError(f"field {self.name}: only choice fields take choices")
        return self


def check_definitions(defs: Sequence[FieldDef]) -> list[FieldDef]:
    """Refuse a field list that names a field twice."""
    names = [d.name for d in defs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise Invalid("each extra field needs its own name; given more than once: " + ", ".join(twice))
    return list(defs)


@dataclass(frozen=True)
class Checked:
    values: dict[str, Any]
    person_ids: frozenset[int]


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2})?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HEX = re.compile(r"^[0-9a-f]+$")
_HASH_LENGTHS = {32: "MD5", 40: "SHA-1", 64: "SHA-256", 128: "SHA-512"}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def validate_extra(defs: Sequence[FieldDef], values: Mapping[str, Any], *, type_key: str) -> Checked:
    """Check `values` against the type's fields; raise Invalid naming every bad field, or return them cleaned.

    Unknown fields are refused; empty optional fields are dropped; required fields must be present.
    """
    by_name = {d.name: d for d in defs}
    problems: list[str] = []
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        known = ", ".join(by_name) or "none"
        problems.append(
            f"extra.{', extra.'.join(unknown)}: not a field of type {type_key} (its fields: {known})"
        )
    clean: dict[str, Any] = {}
    people: set[int] = set()
    for d in defs:
        raw = values.get(d.name)
        if _blank(raw):
            if d.required:
                problems.append(f"extra.{d.name} ({d.label}) is required for type {type_key}")
            continue
        try:
            clean[d.name] = _check(d, raw)
        except ValueError as exc:
            problems.append(f"extra.{d.name} ({d.label}) {exc}")
            continue
        if d.kind == FieldKind.person:
            people.add(clean[d.name])
    if problems:
        raise Invalid("; ".join(problems), problems=problems)
    return Checked(clean, frozenset(people))


def _check(d: FieldDef, raw: Any) -> Any:
    """The cleaned value of one non-empty field, or ValueError saying what it must be."""
    kind = d.kind
    if kind == FieldKind.text:
        if not isinstance(raw, str):
            raise ValueError("must be text")
        if len(raw) > TEXT_MAX:
            raise ValueError(f"is longer than {TEXT_MAX} characters")
        return raw.strip()
    if kind == FieldKind.number:
        if (
            isinstance(raw, bool)
            or not isinstance(raw, int | float)
            or (isinstance(raw, float) and not math.isfinite(raw))
        ):
            raise ValueError("must be a number")
        return raw
    if kind == FieldKind.boolean:
        if not isinstance(raw, bool):
            raise ValueError("must be true or false")
        return raw
    if kind == FieldKind.person:
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw < 2**63:
            raise ValueError("must be a user id (a positive integer)")
        return raw
    if kind == FieldKind.choice:
        if raw not in (d.choices or []):
            raise ValueError(f"must be one of {', '.join(d.choices or [])}")
        return raw
    if kind == FieldKind.date:
        return _iso(raw, _DATE, date.fromisoformat, "must be an ISO date like 2024-05-31")
    if kind == FieldKind.time:
        return _iso(raw, _TIME, time.fromisoformat, "must be a time of day like 14:05")
    return _indicators(raw)


def _iso(raw: Any, pattern: re.Pattern[str], parse: Any, message: str) -> str:
    if not isinstance(raw, str) or not pattern.match(raw.strip()):
        raise ValueError(message)
    try:
        parse(raw.strip())  # the pattern fixed the shape; this refuses 2024-02-30 and 25:00
    except ValueError:
        raise ValueError(message) from None
    return raw.strip()


def _indicators(raw: Any) -> list[dict[str, str]]:
    shape = 'must be a list of {"type": ip|domain|url|hash|email|file|other, "value": "..."}'
    if not isinstance(raw, list) or len(raw) > INDICATORS_MAX:
        raise ValueError(shape + f" (at most {INDICATORS_MAX})")
    out: list[dict[str, str]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or set(item) != {"type", "value"} or not isinstance(item["value"], str):
            raise ValueError(f"item {i} {shape.removeprefix('must be a list of ')}")
        try:
            kind = IndicatorType(item["type"])
        except ValueError:
            raise ValueError(f"item {i}: type must be one of {', '.join(IndicatorType)}") from None
        value = indicator_value(kind, item["value"])
        if value is None:
            raise ValueError(f"item {i}: {item['value']!r} is not a valid {kind}")
        out.append({"type": kind.value, "value": value})
    return out


def indicator_value(kind: IndicatorType, value: str) -> str | None:
    """The normalised indicator, or None when `value` is not one of `kind`."""
    value = value.strip()
    if not value or len(value) > 2000:
        return None
    if kind == IndicatorType.ip:
        try:
            return str(
                ipaddress.ip_network(value, strict=False) if "/" in value else ipaddress.ip_address(value)
            )
        except ValueError:
            return None
    if kind == IndicatorType.domain:
        lowered = value.lower().rstrip(".")
        return lowered if _DOMAIN.match(lowered) else None
    if kind == IndicatorType.hash:
        lowered = value.lower()
        return lowered if _HEX.match(lowered) and len(lowered) in _HASH_LENGTHS else None
    if kind == IndicatorType.email:
        return value if _EMAIL.match(value) else None
    if kind == IndicatorType.url:
        parts = urlsplit(value)
        return value if parts.scheme and parts.netloc else None
    return value
