"""Per-channel throttles: at most N messages per sliding window to any one destination."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tocsin.notify.models import ChannelKind


@dataclass(frozen=True)
class Limit:
    max_messages: int  # 0 turns the throttle off
    window_seconds: int

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)


# Chosen so a person is not buried during a storm (the overflow goes out as one bundle when the window
# opens) and so chat vendors' webhook rate limits (Slack: about one message a second) are never reached.
DEFAULTS: dict[ChannelKind, Limit] = {
    ChannelKind.email: Limit(10, 120),
    ChannelKind.slack: Limit(20, 60),
    ChannelKind.teams: Limit(10, 60),
    ChannelKind.webhook: Limit(120, 60),
}


def blocked_until(recent: Sequence[datetime], limit: Limit, now: datetime) -> datetime | None:
    """When the next message may go, or None if it may go now.

    `recent` holds the send times of the newest `limit.max_messages` deliveries to the destination (any
    order). The window is sliding: a slot frees when the oldest of those leaves it.
    """
    if limit.max_messages <= 0:
        return None
    in_window = sorted(t for t in recent if t > now - limit.window)
    if len(in_window) < limit.max_messages:
        return None
    return in_window[-limit.max_messages] + limit.window
