"""Incident events: other domains react to incident changes inside the same unit of work.

Every change an incident service makes goes through `store.record()`, which queues an `IncidentEvent` named
by its action (`create`, `transition.acknowledged`, `transition.resolved`, `assign`, `priority`, ...). Just
before commit, `dispatch()` hands each queued event to the listeners that `tocsin.wiring` registered
(escalation starting or stopping, SLA clocks, alert grouping). Listeners may change more records, whose events
are dispatched in turn, so a cascade stays in one transaction; incidents never import those domains.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

_QUEUE = "tocsin_incident_events"
_MAX_ROUNDS = 20  # a cascade deeper than this is a listener bug, not work


@dataclass(frozen=True)
class IncidentEvent:
    incident_id: int
    action: str  # "create", "transition.<state>", "assign", "priority", "role.set", "major", "note", ...
    actor: str  # the actor's reference, as in the audit log
    at: datetime
    before: Any = None
    after: Any = None


Listener = Callable[[AsyncSession, IncidentEvent], Awaitable[None]]


class Listeners:
    """The listeners of one process, in registration order; `tocsin.wiring.install()` fills them once."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def add(self, listener: Listener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def __iter__(self) -> Iterator[Listener]:
        return iter(list(self._listeners))


LISTENERS = Listeners()


def queue(session: AsyncSession, event: IncidentEvent) -> None:
    session.info.setdefault(_QUEUE, []).append(event)


async def dispatch(session: AsyncSession) -> None:
    """Run the listeners for every queued event (and the events they cause); a before-commit hook."""
    for _ in range(_MAX_ROUNDS):
        events: list[IncidentEvent] = session.info.pop(_QUEUE, [])
        if not events:
            return
        for event in events:
            for listener in LISTENERS:
                await listener(session, event)
    raise RuntimeError(f"incident event cascade deeper than {_MAX_ROUNDS} rounds: a listener loops")
