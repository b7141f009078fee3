"""HTML form values to the shapes the incident service takes: a type's extra fields, read by their kind.

Each extra field is posted as `x_<name>`. Browsers send text, so numbers, yes/no choices and indicator lists
are turned into JSON values here; the service then validates them against the type and names any bad field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tocsin.errors import Invalid
from tocsin.incidents.fields import FieldDef, FieldKind, IndicatorType

PREFIX = "x_"


def field_key(d: FieldDef) -> str:
    return PREFIX + d.name


def _number(label: str, text: str) -> int | float:
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"{label}: {text!r} is not a number") from None
    integral = value.is_integer() and "." not in text and "e" not in text.lower()
    return int(value) if integral else value


def parse_indicators(text: str) -> list[dict[str, str]]:
    """One indicator per line, "type value" (e.g. "ip 203.0.113.9"); without a known type it is "other"."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        if head.lower() in set(IndicatorType) and rest.strip():
            out.append({"type": head.lower(), "value": rest.strip()})
        else:
            out.append({"type": "other", "value": line})
    return out


def format_indicators(value: Any) -> str:
    if not isinstance(value, list):
        return ""
    return "\n".join(f"{i.get('type', 'other')} {i.get('value', '')}" for i in value if isinstance(i, dict))


def read_extra(defs: Sequence[FieldDef], form: Mapping[str, Any]) -> dict[str, Any]:
    """The type's field values from a posted form; empty inputs are left out (the service checks required)."""
    values: dict[str, Any] = {}
    for d in defs:
        raw = form.get(field_key(d))
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            continue
        if d.kind == FieldKind.number:
            values[d.name] = _number(d.label, text)
        elif d.kind == FieldKind.boolean:
            values[d.name] = text == "yes"
        elif d.kind == FieldKind.person:
            values[d.name] = int(text) if text.isdigit() and len(text) < 19 else text
        elif d.kind == FieldKind.indicators:
            values[d.name] = parse_indicators(text)
        else:
            values[d.name] = text
    return values


def form_values(defs: Sequence[FieldDef], extra: Mapping[str, Any]) -> dict[str, str]:
    """Stored extra values as form inputs show them (for re-displaying a form)."""
    shown: dict[str, str] = {}
    for d in defs:
        if d.name not in extra:
            continue
        value = extra[d.name]
        if d.kind == FieldKind.boolean:
            shown[field_key(d)] = "yes" if value else "no"
        elif d.kind == FieldKind.indicators:
            shown[field_key(d)] = format_indicators(value)
        else:
            shown[field_key(d)] = str(value)
    return shown


def parse_conditions(text: str) -> list[dict[str, Any]]:
    """Routing-rule conditions, one a line: `[not] <field> <equals|regex|in|exists> [value]`
    (e.g. `labels.env equals production`, `severity in critical,error`); the alerts domain checks them."""
    out: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split(None, 2)
        if not words:
            continue
        negate = words[0].lower() == "not"
        if negate:
            words = line.split(None, 3)[1:]
        if len(words) < 2:
            raise Invalid(f"conditions line {number}: write `field op value`, e.g. `labels.env equals prod`")
        field, op, value = words[0], words[1].lower(), (words[2].strip() if len(words) > 2 else None)
        condition: dict[str, Any] = {"field": field, "op": op}
        if value is not None:
            condition["value"] = [v.strip() for v in value.split(",") if v.strip()] if op == "in" else value
        if negate:
            condition["negate"] = True
        out.append(condition)
    return out


def format_conditions(conditions: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for c in conditions:
        value = c.get("value")
        shown = ",".join(value) if isinstance(value, list) else ("" if value is None else str(value))
        lines.append(" ".join(p for p in ("not" if c.get("negate") else "", c["field"], c["op"], shown) if p))
    return "\n".join(lines)
