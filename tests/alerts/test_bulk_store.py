"""Large batches take a different path on PostgreSQL (COPY into a stage, then one upsert): what it stores must
be exactly what the small-batch upsert stores, whatever characters the sender used."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import undefer

from tests.alerts.flow import T0, integration, send
from tests.conftest import PgResetter
from tocsin.alerts import bulk_pg, service
from tocsin.alerts.adapters.base import Action, AlertEvent
from tocsin.alerts.models import Alert, Severity
from tocsin.catalog.models import Service
from tocsin.db import Database
from tocsin.wiring import open_database

pytestmark = pytest.mark.anyio

# What COPY's text format treats specially (backslash, tab, newline, carriage return, its \N for NULL), JSON
# escapes, quotes, and text beyond ASCII.
HOSTILE = [
    "back\\slash",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "\\N",
    "\\\\N\t\n",
    "quo\"te's",
    "Zoë ✓ 🚨",
]


def hostile(i: int) -> AlertEvent:
    text = HOSTILE[i % len(HOSTILE)]
    return AlertEvent(
        dedup_key=f"key {text} {i}",
        action=Action.trigger,
        summary=f"summary {text}",
        severity=Severity.critical,
        source=text,
        labels={"alertname": "Hostile", f"label {text}": text},
        links=[{"href": f"https://example.com/{i}?q={text}", "text": text}],
        details={"text": text, "nested": {"list": [text, 1, None, True, 1.5]}, "empty": ""},
        occurred_at=T0 - timedelta(minutes=i) if i % 2 else None,
        raw=None if i % 3 == 0 else {"payload": text, "i": i},
    )


def stored(alert: object) -> tuple[object, ...]:
    names = ("dedup_key", "summary", "source", "labels", "links", "details", "raw", "started_at", "count")
    return tuple(getattr(alert, n) for n in names)


@pytest.mark.parametrize(
    "size",
    [bulk_pg.COPY_FROM - 1, bulk_pg.COPY_FROM + 8, 2 * bulk_pg.ROWS_PER_WRITE + 5],
    ids=["small", "bulk", "bulk in several writes"],
)
async def test_alert_fields_are_stored_exactly_whatever_the_batch_size(
    db: Database, service_id: int, size: int
) -> None:
    iid = await integration(db, service_id)
    events = [hostile(i) for i in range(size)]
    await send(db, iid, *events)
    want = {
        e.dedup_key: (e.dedup_key, e.summary, e.source, e.labels, e.links, e.details, e.raw, e.occurred_at, 1)
        for e in events
    }
    async with db.read() as s:
        rows = await s.scalars(select(Alert).options(undefer(Alert.raw)))
        got = {a.dedup_key: stored(a) for a in rows}
    assert got == want


async def test_the_postgresql_stage_is_emptied_by_each_commit_and_survives_a_rollback(
    pg_database: PgResetter,
) -> None:
    """The stage's deleted rows would stay behind as dead tuples (no vacuum visits a temporary table) and
    slow every later batch; a rolled-back first batch takes the stage's creation with it."""
    pg_database.reset()
    db = open_database(pg_database.url, pool_size=1)
    size = text(
        "SELECT count(*), pg_relation_size('pg_temp.tocsin_alert_stage') FROM pg_temp.tocsin_alert_stage"
    )
    try:
        async with db.write() as s:
            svc = Service(slug="staged", name="Staged", description="", tier=2)
            s.add(svc)
        iid = await integration(db, svc.id)
        with pytest.raises(RuntimeError):
            async with db.write() as s:
                await service.ingest(
                    session=s, integration_id=iid, events=[hostile(i) for i in range(40)], now=T0
                )
                raise RuntimeError("rolled back")
        for batch in range(5):
            events = [hostile(batch * 100 + i) for i in range(bulk_pg.COPY_FROM + 8)]
            await send(db, iid, *events)
            async with db.read() as s:
                assert tuple((await s.execute(size)).one()) == (0, 0)
        async with db.read() as s:
            assert await s.scalar(select(func.count()).select_from(Alert)) == 5 * (bulk_pg.COPY_FROM + 8)
    finally:
        await db.dispose()
