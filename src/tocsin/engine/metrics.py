"""A worker's counters, read by the benchmark and (later) /metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass
class Metrics:
    claimed: int = 0  # timers leased by this worker
    fired: int = 0  # handler runs that returned Done or Again
    failed: int = 0  # handler runs that raised, overran their budget, returned junk or had no handler
    settle_errors: int = 0  # outcomes that could not be written (the lease expires, the timer fires again)
    last_lag_seconds: float = 0.0  # how late the latest firing started: now - due_at
    max_lag_seconds: float = 0.0

    def observe_lag(self, lag: timedelta) -> None:
        seconds = lag.total_seconds()
        self.last_lag_seconds = seconds
        self.max_lag_seconds = max(self.max_lag_seconds, seconds)
