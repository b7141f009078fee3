"""Reachability, shortest paths and cycle refusal in the pure dependency-graph helpers."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from tocsin.catalog.graph import cycle_if_added, reachable, reversed_edges, shortest_path

Edges = list[tuple[int, int]]
nodes = st.integers(min_value=0, max_value=9)
edge_lists = st.lists(st.tuples(nodes, nodes), max_size=30)


def naive_closure(edges: Edges, start: int) -> set[int]:
    """Nodes reachable in one or more steps (the start itself only if it lies on a cycle)."""
    reached: set[int] = set()
    frontier = {start}
    while frontier:
        frontier = {b for a, b in edges if a in frontier} - reached
        reached |= frontier
    return reached


def is_chain(edges: Edges, path: list[int]) -> bool:
    return all((a, b) in set(edges) for a, b in itertools.pairwise(path))


def acyclic(edges: Edges) -> bool:
    return all(start not in naive_closure(edges, start) for start in {a for a, _ in edges})


def test_reachable_walks_the_chain_with_distances() -> None:
    edges = [("web", "api"), ("api", "db"), ("web", "db"), ("db", "disk")]
    assert reachable(edges, "web") == {"api": 1, "db": 1, "disk": 2}
    assert reachable(reversed_edges(edges), "disk") == {"db": 1, "api": 2, "web": 2}
    assert reachable(edges, "disk") == {}


def test_adding_the_edge_that_closes_a_loop_names_the_loop() -> None:
    edges = [("web", "api"), ("api", "db")]
    assert cycle_if_added(edges, "db", "web") == ["db", "web", "api", "db"]
    assert cycle_if_added(edges, "web", "db") is None
    assert cycle_if_added(edges, "api", "api") == ["api", "api"]


def test_reachable_tolerates_an_existing_cycle() -> None:
    assert reachable([(1, 2), (2, 1), (2, 3)], 1) == {2: 1, 3: 2}


@given(edge_lists, nodes)
def test_reachable_is_the_transitive_closure(edges: Edges, start: int) -> None:
    assert set(reachable(edges, start)) == naive_closure(edges, start) - {start}


@given(edge_lists, nodes, nodes)
def test_distances_are_shortest_path_lengths(edges: Edges, source: int, target: int) -> None:
    path = shortest_path(edges, source, target)
    distances = reachable(edges, source)
    if source == target:
        assert path == [source]
    elif target in distances:
        assert path is not None and path[0] == source and path[-1] == target
        assert is_chain(edges, path)
        assert len(path) - 1 == distances[target]
    else:
        assert path is None


@given(edge_lists, nodes, nodes)
def test_a_refused_edge_would_have_closed_a_real_cycle(edges: Edges, source: int, target: int) -> None:
    cycle = cycle_if_added(edges, source, target)
    closes = source == target or source in reachable(edges, target)
    assert (cycle is not None) == closes
    if cycle is not None:
        assert cycle[0] == cycle[-1] == source
        assert is_chain([*edges, (source, target)], cycle)


@given(edge_lists)
def test_keeping_only_accepted_edges_keeps_the_graph_acyclic(candidates: Edges) -> None:
    accepted: Edges = []
    for source, target in candidates:
        if cycle_if_added(accepted, source, target) is None:
            accepted.append((source, target))
    assert acyclic(accepted)
