"""Per-integration token buckets, in memory per process (pure arithmetic; the caller passes the time)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Bucket:
    tokens: float
    at: float


class RateLimiter:
    """Each key gets `burst` requests at once and `per_minute` more every minute after that."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.buckets: dict[int, Bucket] = {}
        self.max_keys = max_keys

    def take(self, key: int, *, per_minute: float | None, burst: int, now: float) -> float:
        """Spend one token: 0.0 if allowed, else the seconds until one is available."""
        if per_minute is None:
            return 0.0
        rate = per_minute / 60.0
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.max_keys:
                self.buckets.clear()  # integrations are few; this only bounds memory in odd cases
            bucket = self.buckets[key] = Bucket(float(burst), now)
        bucket.tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate
