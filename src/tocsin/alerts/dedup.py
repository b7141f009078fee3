"""Ordering a batch of alert events into steps that bulk statements can apply without changing the outcome.

Within one transaction the events of many deliveries must have the effect they would have had one by one.
Events for different alerts commute; events for the same (integration, key) do not. So each key's events
are kept in order, runs of the same action collapse into one step (ten triggers are one trigger counted ten
times), and round k holds every key's k-th step: a round touches each key at most once, which is what one
INSERT ... ON CONFLICT or one UPDATE over many keys needs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tocsin.alerts.adapters.base import Action, AlertEvent

Key = tuple[int, str]  # (integration id, dedup key)


@dataclass(frozen=True, slots=True)
class Step:
    """One action on one key: `event` is the last of a run of `times` identical actions, `first` the first."""

    integration_id: int
    action: Action
    event: AlertEvent
    first: AlertEvent
    times: int

    @property
    def key(self) -> Key:
        return (self.integration_id, self.event.dedup_key)


def plan(events: Iterable[tuple[int, AlertEvent]]) -> list[list[Step]]:
    """The rounds to apply, in order; each round has at most one step per key."""
    runs: dict[Key, list[list[AlertEvent]]] = {}
    for integration_id, event in events:
        steps = runs.setdefault((integration_id, event.dedup_key), [])
        if steps and steps[-1][-1].action == event.action:
            steps[-1].append(event)
        else:
            steps.append([event])
    rounds: list[list[Step]] = []
    for (integration_id, _), steps in runs.items():
        for index, run in enumerate(steps):
            if index == len(rounds):
                rounds.append([])
            rounds[index].append(Step(integration_id, run[-1].action, run[-1], run[0], len(run)))
    return rounds
