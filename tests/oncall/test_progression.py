"""Where an escalation goes next, how urgent its pages are, how its steps read (pure functions)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tocsin.oncall import progression
from tocsin.oncall.models import UrgencyMode
from tocsin.oncall.progression import START, Position

steps_st = st.integers(min_value=1, max_value=20)
repeats_st = st.integers(min_value=0, max_value=9)


@given(steps_st, repeats_st)
def test_a_run_fires_every_step_of_every_round_in_order_then_ends(steps: int, repeat_count: int) -> None:
    fired = []
    position = START
    while not progression.is_end(position, repeat_count=repeat_count):
        fired.append(position)
        position = progression.after(position, steps=steps, repeat_count=repeat_count)
    assert fired == [Position(r, s) for r in range(repeat_count + 1) for s in range(steps)]
    assert position == progression.end(repeat_count=repeat_count)


@given(st.integers(0, 12), st.integers(0, 25), steps_st, repeats_st)
def test_a_stored_position_survives_the_policy_being_edited(
    round_: int, step: int, steps: int, repeat_count: int
) -> None:
    position = progression.normalize(Position(round_, step), steps=steps, repeat_count=repeat_count)
    assert progression.normalize(position, steps=steps, repeat_count=repeat_count) == position
    assert progression.is_end(position, repeat_count=repeat_count) or position.step < steps
    assert position >= Position(round_, min(step, steps)) or progression.is_end(
        position, repeat_count=repeat_count
    ), "editing a policy never sends a run back"


def test_a_policy_edited_to_fewer_steps_moves_on_to_the_next_round() -> None:
    assert progression.normalize(Position(0, 3), steps=2, repeat_count=1) == Position(1, 0)
    assert progression.normalize(Position(1, 3), steps=2, repeat_count=1) == Position(2, 0)
    assert progression.normalize(Position(5, 0), steps=2, repeat_count=1) == Position(2, 0)


def test_urgency_follows_priority_unless_the_setting_fixes_it() -> None:
    assert [progression.urgency(UrgencyMode.by_priority, p) for p in (1, 2, 3, 4)] == [
        "high",
        "high",
        "low",
        "low",
    ]
    assert progression.urgency(UrgencyMode.high, 4) == "high"
    assert progression.urgency(UrgencyMode.low, 1) == "low"


def test_steps_and_people_read_as_sentences() -> None:
    label = progression.step_label(Position(1, 0), policy="'DB'", repeat_count=2)
    assert label == "Step 1 of 'DB' (round 2 of 3)"
    assert progression.step_label(Position(0, 1), policy="'DB'", repeat_count=0) == "Step 2 of 'DB'"
    assert progression.people([]) == ""
    assert progression.people(["Raj"]) == "Raj"
    assert progression.people(["Raj", "Mia", "Ola"]) == "Raj, Mia and Ola"
