"""IANA time-zone names: validating them and loading the zone (one cached set of the names tzdata knows)."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo, available_timezones


@cache
def _names() -> frozenset[str]:
    return frozenset(available_timezones())


def check_zone(name: str) -> str:
    """Return `name` if it is an IANA zone; raise ValueError saying what to give instead."""
    if name not in _names():
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Paris or America/New_York"
        )
    return name


def load_zone(name: str) -> ZoneInfo:
    """The zone for a name already checked (ZoneInfo caches instances itself)."""
    return ZoneInfo(check_zone(name))
