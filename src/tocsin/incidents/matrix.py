"""Priority is derived, never typed: impact x urgency -> priority through an editable lookup table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tocsin.errors import Invalid

LEVELS = (1, 2, 3)  # impact and urgency: 1 high, 2 medium, 3 low
PRIORITIES = (1, 2, 3, 4)

Matrix = Mapping[tuple[int, int], int]

# ServiceNow's default (reference/domain.md): rows are impact, columns urgency.
# fmt: off
DEFAULT: dict[tuple[int, int], int] = {
    (1, 1): 1, (1, 2): 2, (1, 3): 3,
    (2, 1): 2, (2, 2): 3, (2, 3): 4,
    (3, 1): 3, (3, 2): 4, (3, 3): 4,
}
# fmt: on


def label(priority: int) -> str:
    """How people name a priority: P1..P4."""
    return f"P{priority}"


def validate(cells: Iterable[tuple[int, int, int]]) -> dict[tuple[int, int], int]:
    """A matrix from (impact, urgency, priority) triples, refused unless it is total, unique and in range."""
    matrix: dict[tuple[int, int], int] = {}
    problems: list[str] = []
    for impact, urgency, priority in cells:
        if impact not in LEVELS or urgency not in LEVELS:
            problems.append(f"impact {impact} x urgency {urgency} is outside 1..3")
            continue
        if priority not in PRIORITIES:
            problems.append(f"impact {impact} x urgency {urgency}: priority {priority} is outside 1..4")
            continue
        if (impact, urgency) in matrix:
            problems.append(f"impact {impact} x urgency {urgency} is given twice")
            continue
        matrix[(impact, urgency)] = priority
    missing = [f"{i}x{u}" for i in LEVELS for u in LEVELS if (i, u) not in matrix]
    if missing:
        problems.append("every impact x urgency pair needs a priority; missing " + ", ".join(missing))
    if problems:
        raise Invalid("the priority matrix is refused: " + "; ".join(problems), problems=problems)
    return matrix


def derive(matrix: Matrix, impact: int, urgency: int) -> int:
    """The priority for this impact and urgency; refuses levels outside 1..3."""
    if impact not in LEVELS or urgency not in LEVELS:
        raise Invalid(f"impact and urgency are 1 (high), 2 (medium) or 3 (low); got {impact} and {urgency}")
    try:
        return matrix[(impact, urgency)]
    except KeyError:
        raise Invalid(
            f"the priority matrix has no cell for impact {impact} x urgency {urgency}; "
            "an admin must complete it (PUT /api/v1/priority-matrix)"
        ) from None
