"""When to try a failed delivery again: exponential backoff, Retry-After honoured, a bounded budget."""

from __future__ import annotations

from datetime import datetime, timedelta

FIRST_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(hours=1)
MAX_ATTEMPTS = 15  # 10 s, 20 s, 40 s ... then hourly: about 7.5 hours of trying in all
GIVE_UP_AFTER = timedelta(hours=24)


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try (1-based): 10 s, 20 s, 40 s ... capped at an hour."""
    exponent = min(max(attempts, 1) - 1, 20)  # 2**20 * 10 s is far past the cap; avoids huge numbers
    return min(FIRST_DELAY * (1 << exponent), MAX_DELAY)


def next_attempt(
    *, attempts: int, created_at: datetime, now: datetime, retry_after: float | None = None
) -> datetime | None:
    """When to retry after a transient failure, or None to give up.

    A server's Retry-After wins over the backoff (it knows its own rate limit) but is clamped to between
    one second and an hour, so a bogus header can neither hammer it nor park a page for days.
    """
    if attempts >= MAX_ATTEMPTS:
        return None
    if retry_after is not None:
        wait = min(max(timedelta(seconds=retry_after), timedelta(seconds=1)), MAX_DELAY)
    else:
        wait = backoff(attempts)
    at = now + wait
    if at - created_at > GIVE_UP_AFTER:
        return None
    return at
