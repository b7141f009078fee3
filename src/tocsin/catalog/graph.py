"""Pure dependency-graph logic over edge lists: reachability with distances, shortest paths, cycle refusal.

An edge `(a, b)` means "a depends on b". Walking edges forwards answers "what does a rely on"; walking the
reversed edges answers "what is hit if b breaks". Nothing here does I/O; the service layer loads the edges.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from typing import TypeVar

N = TypeVar("N", bound=Hashable)


def _adjacency(edges: Iterable[tuple[N, N]]) -> dict[N, list[N]]:
    out: dict[N, list[N]] = {}
    for source, target in edges:
        out.setdefault(source, []).append(target)
    return out


def reversed_edges(edges: Iterable[tuple[N, N]]) -> list[tuple[N, N]]:
    return [(target, source) for source, target in edges]


def reachable(edges: Iterable[tuple[N, N]], start: N) -> dict[N, int]:
    """Every node reachable from `start` (not `start` itself), with its distance in edges.

    Cycles are tolerated (each node is visited once), so a damaged graph still gives an answer.
    """
    adjacency = _adjacency(edges)
    distance: dict[N, int] = {start: 0}
    queue: deque[N] = deque([start])
    while queue:
        node = queue.popleft()
        for neighbour in adjacency.get(node, ()):
            if neighbour not in distance:
                distance[neighbour] = distance[node] + 1
                queue.append(neighbour)
    del distance[start]
    return distance


def shortest_path(edges: Iterable[tuple[N, N]], source: N, target: N) -> list[N] | None:
    """The shortest chain of nodes from `source` to `target` (both included), or None if there is none."""
    adjacency = _adjacency(edges)
    previous: dict[N, N | None] = {source: None}
    queue: deque[N] = deque([source])
    while queue:
        node = queue.popleft()
        if node == target:
            path = [node]
            step = previous[node]
            while step is not None:
                path.append(step)
                step = previous[step]
            return path[::-1]
        for neighbour in adjacency.get(node, ()):
            if neighbour not in previous:
                previous[neighbour] = node
                queue.append(neighbour)
    return None


def cycle_if_added(edges: Iterable[tuple[N, N]], source: N, target: N) -> list[N] | None:
    """The cycle that adding `source -> target` would close, as a node chain starting and ending at
    `source`; None if the graph would stay acyclic."""
    if source == target:
        return [source, source]
    back = shortest_path(edges, target, source)
    return None if back is None else [source, *back]
