"""Heartbeat arithmetic: when a monitor that checks in every `interval` is overdue (pure, no clock)."""

from __future__ import annotations

from datetime import datetime, timedelta

HEARTBEAT_KEY = "heartbeat-missed"  # the one dedup key a heartbeat integration's alert ever has
HEARTBEAT_TIMER = "alerts.heartbeat"  # timer kind; the subject is the integration id
HEARTBEAT_ALERTNAME = "HeartbeatMissed"  # the alertname label: missed heartbeats of a service group together


def heartbeat_due(last_checkin: datetime, interval: timedelta, grace: timedelta) -> datetime:
    """The moment a monitor last heard from at `last_checkin` becomes overdue."""
    return last_checkin + interval + grace
