"""Batching alert events into rounds never changes what applying them one by one would do."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from tocsin.alerts.adapters.base import Action, AlertEvent
from tocsin.alerts.dedup import Step, plan


@dataclass
class Row:
    key: tuple[int, str]
    status: str
    count: int
    summary: str


def apply_one(rows: list[Row], key: tuple[int, str], action: Action, summary: str, times: int = 1) -> None:
    """The documented semantics, one event (or one collapsed run) at a time."""
    open_row = next((r for r in rows if r.key == key and r.status != "resolved"), None)
    if action is Action.trigger:
        if open_row is None:
            rows.append(Row(key, "triggered", times, summary))
        else:
            open_row.count += times
            open_row.summary = summary
    elif open_row is not None:
        open_row.status = "resolved" if action is Action.resolve else "acknowledged"


events = st.lists(
    st.tuples(
        st.integers(1, 2), st.sampled_from("abc"), st.sampled_from(list(Action)), st.text("xyz", max_size=2)
    ),
    max_size=30,
)


@given(events)
def test_rounds_have_the_effect_of_sequential_application(batch: list[tuple[int, str, Action, str]]) -> None:
    sequential: list[Row] = []
    for integration, key, action, summary in batch:
        apply_one(sequential, (integration, key), action, summary)

    rounds = plan([(i, AlertEvent(dedup_key=k, action=a, summary=s)) for i, k, a, s in batch])
    batched: list[Row] = []
    for steps in rounds:
        assert len({s.key for s in steps}) == len(steps)  # one step per key per round
        for step in steps:
            apply_one(batched, step.key, step.action, step.event.summary, step.times)

    def state(rows: list[Row]) -> list[tuple[tuple[int, str], str, int, str]]:
        return sorted((r.key, r.status, r.count, r.summary) for r in rows)

    assert state(batched) == state(sequential)


def test_a_run_of_triggers_is_one_step_counted_by_its_length() -> None:
    first = AlertEvent(dedup_key="k", action=Action.trigger, summary="one")
    last = AlertEvent(dedup_key="k", action=Action.trigger, summary="three")
    middle = AlertEvent(dedup_key="k", action=Action.trigger, summary="two")
    [[step]] = plan([(1, first), (1, middle), (1, last)])
    assert step == Step(1, Action.trigger, last, first, 3)
