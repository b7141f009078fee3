"""Priority derivation from impact x urgency, and the refusal of incomplete matrices."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tocsin.errors import Invalid
from tocsin.incidents import matrix

PAIRS = [(i, u) for i in matrix.LEVELS for u in matrix.LEVELS]
total_matrices = st.fixed_dictionaries({pair: st.sampled_from(matrix.PRIORITIES) for pair in PAIRS})


def cells(m: dict[tuple[int, int], int]) -> list[tuple[int, int, int]]:
    return [(i, u, p) for (i, u), p in m.items()]


def test_the_default_is_servicenows() -> None:
    assert matrix.derive(matrix.DEFAULT, 1, 1) == 1
    assert matrix.derive(matrix.DEFAULT, 1, 2) == matrix.derive(matrix.DEFAULT, 2, 1) == 2
    assert matrix.derive(matrix.DEFAULT, 2, 2) == 3
    assert matrix.derive(matrix.DEFAULT, 3, 3) == matrix.derive(matrix.DEFAULT, 2, 3) == 4
    assert matrix.label(1) == "P1"


@given(total_matrices)
def test_every_total_matrix_gives_a_priority_for_every_pair(m: dict[tuple[int, int], int]) -> None:
    accepted = matrix.validate(cells(m))
    for impact, urgency in PAIRS:
        assert matrix.derive(accepted, impact, urgency) == m[(impact, urgency)]


@given(total_matrices, st.sets(st.sampled_from(PAIRS), min_size=1))
def test_a_matrix_missing_any_pair_is_refused_naming_it(
    m: dict[tuple[int, int], int], dropped: set[tuple[int, int]]
) -> None:
    with pytest.raises(Invalid) as refused:
        matrix.validate([c for c in cells(m) if (c[0], c[1]) not in dropped])
    for impact, urgency in dropped:
        assert f"{impact}x{urgency}" in refused.value.detail


@given(total_matrices, st.sampled_from(PAIRS), st.integers().filter(lambda p: p not in matrix.PRIORITIES))
def test_a_priority_outside_one_to_four_is_refused(
    m: dict[tuple[int, int], int], pair: tuple[int, int], bad: int
) -> None:
    with pytest.raises(Invalid, match=r"outside 1\.\.4"):
        matrix.validate(cells(m | {pair: bad}))


def test_duplicate_and_out_of_range_cells_are_refused() -> None:
    with pytest.raises(Invalid, match="given twice"):
        matrix.validate([*cells(matrix.DEFAULT), (1, 1, 2)])
    with pytest.raises(Invalid, match=r"outside 1\.\.3"):
        matrix.validate([*cells(matrix.DEFAULT), (4, 1, 2)])


def test_deriving_outside_the_levels_or_from_a_hole_is_refused() -> None:
    with pytest.raises(Invalid, match="impact and urgency"):
        matrix.derive(matrix.DEFAULT, 0, 1)
    with pytest.raises(Invalid, match="no cell"):
        matrix.derive({(1, 1): 1}, 2, 2)
