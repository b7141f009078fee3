"""Flapping detection: cycles counted within a sliding window (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tocsin.alerts.flapping import FlapPolicy, record_resolve, settled_at

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
POLICY = FlapPolicy(cycles=3, window=timedelta(minutes=30))


def test_the_third_resolve_within_the_window_makes_the_key_flapping() -> None:
    times: list[datetime] = []
    verdicts = []
    for minute in (0, 10, 20):
        times, flapping = record_resolve(times, T0 + timedelta(minutes=minute), POLICY)
        verdicts.append(flapping)
    assert verdicts == [False, False, True]


def test_cycles_spread_wider_than_the_window_never_flap() -> None:
    times: list[datetime] = []
    for minute in range(0, 300, 16):
        times, flapping = record_resolve(times, T0 + timedelta(minutes=minute), POLICY)
        assert not flapping
        assert len(times) <= 2


def test_detection_can_be_turned_off() -> None:
    off = FlapPolicy(cycles=0)
    assert record_resolve([T0, T0, T0], T0, off) == ([], False)
    assert settled_at(T0, POLICY) == T0 + timedelta(minutes=30)


@given(st.lists(st.integers(0, 120), max_size=30), st.integers(1, 6), st.integers(1, 60))
def test_flapping_means_cycles_resolves_within_the_window(
    minutes: list[int], cycles: int, window: int
) -> None:
    policy = FlapPolicy(cycles=cycles, window=timedelta(minutes=window))
    times: list[datetime] = []
    seen: list[datetime] = []
    for minute in sorted(minutes):
        now = T0 + timedelta(minutes=minute)
        seen.append(now)
        times, flapping = record_resolve(times, now, policy)
        recent = [t for t in seen if now - policy.window < t <= now]
        assert flapping == (len(recent) >= cycles)
        assert len(times) <= cycles and times == sorted(times) and times[-1] == now
