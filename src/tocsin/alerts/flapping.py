"""Flapping detection: an alert key that opens and resolves `cycles` times within `window` is flapping (pure).

Each resolve of a key ends one open/resolve cycle. Its time joins the key's recent resolve times; when the
times within the window (this one included) reach `cycles`, the resolve is held back and the alert stays
open, marked flapping, so the next trigger neither opens a new alert nor pages anyone again. The held
resolve is applied once the alert has stayed quiet for a whole window (a timer, see tocsin.alerts.timers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_CYCLES = 3
DEFAULT_WINDOW_MINUTES = 30
MAX_WINDOW_MINUTES = 10_080  # a week: the longest window a service may set


@dataclass(frozen=True, slots=True)
class FlapPolicy:
    """`cycles` = 0 turns detection off."""

    cycles: int = DEFAULT_CYCLES
    window: timedelta = timedelta(minutes=DEFAULT_WINDOW_MINUTES)

    @property
    def enabled(self) -> bool:
        return self.cycles > 0 and self.window > timedelta(0)


def record_resolve(
    times: Sequence[datetime], now: datetime, policy: FlapPolicy
) -> tuple[list[datetime], bool]:
    """The key's resolve times to keep (those within the window, now included, oldest first) and whether
    this resolve makes the key flapping (and is therefore held)."""
    if not policy.enabled:
        return [], False
    since = now - policy.window
    recent = sorted(t for t in times if since < t <= now)
    recent.append(now)
    recent = recent[-policy.cycles :]
    return recent, len(recent) >= policy.cycles


def settled_at(held_resolve_at: datetime, policy: FlapPolicy) -> datetime:
    """When a flapping alert whose last resolve was held at `held_resolve_at` may be resolved for good."""
    return held_resolve_at + policy.window
