"""Token buckets: a burst at once, then the rate."""

from __future__ import annotations

from tocsin.alerts.ratelimit import RateLimiter


def test_a_burst_passes_then_the_next_request_waits_for_a_token() -> None:
    limiter = RateLimiter()
    assert [limiter.take(1, per_minute=60, burst=3, now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take(1, per_minute=60, burst=3, now=0.0) == 1.0
    assert limiter.take(1, per_minute=60, burst=3, now=1.0) == 0.0
    assert limiter.take(2, per_minute=60, burst=3, now=1.0) == 0.0  # each integration has its own bucket


def test_tokens_refill_up_to_the_burst_only() -> None:
    limiter = RateLimiter()
    limiter.take(1, per_minute=600, burst=2, now=0.0)
    for _ in range(2):
        assert limiter.take(1, per_minute=600, burst=2, now=1000.0) == 0.0
    assert limiter.take(1, per_minute=600, burst=2, now=1000.0) > 0


def test_no_limit_means_no_limit() -> None:
    limiter = RateLimiter()
    assert all(limiter.take(1, per_minute=None, burst=1, now=0.0) == 0.0 for _ in range(100))
