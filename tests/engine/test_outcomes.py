"""Backoff and settlements: what becomes of a timer after its handler ran. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from tocsin.engine.handlers import Again, Done, Fired
from tocsin.engine.outcomes import ERROR_LIMIT, MAX_BACKOFF, backoff, failed, succeeded

NOW = datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
FIRED = Fired(
    id=7,
    kind="test.ping",
    subject="incident:1",
    due_at=NOW,
    payload={"step": 1},
    attempts=3,
    lease_owner="host:1:abc/4",
)


def test_backoff_starts_at_one_second_and_doubles() -> None:
    assert [backoff(n).total_seconds() for n in range(1, 7)] == [1, 2, 4, 8, 16, 32]


@given(st.integers(min_value=0, max_value=10**9))
def test_backoff_never_exceeds_five_minutes_and_never_shrinks(attempts: int) -> None:
    assert timedelta(seconds=1) <= backoff(attempts) <= MAX_BACKOFF
    assert backoff(attempts) <= backoff(attempts + 1)


def test_done_deletes_and_again_moves_keeping_the_payload_unless_given_one() -> None:
    assert succeeded(FIRED, Done()).due_at is None
    later = NOW + timedelta(minutes=5)
    kept = succeeded(FIRED, Again(at=later))
    assert (kept.due_at, kept.replace_payload, kept.error) == (later, False, None)
    replaced = succeeded(FIRED, Again(at=later, payload={"step": 2}))
    assert (replaced.payload, replaced.replace_payload) == ({"step": 2}, True)


def test_a_failure_waits_the_backoff_of_its_attempt_and_keeps_a_bounded_error() -> None:
    settlement = failed(FIRED, "x" * 5000, now=NOW)
    assert settlement.due_at == NOW + timedelta(seconds=4)
    assert settlement.error is not None and len(settlement.error) == ERROR_LIMIT
    assert (settlement.timer_id, settlement.lease_owner) == (FIRED.id, FIRED.lease_owner)
