"""iCalendar (RFC 5545) rendering of on-call shifts: stable UIDs, UTC times, CRLF line ends and folded lines.

A shift's UID is derived from what produced it (schedule, layer or override) and when it starts, so fetching a
feed again yields the same UIDs and calendar clients update events in place instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from icalendar import Calendar, Event

from tocsin.oncall.rotation import Source

PRODID = "-//Tocsin//On-call schedules//EN"


@dataclass(frozen=True)
class Entry:
    """One calendar event: a shift as someone will see it."""

    uid: str
    start: datetime
    end: datetime
    summary: str
    description: str = ""


def shift_uid(*, schedule_id: int, source: Source, start: datetime, domain: str) -> str:
    """The same shift always gets the same UID: schedule, layer or override, and start instant."""
    return f"oncall-{schedule_id}-{source.kind}-{source.key}-{start.astimezone(UTC):%Y%m%dT%H%M%SZ}@{domain}"


def render(entries: Sequence[Entry], *, name: str, stamp: datetime) -> bytes:
    """A VCALENDAR with one VEVENT per entry; `stamp` (when the feed was generated) becomes each DTSTAMP."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    for entry in entries:
        event = Event()
        event.add("uid", entry.uid)
        event.add("dtstamp", stamp.astimezone(UTC))
        event.add("dtstart", entry.start.astimezone(UTC))
        event.add("dtend", entry.end.astimezone(UTC))
        event.add("summary", entry.summary)
        if entry.description:
            event.add("description", entry.description)
        event.add("transp", "TRANSPARENT")  # being on call does not make anyone busy
        calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data
