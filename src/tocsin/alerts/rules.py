"""Routing rules as records: create, change, reorder and remove them, and load them for evaluation.

Rules are kept in `position` order (1, 2, 3...); inserting or moving one renumbers the others, so the order
people see is the order intake applies. Reading needs Can.read_all, changing needs Can.manage_config and is
audited. The matching itself is pure: tocsin.alerts.routing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import snapshot
from tocsin.alerts.models import RoutingRule
from tocsin.alerts.refs import check_integration, check_service, check_type
from tocsin.alerts.routing import Rule, RuleAction, parse_conditions
from tocsin.audit import service as audit
from tocsin.auth.permissions import Actor, Can
from tocsin.auth.service import require
from tocsin.db import utcnow
from tocsin.errors import Invalid, NotFound

log = structlog.get_logger(__name__)

MAX_RULES = 1000
_TARGETS = ("target_service_id", "type_key", "impact", "urgency")
_FIELDS = (
    "name",
    "integration_id",
    "service_id",
    "conditions",
    "action",
    *_TARGETS,
    "active",
)


def view(rule: RoutingRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in ("position", *_FIELDS)}


async def _ordered(session: AsyncSession) -> list[RoutingRule]:
    return list(await session.scalars(select(RoutingRule).order_by(RoutingRule.position, RoutingRule.id)))


def _renumber(rules: Sequence[RoutingRule]) -> None:
    for index, rule in enumerate(rules, start=1):
        if rule.position != index:
            rule.position = index


async def _validate(session: AsyncSession, values: dict[str, Any]) -> None:
    """Check a rule's full set of values; Invalid names what to change."""
    if values.get("integration_id") is not None and values.get("service_id") is not None:
        raise Invalid("scope a rule to an integration or to a service, not both (neither: every alert)")
    try:
        values["conditions"] = [c.as_data() for c in parse_conditions(values.get("conditions") or [])]
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    try:
        action = RuleAction(values.get("action", RuleAction.route))
    except ValueError:
        raise Invalid(f"action must be one of {', '.join(a.value for a in RuleAction)}") from None
    values["action"] = action.value
    if action is not RuleAction.route:
        given = [name for name in _TARGETS if values.get(name) is not None]
        if given:
            raise Invalid(f"a {action} rule opens no incident; remove {', '.join(given)}")
    for name in ("impact", "urgency"):
        if values.get(name) is not None and not 1 <= values[name] <= 3:
            raise Invalid(f"{name} is 1 (high) to 3 (low), or null for the default")
    if values.get("integration_id") is not None:
        await check_integration(session, values["integration_id"])
    if values.get("service_id") is not None:
        await check_service(session, values["service_id"])
    if values.get("target_service_id") is not None:
        await check_service(session, values["target_service_id"], "target_service_id")
    if values.get("type_key") is not None:
        await check_type(session, values["type_key"])


def _record(session: AsyncSession, actor: Actor, action: str, rule_id: int, **change: Any) -> None:
    snapshot.changed()
    audit.record(
        session=session,
        actor=actor.ref,
        action=f"routing_rule.{action}",
        entity_type="routing_rule",
        entity_id=rule_id,
        **change,
    )


async def list_rules(*, session: AsyncSession, actor: Actor) -> list[RoutingRule]:
    """Every rule, in evaluation order."""
    require(actor, Can.read_all)
    return await _ordered(session)


async def get_rule(*, session: AsyncSession, actor: Actor, rule_id: int) -> RoutingRule:
    require(actor, Can.read_all)
    rule = await session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound(f"no routing rule with id {rule_id}")
    return rule


async def create_rule(
    *,
    session: AsyncSession,
    actor: Actor,
    name: str,
    conditions: list[dict[str, Any]] | None = None,
    action: RuleAction = RuleAction.route,
    integration_id: int | None = None,
    service_id: int | None = None,
    target_service_id: int | None = None,
    type_key: str | None = None,
    impact: int | None = None,
    urgency: int | None = None,
    active: bool = True,
    position: int | None = None,
    now: datetime | None = None,
) -> RoutingRule:
    """Add a rule at `position` (1 is tried first; default: last)."""
    require(actor, Can.manage_config)
    values: dict[str, Any] = {
        "name": name,
        "conditions": conditions or [],
        "action": action,
        "integration_id": integration_id,
        "service_id": service_id,
        "target_service_id": target_service_id,
        "type_key": type_key,
        "impact": impact,
        "urgency": urgency,
        "active": active,
    }
    await _validate(session, values)
    rules = await _ordered(session)
    if len(rules) >= MAX_RULES:
        raise Invalid(f"there are already {MAX_RULES} routing rules; combine some (conditions take lists)")
    now = now or utcnow()
    rule = RoutingRule(**values, position=len(rules) + 1, created_at=now, updated_at=now)
    session.add(rule)
    at = len(rules) if position is None else max(0, min(position - 1, len(rules)))
    rules.insert(at, rule)
    _renumber(rules)
    await session.flush()
    _record(session, actor, "create", rule.id, after=view(rule))
    return rule


async def update_rule(
    *, session: AsyncSession, actor: Actor, rule_id: int, changes: dict[str, Any], now: datetime | None = None
) -> RoutingRule:
    """Change the given fields (`position` moves the rule); the result is validated as a whole."""
    require(actor, Can.manage_config)
    rule = await get_rule(session=session, actor=actor, rule_id=rule_id)
    before = view(rule)
    unknown = sorted(set(changes) - {*_FIELDS, "position"})
    if unknown:
        raise Invalid(f"cannot change {', '.join(unknown)}")
    values = {name: changes.get(name, getattr(rule, name)) for name in _FIELDS}
    await _validate(session, values)
    for name, value in values.items():
        setattr(rule, name, value)
    if changes.get("position") is not None:
        rules = [r for r in await _ordered(session) if r.id != rule.id]
        rules.insert(max(0, min(int(changes["position"]) - 1, len(rules))), rule)
        _renumber(rules)
    rule.updated_at = now or utcnow()
    await session.flush()
    _record(session, actor, "update", rule.id, before=before, after=view(rule))
    return rule


async def delete_rule(*, session: AsyncSession, actor: Actor, rule_id: int) -> None:
    require(actor, Can.manage_config)
    rule = await get_rule(session=session, actor=actor, rule_id=rule_id)
    _record(session, actor, "delete", rule.id, before=view(rule))
    await session.delete(rule)
    await session.flush()
    _renumber(await _ordered(session))


async def reorder_rules(*, session: AsyncSession, actor: Actor, ids: Sequence[int]) -> list[RoutingRule]:
    """Put the rules in the given order; `ids` must name every rule exactly once."""
    require(actor, Can.manage_config)
    rules = await _ordered(session)
    by_id = {r.id: r for r in rules}
    if len(ids) != len(set(ids)) or set(ids) != set(by_id):
        missing = sorted(set(by_id) - set(ids))
        unknown = sorted(set(ids) - set(by_id))
        raise Invalid(
            "ids must list every routing rule exactly once"
            + (f"; missing: {missing}" if missing else "")
            + (f"; not rules: {unknown}" if unknown else "")
            + ("; some appear twice" if len(ids) != len(set(ids)) else "")
        )
    before = [r.id for r in rules]
    ordered = [by_id[i] for i in ids]
    _renumber(ordered)
    snapshot.changed()
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="routing_rule.reorder",
        entity_type="routing_rule",
        entity_id="*",
        before={"order": before},
        after={"order": list(ids)},
    )
    return ordered


def as_rule(row: RoutingRule) -> Rule:
    """The evaluated form of a stored rule (its conditions were validated when it was saved)."""
    return Rule(
        id=row.id,
        conditions=parse_conditions(row.conditions),
        action=RuleAction(row.action),
        integration_id=row.integration_id,
        service_id=row.service_id,
        target_service_id=row.target_service_id,
        type_key=row.type_key,
        impact=row.impact,
        urgency=row.urgency,
    )


async def active_rules(session: AsyncSession) -> list[Rule]:
    """The active rules in evaluation order (a rule stored with conditions no longer valid is skipped)."""
    rules: list[Rule] = []
    stmt = (
        select(RoutingRule).where(RoutingRule.active.is_(True)).order_by(RoutingRule.position, RoutingRule.id)
    )
    for row in await session.scalars(stmt):
        try:
            rules.append(as_rule(row))
        except ValueError as exc:
            log.error("routing rule skipped: its conditions are invalid", rule_id=row.id, error=str(exc))
    return rules
