"""Deciding, for each triggered alert of an intake batch, where it goes: routed, suppressed or dropped.

The inputs (the batch's integrations, the active routing rules, the maintenance windows) come from the
process's snapshot (read at most every few seconds), and each event is judged by the pure functions of
tocsin.alerts.routing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import snapshot
from tocsin.alerts.adapters.base import AlertEvent, clamp
from tocsin.alerts.maintenance import windows_until
from tocsin.alerts.models import Suppression
from tocsin.alerts.routing import Facts, Route, Rule, RuleAction, Window, covering, route
from tocsin.alerts.rules import active_rules
from tocsin.alerts.snapshot import Origin

_REASON_MAX = 300
# Timer kind (subject "unrouted") that routes alerts stored without routing, once routing works again.
REROUTE_TIMER = "alerts.reroute"


@dataclass(frozen=True, slots=True)
class Decision:
    """What becomes of a triggered alert: its route, and why it is suppressed (if it is)."""

    route: Route
    suppressed_by: Suppression | None = None
    reason: str | None = None

    @property
    def dropped(self) -> bool:
        return self.route.action is RuleAction.drop

    @property
    def routed(self) -> bool:
        return self.suppressed_by is None and self.route.action is RuleAction.route


@dataclass(frozen=True, slots=True)
class Triage:
    """The rules, windows and integrations one batch is judged by, at one moment."""

    at: datetime
    origins: dict[int, Origin]
    rules: Sequence[Rule]
    windows: Sequence[Window]

    def facts(self, integration_id: int, event: AlertEvent) -> Facts:
        return Facts(
            integration_id=integration_id,
            service_id=self.origins[integration_id].service_id,
            severity=event.severity.value,
            source=event.source,
            summary=event.summary,
            labels=event.labels,
        )

    def decide(self, integration_id: int, event: AlertEvent) -> Decision:
        facts = self.facts(integration_id, event)
        chosen = route(self.rules, facts)
        if chosen.action is RuleAction.suppress:
            return Decision(chosen, Suppression.rule, f"routing rule #{chosen.rule_id}")
        if chosen.action is RuleAction.route:
            window = covering(self.windows, chosen.service_id, facts, self.at)
            if window is not None:
                reason = clamp(f"maintenance window #{window.id}: {window.name}", _REASON_MAX)
                return Decision(chosen, Suppression.maintenance, reason)
        return Decision(chosen)


async def load(
    session: AsyncSession, integration_ids: Collection[int], at: datetime, *, rules: bool = True
) -> Triage:
    """Read what the batch's alerts are judged by (without `rules`: only the integrations)."""
    return Triage(
        at=at,
        origins=await snapshot.origins(session, integration_ids),
        rules=await snapshot.rules(session, active_rules) if rules else (),
        windows=await snapshot.windows(session, at, windows_until) if rules else (),
    )
