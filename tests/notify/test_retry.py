"""Retry policy and throttle windows: pure functions, checked with properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tocsin.notify import retry, throttle

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def test_backoff_doubles_from_ten_seconds_up_to_an_hour() -> None:
    assert [retry.backoff(n).total_seconds() for n in range(1, 6)] == [10, 20, 40, 80, 160]
    assert retry.backoff(50) == retry.MAX_DELAY


@given(st.integers(min_value=1, max_value=200))
def test_backoff_never_shrinks_and_stays_bounded(attempts: int) -> None:
    assert retry.FIRST_DELAY <= retry.backoff(attempts) <= retry.backoff(attempts + 1) <= retry.MAX_DELAY


@given(st.floats(min_value=-100, max_value=1e9, allow_nan=False))
def test_retry_after_is_honoured_but_clamped(seconds: float) -> None:
    at = retry.next_attempt(attempts=1, created_at=T0, now=T0, retry_after=seconds)
    assert at is not None and timedelta(seconds=1) <= at - T0 <= retry.MAX_DELAY


def test_the_retry_budget_ends_after_max_attempts_or_a_day() -> None:
    assert retry.next_attempt(attempts=retry.MAX_ATTEMPTS, created_at=T0, now=T0) is None
    assert (
        retry.next_attempt(attempts=3, created_at=T0, now=T0 + timedelta(hours=23, minutes=59, seconds=30))
        is None
    )
    assert retry.next_attempt(attempts=3, created_at=T0, now=T0) == T0 + timedelta(seconds=40)


@given(st.lists(st.integers(min_value=0, max_value=600), max_size=30), st.integers(min_value=1, max_value=10))
def test_a_throttled_destination_frees_exactly_when_a_slot_leaves_the_window(
    offsets: list[int], limit: int
) -> None:
    now = T0 + timedelta(seconds=600)
    sent = [T0 + timedelta(seconds=o) for o in offsets]
    rule = throttle.Limit(limit, 60)
    until = throttle.blocked_until(sorted(sent)[-limit:], rule, now)
    in_window = [t for t in sent if t > now - rule.window]
    if until is None:
        assert len(in_window) < limit
    else:
        assert until > now
        assert len([t for t in sent if t > until - rule.window]) < limit  # a slot is free at `until`
        just_before = until - timedelta(microseconds=1)
        assert len([t for t in sent if t > just_before - rule.window]) >= limit


def test_a_zero_limit_means_no_throttle() -> None:
    assert throttle.blocked_until([T0] * 5, throttle.Limit(0, 60), T0) is None
