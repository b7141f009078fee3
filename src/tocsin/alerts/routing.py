"""Routing-rule matching, grouping keys and maintenance-window coverage: pure functions over alert facts.

A condition names a field (`severity`, `source`, `summary` or `labels.<name>`), an operator and a value:

- `equals`: the field's text is exactly the value;
- `in`: it is one of the values (a list);
- `regex`: the whole text matches the pattern (anchored, as Alertmanager's `=~`), Python syntax;
- `exists`: the field is present and not empty (no value);

and `negate: true` turns any of them around. A rule's conditions must all hold (none: it matches every alert
in its scope). Rules are tried in order and the first match wins; with no match the alert goes to its
integration's service with the defaults. Nothing here reads a clock or a database.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tocsin.alerts.models import Severity

MAX_CONDITIONS = 20
MAX_VALUE = 1024  # characters of an equals value or of each `in` value
MAX_VALUES = 100  # values of one `in`
MAX_PATTERN = 256  # characters of a regex
MAX_LABEL_NAME = 100
MATCH_INPUT_MAX = 1024  # a regex sees at most this much of a field: bounds the work of one match
GROUP_KEY_MAX = 255

DEFAULT_TYPE = "it_service"
# Severity -> urgency (1 high .. 3 low) unless a rule or the service's settings say otherwise. Warnings and
# infos share "low": an incident from a warning is worth a look, not a page at night.
DEFAULT_URGENCY: Mapping[str, int] = {"critical": 1, "error": 2, "warning": 3, "info": 3}
# Service tier (1 most critical .. 4) -> impact (1 high .. 3 low) unless a rule or the settings say otherwise.
TIER_IMPACT: Mapping[int, int] = {1: 1, 2: 2, 3: 3, 4: 3}


class Op(StrEnum):
    equals = "equals"
    regex = "regex"
    in_ = "in"
    exists = "exists"


class RuleAction(StrEnum):
    route = "route"  # open or join an incident, with the rule's target and priority inputs
    suppress = "suppress"  # store the alert, flagged; no incident, no notification
    drop = "drop"  # do not store the alert at all


_PLAIN_FIELDS = ("severity", "source", "summary")
_SEVERITIES = frozenset(s.value for s in Severity)


@dataclass(frozen=True, slots=True)
class Condition:
    field: str
    op: Op
    value: str | tuple[str, ...] | None = None
    negate: bool = False

    def as_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "op": self.op.value}
        if self.value is not None:
            data["value"] = list(self.value) if isinstance(self.value, tuple) else self.value
        if self.negate:
            data["negate"] = True
        return data


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _check_field(name: Any) -> str:
    if not isinstance(name, str):
        raise ValueError("field must be a string: severity, source, summary or labels.<name>")
    if name in _PLAIN_FIELDS:
        return name
    label = name.removeprefix("labels.")
    if name.startswith("labels.") and 0 < len(label) <= MAX_LABEL_NAME:
        return name
    raise ValueError(
        f"field {name[:120]!r} is not one of severity, source, summary or labels.<name> "
        f"(a label name of 1 to {MAX_LABEL_NAME} characters)"
    )


def _check_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    if len(value) > MAX_VALUE:
        raise ValueError(f"{what} is longer than {MAX_VALUE} characters")
    return value


def parse_condition(raw: Any) -> Condition:
    """A condition from its data form; ValueError names what to change."""
    if not isinstance(raw, Mapping):
        raise ValueError("a condition is an object with field, op and (except for exists) value")
    unknown = sorted(set(raw) - {"field", "op", "value", "negate"})
    if unknown:
        raise ValueError(f"unknown condition key(s) {', '.join(unknown)}; use field, op, value, negate")
    field = _check_field(raw.get("field"))
    try:
        op = Op(str(raw.get("op")))
    except ValueError:
        raise ValueError(f"op must be one of {', '.join(o.value for o in Op)}") from None
    negate = raw.get("negate", False)
    if not isinstance(negate, bool):
        raise ValueError("negate must be true or false")
    value = raw.get("value")
    checked: str | tuple[str, ...] | None
    if op is Op.exists:
        if value is not None:
            raise ValueError("exists takes no value")
        checked = None
    elif op is Op.in_:
        if not isinstance(value, list | tuple) or not 0 < len(value) <= MAX_VALUES:
            raise ValueError(f"in takes a list of 1 to {MAX_VALUES} strings")
        checked = tuple(_check_text(v, "each value of in") for v in value)
    elif op is Op.regex:
        checked = _check_text(value, "the regex")
        if len(checked) > MAX_PATTERN:
            raise ValueError(f"the regex is longer than {MAX_PATTERN} characters")
        try:
            _compiled(checked)
        except re.error as exc:
            raise ValueError(f"the regex does not compile: {exc}") from None
    else:
        checked = _check_text(value, "the value")
    if field == "severity" and op in (Op.equals, Op.in_):
        given = (checked,) if isinstance(checked, str) else checked or ()
        wrong = sorted(set(given) - _SEVERITIES)
        if wrong:
            raise ValueError(f"severity is one of {', '.join(sorted(_SEVERITIES))}, not {', '.join(wrong)}")
    return Condition(field, op, checked, negate)


def parse_conditions(raw: Any) -> tuple[Condition, ...]:
    """Every condition of a rule or window, checked; ValueError names the first one wrong."""
    if not isinstance(raw, list | tuple):
        raise ValueError("conditions must be a list")
    if len(raw) > MAX_CONDITIONS:
        raise ValueError(f"at most {MAX_CONDITIONS} conditions")
    parsed = []
    for index, item in enumerate(raw):
        try:
            parsed.append(parse_condition(item))
        except ValueError as exc:
            raise ValueError(f"conditions[{index}]: {exc}") from None
    return tuple(parsed)


@dataclass(frozen=True, slots=True)
class Facts:
    """What rules may look at: an alert's fields and where it came from."""

    integration_id: int
    service_id: int  # the integration's service
    severity: str
    source: str
    summary: str
    labels: Mapping[str, str]


def value_of(facts: Facts, field: str) -> str | None:
    if field == "severity":
        return facts.severity
    if field == "source":
        return facts.source
    if field == "summary":
        return facts.summary
    return facts.labels.get(field.removeprefix("labels."))


def holds(condition: Condition, facts: Facts) -> bool:
    """Whether the condition is true of the alert."""
    value = value_of(facts, condition.field)
    op = condition.op
    if op is Op.exists:
        result = bool(value)
    elif value is None:
        result = False
    elif op is Op.equals:
        result = value == condition.value
    elif op is Op.in_:
        assert isinstance(condition.value, tuple)
        result = value in condition.value
    else:
        assert isinstance(condition.value, str)
        result = _compiled(condition.value).fullmatch(value[:MATCH_INPUT_MAX]) is not None
    return result != condition.negate


def all_hold(conditions: Sequence[Condition], facts: Facts) -> bool:
    return all(holds(c, facts) for c in conditions)


@dataclass(frozen=True, slots=True)
class Rule:
    """A routing rule as evaluated (see models.RoutingRule for the stored form)."""

    id: int
    conditions: tuple[Condition, ...] = ()
    action: RuleAction = RuleAction.route
    integration_id: int | None = None  # scope: only alerts from this integration
    service_id: int | None = None  # scope: only alerts from this service's integrations
    target_service_id: int | None = None
    type_key: str | None = None
    impact: int | None = None
    urgency: int | None = None

    def in_scope(self, facts: Facts) -> bool:
        if self.integration_id is not None and self.integration_id != facts.integration_id:
            return False
        return self.service_id is None or self.service_id == facts.service_id


def first_match(rules: Sequence[Rule], facts: Facts) -> Rule | None:
    """The first rule, in order, whose scope covers the alert and whose conditions all hold."""
    for rule in rules:
        if rule.in_scope(facts) and all_hold(rule.conditions, facts):
            return rule
    return None


@dataclass(frozen=True, slots=True)
class Route:
    """Where an alert goes: `service_id`, and the incident inputs a rule fixed (None: the service's)."""

    action: RuleAction
    service_id: int
    rule_id: int | None = None
    type_key: str | None = None
    impact: int | None = None
    urgency: int | None = None


def route(rules: Sequence[Rule], facts: Facts) -> Route:
    """The first matching rule's decision; no match routes to the integration's service with defaults."""
    rule = first_match(rules, facts)
    if rule is None:
        return Route(RuleAction.route, facts.service_id)
    return Route(
        rule.action,
        rule.target_service_id or facts.service_id,
        rule.id,
        rule.type_key,
        rule.impact,
        rule.urgency,
    )


def urgency_of(severity: str, table: Mapping[str, int] | None = None) -> int:
    """The urgency a severity maps to: the given table first, then DEFAULT_URGENCY; unknown: 3."""
    if table and severity in table:
        return table[severity]
    return DEFAULT_URGENCY.get(severity, 3)


def impact_of(tier: int | None, default_impact: int | None = None) -> int:
    """A service's default impact: its setting if any, else from its tier (unknown tier: 3)."""
    if default_impact is not None:
        return default_impact
    return TIER_IMPACT.get(tier or 3, 3)


def group_key(labels: Mapping[str, str], summary: str, group_by: Sequence[str] | None = None) -> str:
    """Which alerts of one service share an incident: the `group_by` labels if the service names some,
    else the alertname label (Alertmanager, Grafana), else PagerDuty's group and class, else the summary."""
    if group_by:
        key = "labels:" + "\x1f".join(f"{name}={labels.get(name, '')}" for name in group_by)
    elif labels.get("alertname"):
        key = "alertname:" + labels["alertname"]
    elif labels.get("group") or labels.get("class"):
        key = f"pd:{labels.get('group', '')}/{labels.get('class', '')}"
    else:
        key = "summary:" + summary
    if len(key) > GROUP_KEY_MAX:
        key = key[:40] + "…sha256:" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()
    return key


@dataclass(frozen=True, slots=True)
class Window:
    """A maintenance window as evaluated: a service (None: any) and label matchers (none: any)."""

    id: int
    name: str
    starts_at: datetime
    ends_at: datetime
    service_id: int | None = None
    matchers: tuple[Condition, ...] = ()

    def covers(self, service_id: int, facts: Facts, at: datetime) -> bool:
        if not self.starts_at <= at < self.ends_at:
            return False
        if self.service_id is not None and self.service_id != service_id:
            return False
        return all_hold(self.matchers, facts)


def covering(windows: Sequence[Window], service_id: int, facts: Facts, at: datetime) -> Window | None:
    """The first window that covers an alert routed to `service_id` at `at`, if any."""
    for window in windows:
        if window.covers(service_id, facts, at):
            return window
    return None
