"""Pure pieces of the UI: the on-call calendar, extra-field form values, the rate limit, safe redirects."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from tocsin.errors import Invalid
from tocsin.incidents.fields import FieldDef, FieldKind
from tocsin.oncall.rotation import Shift, Source, SourceKind
from tocsin.web import forms, oncall_views
from tocsin.web.oncall_views import View
from tocsin.web.routing import safe_next
from tocsin.web.session import RateLimit, TooMany

PARIS = ZoneInfo("Europe/Paris")


def test_a_week_runs_monday_to_sunday_and_a_month_covers_whole_weeks() -> None:
    assert oncall_views.span(View.week, date(2025, 3, 5)) == (date(2025, 3, 3), date(2025, 3, 10))
    first, end = oncall_views.span(View.month, date(2025, 3, 17))
    assert first == date(2025, 2, 24) and end == date(2025, 4, 7)
    assert (end - first).days % 7 == 0
    assert oncall_views.step(View.month, date(2025, 1, 31), forward=True) == date(2025, 2, 1)
    assert oncall_views.step(View.month, date(2025, 3, 1), forward=False) == date(2025, 2, 1)


def test_shifts_are_cut_at_local_midnight_across_a_dst_change() -> None:
    override = Source(SourceKind.override, 1, "swap")
    shifts = [
        Shift(7, datetime(2025, 3, 29, 8, 0, tzinfo=UTC), datetime(2025, 3, 30, 12, 0, tzinfo=UTC), None),
        Shift(8, datetime(2025, 3, 30, 12, 0, tzinfo=UTC), datetime(2025, 3, 31, 0, 0, tzinfo=UTC), override),
    ]
    days = oncall_views.calendar(
        shifts, PARIS, date(2025, 3, 29), date(2025, 3, 31), month=3, today=date(2025, 3, 30)
    )
    assert [d.day.day for d in days] == [29, 30]
    sunday = days[1]
    assert sunday.today
    assert [(s.user_id, s.start.hour, s.end.hour, s.override) for s in sunday.segments] == [
        (7, 0, 14, False),
        (8, 14, 0, True),
    ]


def _def(kind: FieldKind, **kw: object) -> FieldDef:
    return FieldDef(name="f", label="F", kind=kind, **kw)  # type: ignore[arg-type]


def test_form_values_become_the_kinds_the_type_declares() -> None:
    assert forms.read_extra([_def(FieldKind.number)], {"x_f": "42"}) == {"f": 42}
    assert forms.read_extra([_def(FieldKind.number)], {"x_f": "4.5"}) == {"f": 4.5}
    assert forms.read_extra([_def(FieldKind.boolean)], {"x_f": "no"}) == {"f": False}
    assert forms.read_extra([_def(FieldKind.boolean)], {"x_f": ""}) == {}
    assert forms.read_extra([_def(FieldKind.person)], {"x_f": "7"}) == {"f": 7}
    assert forms.read_extra([_def(FieldKind.indicators)], {"x_f": "ip 1.2.3.4\nstrange thing"}) == {
        "f": [{"type": "ip", "value": "1.2.3.4"}, {"type": "other", "value": "strange thing"}]
    }
    with pytest.raises(Invalid):
        forms.read_extra([_def(FieldKind.number)], {"x_f": "many"})
    shown = forms.form_values([_def(FieldKind.indicators)], {"f": [{"type": "ip", "value": "1.2.3.4"}]})
    assert shown == {"x_f": "ip 1.2.3.4"}


def test_the_rate_limit_forgets_old_hits() -> None:
    limit = RateLimit(limit=2, window=10)
    limit.check("a", now=0)
    limit.check("a", now=1)
    with pytest.raises(TooMany):
        limit.check("a", now=2)
    limit.check("b", now=2)
    limit.check("a", now=11)


def test_only_local_paths_are_followed_after_login() -> None:
    assert safe_next("/incidents?f=1") == "/incidents?f=1"
    for bad in ("//evil.example", "https://evil.example", "/\\evil.example", None, ""):
        assert safe_next(bad, "/home") == "/home"


def test_routing_conditions_are_typed_one_a_line_and_read_back() -> None:
    text = (
        "labels.env equals production\nseverity in critical, error\nnot summary regex ^test\nlabels.x exists"
    )
    parsed = forms.parse_conditions(text)
    assert parsed == [
        {"field": "labels.env", "op": "equals", "value": "production"},
        {"field": "severity", "op": "in", "value": ["critical", "error"]},
        {"field": "summary", "op": "regex", "value": "^test", "negate": True},
        {"field": "labels.x", "op": "exists"},
    ]
    assert forms.parse_conditions(forms.format_conditions(parsed)) == parsed
    with pytest.raises(Invalid):
        forms.parse_conditions("justoneword")
