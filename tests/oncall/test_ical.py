"""iCalendar rendering: a valid VCALENDAR with stable UIDs, UTC times, CRLF line ends and folded lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from icalendar import Calendar

from tocsin.oncall.ical import Entry, render, shift_uid
from tocsin.oncall.rotation import Source, SourceKind

PARIS_SUMMER = timezone(timedelta(hours=2))


def test_a_shift_uid_depends_only_on_schedule_source_and_start_instant() -> None:
    layer = Source(SourceKind.layer, 12, "24x7")
    start = datetime(2025, 3, 31, 9, tzinfo=PARIS_SUMMER)
    uid = shift_uid(schedule_id=3, source=layer, start=start, domain="tocsin.example")
    assert uid == "oncall-3-layer-12-20250331T070000Z@tocsin.example"
    assert uid == shift_uid(
        schedule_id=3,
        source=Source(SourceKind.layer, 12, "renamed"),
        start=start.astimezone(UTC),
        domain="tocsin.example",
    )
    assert uid != shift_uid(
        schedule_id=3,
        source=Source(SourceKind.override, 12, "override"),
        start=start,
        domain="tocsin.example",
    )


def test_render_writes_a_calendar_that_parses_back_with_utc_times_and_folded_crlf_lines() -> None:
    start = datetime(2025, 3, 31, 9, tzinfo=PARIS_SUMMER)
    entry = Entry(
        uid="u1@x",
        start=start,
        end=start + timedelta(hours=8),
        summary="On call: " + "database " * 12,
        description="From layer '24x7'.",
    )
    body = render([entry], name="On call: Primary", stamp=datetime(2025, 3, 28, tzinfo=UTC))
    assert body.startswith(b"BEGIN:VCALENDAR\r\n") and body.endswith(b"END:VCALENDAR\r\n")
    assert b"\n" not in body.replace(b"\r\n", b"")
    assert max(len(line) for line in body.split(b"\r\n")) <= 75
    assert b"DTSTART:20250331T070000Z\r\n" in body
    (event,) = Calendar.from_ical(body).walk("VEVENT")
    assert str(event["UID"]) == "u1@x" and str(event["SUMMARY"]) == entry.summary
    assert event.decoded("DTEND") == datetime(2025, 3, 31, 15, tzinfo=UTC)
    assert str(event["TRANSP"]) == "TRANSPARENT"
