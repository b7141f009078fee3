"""What becomes of a fired timer: deleted, moved, or retried with backoff after a failure. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tocsin.engine.handlers import Again, Done, Fired, Outcome

MAX_BACKOFF = timedelta(minutes=5)
# A kind nobody handles is parked rather than dropped: a newer release (or a sibling worker) may know it.
UNKNOWN_KIND_DELAY = timedelta(hours=1)
ERROR_LIMIT = 2000  # the width of timers.last_error


@dataclass(frozen=True)
class Settlement:
    """The row change that closes one firing; applied only while the firing's lease is still held.

    `due_at` None deletes the timer. Without `error` the firing succeeded: attempts restart from zero and
    last_error is cleared. With `error` the attempt count is kept (it drives the backoff) and recorded.
    """

    timer_id: int
    lease_owner: str
    due_at: datetime | None
    error: str | None = None
    payload: Any = None
    replace_payload: bool = False


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 1 s, 2 s, 4 s ... never more than five minutes."""
    exponent = min(max(attempts - 1, 0), 20)  # 2**20 s is far past the cap; avoids timedelta overflow
    return min(timedelta(seconds=2**exponent), MAX_BACKOFF)


def succeeded(fired: Fired, outcome: Outcome) -> Settlement:
    """Done deletes the timer; Again moves it (a None payload keeps the stored one)."""
    if isinstance(outcome, Done):
        return Settlement(fired.id, fired.lease_owner, None)
    return Settlement(
        fired.id,
        fired.lease_owner,
        outcome.at,
        payload=outcome.payload,
        replace_payload=outcome.payload is not None,
    )


def failed(fired: Fired, error: str, *, now: datetime) -> Settlement:
    """Retry after the backoff for this attempt, recording why it failed."""
    return Settlement(fired.id, fired.lease_owner, now + backoff(fired.attempts), error=error[:ERROR_LIMIT])


def unhandled(fired: Fired, *, now: datetime) -> Settlement:
    """No handler is registered for the kind: park the timer an hour later and say so in last_error."""
    error = f"no handler registered for timer kind {fired.kind!r}"
    return Settlement(fired.id, fired.lease_owner, now + UNKNOWN_KIND_DELAY, error=error)


def is_outcome(value: object) -> bool:
    """Handlers are typed, but a domain's handler returning None should fail loudly, not delete a timer."""
    return isinstance(value, Done | Again)
