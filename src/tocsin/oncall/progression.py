"""Where an escalation goes next, how urgent its pages are, and how its steps read. Pure.

A run walks a policy's steps in order, round after round: round 0 is the first pass and `repeat_count` more
rounds follow. Positions are ordered (round, step) pairs; the position after the last step of the last round
is the end, reached only once that step's delay has passed unanswered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tocsin.oncall.models import UrgencyMode


@dataclass(frozen=True, order=True)
class Position:
    round: int
    step: int


START = Position(0, 0)


def is_end(position: Position, *, repeat_count: int) -> bool:
    """Whether every step of every round has been fired."""
    return position.round > repeat_count


def end(*, repeat_count: int) -> Position:
    return Position(repeat_count + 1, 0)


def normalize(position: Position, *, steps: int, repeat_count: int) -> Position:
    """The stored position for a policy that may have been edited meanwhile: a step past the last one starts
    the next round (or is the end), and fewer rounds than reached make it the end."""
    if steps <= 0:
        return end(repeat_count=repeat_count)
    if position.step >= steps:
        position = Position(position.round + 1, 0)
    if is_end(position, repeat_count=repeat_count):
        return end(repeat_count=repeat_count)
    return position


def after(position: Position, *, steps: int, repeat_count: int) -> Position:
    """The position that follows firing `position`: the next step, the next round's first, or the end."""
    return normalize(Position(position.round, position.step + 1), steps=steps, repeat_count=repeat_count)


def urgency(mode: UrgencyMode, priority: int) -> str:
    """'high' or 'low': by priority, P1 and P2 wake people up and P3 and P4 wait for the day."""
    if mode == UrgencyMode.by_priority:
        return "high" if priority <= 2 else "low"
    return str(mode)


def step_label(position: Position, *, policy: str, repeat_count: int) -> str:
    """ "Step 2 of 'Platform escalation'", with "(round 2 of 3)" once a policy repeats."""
    label = f"Step {position.step + 1} of {policy}"
    if repeat_count > 0:
        label += f" (round {position.round + 1} of {repeat_count + 1})"
    return label


def people(names: Sequence[str]) -> str:
    """ "Raj", "Raj and Mia", "Raj, Mia and Ola"."""
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
