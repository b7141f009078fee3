"""Timeline wording: one line per incident per batch, counting, never one entry per alert (pure)."""

from __future__ import annotations

from tocsin.alerts.summary import Did, Tally


def test_one_alert_is_named() -> None:
    tally = Tally()
    tally.add(Did.triggered, 1, "Disk full on db-1")
    assert tally.text() == 'Alert "Disk full on db-1" triggered'


def test_a_storm_is_counted_with_a_few_names() -> None:
    tally = Tally()
    for i in range(500):
        tally.add(Did.triggered, i, f"Probe failure on web-{i}")
    tally.add(Did.repeated, 900, "Old alert", times=7, seen=12)
    assert tally.text() == (
        '500 alerts triggered: "Probe failure on web-0", "Probe failure on web-1", "Probe failure on web-2" '
        'and 497 more; Alert "Old alert" repeated (seen 12 times)'
    )
    data = tally.data()
    assert data["counts"] == {"triggered": 500, "repeated": 1}
    assert len(data["alerts"]["triggered"]) == 100 and data["events"]["repeated"] == 7
