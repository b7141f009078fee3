"""Routing-rule matching, grouping keys and maintenance coverage: examples and properties (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tocsin.alerts.routing import (
    MAX_PATTERN,
    Condition,
    Facts,
    Op,
    Route,
    Rule,
    RuleAction,
    Window,
    covering,
    first_match,
    group_key,
    holds,
    impact_of,
    parse_condition,
    parse_conditions,
    route,
    urgency_of,
    value_of,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
texts = st.text(max_size=30)
labels = st.dictionaries(st.sampled_from(["alertname", "team", "env", "instance"]), texts, max_size=4)
severities = st.sampled_from(["critical", "error", "warning", "info"])
facts_strategy = st.builds(
    Facts,
    integration_id=st.integers(1, 3),
    service_id=st.integers(1, 3),
    severity=severities,
    source=texts,
    summary=texts,
    labels=labels,
)
fields = st.sampled_from(["severity", "source", "summary", "labels.alertname", "labels.team", "labels.env"])


def facts(**overrides: object) -> Facts:
    values: dict[str, object] = {
        "integration_id": 1,
        "service_id": 10,
        "severity": "critical",
        "source": "db-1",
        "summary": "Disk full on db-1",
        "labels": {"alertname": "DiskFull", "team": "db"},
    }
    return Facts(**{**values, **overrides})  # type: ignore[arg-type]


def test_each_operator_on_labels_and_fields() -> None:
    f = facts()
    assert holds(parse_condition({"field": "labels.team", "op": "equals", "value": "db"}), f)
    assert not holds(parse_condition({"field": "labels.team", "op": "equals", "value": "DB"}), f)
    assert holds(parse_condition({"field": "severity", "op": "in", "value": ["critical", "error"]}), f)
    assert holds(parse_condition({"field": "summary", "op": "regex", "value": "Disk .* on db-\\d+"}), f)
    assert not holds(parse_condition({"field": "summary", "op": "regex", "value": "Disk"}), f), "anchored"
    assert holds(parse_condition({"field": "labels.team", "op": "exists"}), f)
    assert not holds(parse_condition({"field": "labels.env", "op": "exists"}), f)
    assert holds(parse_condition({"field": "labels.env", "op": "exists", "negate": True}), f)
    assert not holds(parse_condition({"field": "labels.env", "op": "equals", "value": ""}), f)


@pytest.mark.parametrize(
    ("condition", "says"),
    [
        ({"field": "host", "op": "equals", "value": "x"}, "labels.<name>"),
        ({"field": "labels.", "op": "exists"}, "labels.<name>"),
        ({"field": "summary", "op": "like", "value": "x"}, "op must be one of"),
        ({"field": "summary", "op": "regex", "value": "("}, "does not compile"),
        ({"field": "summary", "op": "regex", "value": "a" * (MAX_PATTERN + 1)}, "longer than"),
        ({"field": "summary", "op": "in", "value": []}, "list of 1 to"),
        ({"field": "summary", "op": "in", "value": "x"}, "list of 1 to"),
        ({"field": "summary", "op": "exists", "value": "x"}, "takes no value"),
        ({"field": "summary", "op": "equals", "value": 3}, "must be a string"),
        ({"field": "severity", "op": "equals", "value": "crit"}, "severity is one of"),
        ({"field": "summary", "op": "equals", "value": "x", "extra": 1}, "unknown condition key"),
        ({"field": "summary", "op": "equals", "value": "x", "negate": "yes"}, "negate must be"),
    ],
)
def test_invalid_conditions_are_refused_with_what_to_change(condition: dict[str, object], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_condition(condition)


def test_the_error_names_which_condition_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"conditions\[1\]"):
        parse_conditions([{"field": "summary", "op": "exists"}, {"field": "nope", "op": "exists"}])


@given(st.lists(st.builds(Condition, fields, st.just(Op.exists), st.none(), st.booleans()), max_size=5))
def test_conditions_survive_a_round_trip_through_their_data_form(conditions: list[Condition]) -> None:
    assert parse_conditions([c.as_data() for c in conditions]) == tuple(conditions)


@given(facts_strategy, fields)
def test_equals_holds_of_the_value_itself_and_negate_inverts_it(f: Facts, field: str) -> None:
    value = value_of(f, field)
    if value is not None:
        assert holds(Condition(field, Op.equals, value), f)
        assert holds(Condition(field, Op.in_, (value,)), f)
        assert not holds(Condition(field, Op.equals, value, negate=True), f)


@given(facts_strategy, fields, st.sampled_from(list(Op)), texts)
def test_negate_is_exactly_the_opposite(f: Facts, field: str, op: Op, value: str) -> None:
    arg: str | tuple[str, ...] | None = None if op is Op.exists else (value,) if op is Op.in_ else value
    if op is Op.regex:
        arg = ".*"
    assert holds(Condition(field, op, arg), f) != holds(Condition(field, op, arg, negate=True), f)


scoped_rules = st.builds(
    Rule,
    st.integers(1, 50),
    integration_id=st.none() | st.integers(1, 3),
    service_id=st.none() | st.integers(1, 3),
)


@given(facts_strategy, st.lists(scoped_rules, max_size=6))
def test_the_first_rule_in_order_whose_scope_covers_the_alert_wins(f: Facts, rules: list[Rule]) -> None:
    chosen = first_match(rules, f)
    covering_rules = [r for r in rules if r.in_scope(f)]
    assert chosen == (covering_rules[0] if covering_rules else None)


def test_scopes_limit_a_rule_to_an_integration_or_a_service() -> None:
    f = facts(integration_id=1, service_id=10)
    assert not Rule(1, integration_id=2).in_scope(f)
    assert Rule(1, integration_id=1).in_scope(f)
    assert not Rule(1, service_id=11).in_scope(f)
    assert Rule(1, service_id=10).in_scope(f)


def test_no_match_routes_to_the_integrations_service_with_defaults() -> None:
    only_web = Rule(7, (Condition("labels.team", Op.equals, "web"),), target_service_id=99, urgency=1)
    assert route([only_web], facts()) == Route(RuleAction.route, 10)
    db = Rule(
        8, (Condition("labels.team", Op.equals, "db"),), target_service_id=42, type_key="devops", impact=1
    )
    assert route([only_web, db], facts()) == Route(RuleAction.route, 42, 8, "devops", 1, None)
    dropper = Rule(9, (), RuleAction.drop)
    assert route([dropper, db], facts()).action is RuleAction.drop


def test_severity_maps_to_urgency_by_default_and_by_the_services_table() -> None:
    assert [urgency_of(s) for s in ("critical", "error", "warning", "info")] == [1, 2, 3, 3]
    assert urgency_of("warning", {"warning": 2}) == 2
    assert urgency_of("critical", {"warning": 2}) == 1
    assert [impact_of(t) for t in (1, 2, 3, 4, None)] == [1, 2, 3, 3, 3]
    assert impact_of(1, 3) == 3


def test_grouping_keys_prefer_group_by_then_alertname_then_pagerduty_then_summary() -> None:
    assert group_key({"alertname": "DiskFull", "instance": "a"}, "x") == "alertname:DiskFull"
    assert group_key({"group": "prod", "class": "deploy"}, "x") == "pd:prod/deploy"
    assert group_key({}, "Load high") == "summary:Load high"
    assert group_key({"alertname": "A", "team": "db"}, "x", ["team"]) == "labels:team=db"
    assert len(group_key({}, "s" * 5000)) <= 255


@given(labels, texts)
def test_grouping_keys_are_stable_and_fit_the_column(found: dict[str, str], summary: str) -> None:
    assert group_key(found, summary) == group_key(dict(found), summary)
    assert len(group_key(found, summary * 50)) <= 255


def test_a_window_covers_its_service_and_matchers_while_it_lasts() -> None:
    db_only = Window(1, "db upgrade", T0, T0 + timedelta(hours=1), service_id=10)
    by_label = Window(
        2, "web deploy", T0, T0 + timedelta(hours=1), matchers=(Condition("labels.team", Op.equals, "web"),)
    )
    inside = T0 + timedelta(minutes=5)
    assert covering([db_only, by_label], 10, facts(), inside) == db_only
    assert covering([db_only, by_label], 11, facts(), inside) is None
    assert covering([db_only, by_label], 11, facts(labels={"team": "web"}), inside) == by_label
    assert covering([db_only], 10, facts(), T0 + timedelta(hours=1)) is None, "the end is exclusive"
    assert covering([db_only], 10, facts(), T0 - timedelta(seconds=1)) is None


def test_a_regex_looks_at_a_bounded_prefix_of_a_huge_value() -> None:
    cond = parse_condition({"field": "summary", "op": "regex", "value": "a+"})
    assert holds(cond, facts(summary="a" * 1024))
    assert holds(cond, facts(summary="a" * 1024 + "b")), "only the first 1024 characters are matched"
    assert holds(cond, facts(summary="a" * 100_000))
