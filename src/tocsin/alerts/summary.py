"""Timeline wording for what one batch of alert changes did to one incident (pure).

A webhook of 500 alerts, or a commit carrying many webhooks, becomes one entry per incident that counts what
happened ("500 alerts triggered: ProbeFailure on web-1, ProbeFailure on web-2, … and 498 more"), never an
entry per alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

MAX_NAMED = 3  # alert summaries quoted in the entry's text
MAX_IDS = 100  # alert ids kept per kind in the entry's data


class Did(StrEnum):
    """What an alert did within a batch, as the incident's timeline tells it."""

    triggered = "triggered"  # opened (a new alert)
    repeated = "repeated"  # an open alert was sent again
    released = "released"  # held by a maintenance window that is over, and still open
    acknowledged = "acknowledged"
    resolved = "resolved"
    flapping = "flapping"  # a resolve held back: the alert opens and resolves too often


_VERB = {
    Did.triggered: "triggered",
    Did.repeated: "repeated",
    Did.released: "released from maintenance",
    Did.acknowledged: "acknowledged",
    Did.resolved: "resolved",
    Did.flapping: "flapping (resolve held until it stays quiet)",
}


@dataclass(slots=True)
class Tally:
    """The changes of one batch to one incident's alerts, by kind, in arrival order."""

    alerts: dict[Did, dict[int, str]] = field(default_factory=dict)  # kind -> alert id -> summary
    events: dict[Did, int] = field(default_factory=dict)  # kind -> events (a repeat may count several)
    seen: dict[int, int] = field(default_factory=dict)  # alert id -> times seen in all, where known

    def add(self, did: Did, alert_id: int, summary: str, times: int = 1, seen: int | None = None) -> None:
        self.alerts.setdefault(did, {})[alert_id] = summary
        self.events[did] = self.events.get(did, 0) + times
        if seen is not None:
            self.seen[alert_id] = max(seen, self.seen.get(alert_id, 0))

    def only(self, did: Did) -> bool:
        return set(self.alerts) == {did}

    def text(self) -> str:
        """One line: each kind with its count, then the first few summaries."""
        parts = []
        for did in Did:
            alerts = self.alerts.get(did)
            if not alerts:
                continue
            if len(alerts) == 1:
                [(alert_id, name)] = alerts.items()
                seen = self.seen.get(alert_id)
                again = f" (seen {seen} times)" if did is Did.repeated and seen else ""
                parts.append(f"Alert {_quoted(name)} {_VERB[did]}{again}")
            else:
                parts.append(f"{len(alerts)} alerts {_VERB[did]}{_named(alerts.values())}")
        return "; ".join(parts)

    def data(self) -> dict[str, Any]:
        return {
            "alerts": {did.value: list(ids)[:MAX_IDS] for did, ids in self.alerts.items()},
            "counts": {did.value: len(ids) for did, ids in self.alerts.items()},
            "events": {did.value: n for did, n in self.events.items()},
        }


def _quoted(summary: str) -> str:
    text = summary.strip() or "(no summary)"
    return f'"{text[:117]}…"' if len(text) > 120 else f'"{text}"'


def _named(summaries: Iterable[str]) -> str:
    names = list(summaries)
    shown = ", ".join(_quoted(n) for n in names[:MAX_NAMED])
    more = len(names) - MAX_NAMED
    return f": {shown}" + (f" and {more} more" if more > 0 else "")
