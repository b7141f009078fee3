"""Opening or refreshing alerts in bulk: one multi-row INSERT ... ON CONFLICT per chunk, as driver SQL.

A trigger on a key with an open alert refreshes it (summary, severity, labels... and the count); on a key with
none it opens one; the partial unique index "one open alert per integration and key" is the arbiter, so two
processes delivering the same alert at once still make one.

Drivers run an executemany of an upsert with RETURNING row by row, and SQLAlchemy neither caches a multi-row
INSERT construct nor processes thousands of parameters cheaply; so the statement text is built once per row
count, each value goes through its column type's bind processor (JSON, UTC datetimes) in one tight loop, and
the statement is sent with `exec_driver_sql`. PostgreSQL batches of `bulk_pg.COPY_FROM` rows or more use COPY.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.models import OPEN_ALERT, Alert

COLUMNS = (
    "integration_id",
    "dedup_key",
    "status",
    "summary",
    "severity",
    "source",
    "labels",
    "links",
    "details",
    "raw",
    "count",
    "started_at",
    "first_seen_at",
    "last_seen_at",
    "suppressed_by",
    "suppressed_reason",
    "flapping",
    "incident_id",  # a new alert's incident, when its group has one open (an existing alert keeps its own)
)
REFRESHED = ("summary", "severity", "source", "labels", "links", "details", "raw", "last_seen_at")
RETURNING = ("id", "integration_id", "dedup_key", "count", "incident_id", "suppressed_by", "flapping")
ROWS_PER_STATEMENT = 256  # 256 x 18 parameters: far below SQLite's 32,766 and PostgreSQL's 65,535

Returned = tuple[int, int, str, int, int | None, str | None, bool]
_ALERTS = cast(Table, Alert.__table__)


@functools.lru_cache(maxsize=64)
def _sql(placeholder: str, rows: int) -> str:
    one = "(" + ", ".join([placeholder] * len(COLUMNS)) + ")"
    return (
        f"INSERT INTO alerts ({', '.join(COLUMNS)}) VALUES {', '.join([one] * rows)} "
        f"ON CONFLICT (integration_id, dedup_key) WHERE {OPEN_ALERT} DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in REFRESHED)
        # A trigger means the alert is firing: a resolve held back for flapping no longer applies.
        + ", count = alerts.count + excluded.count, held_resolve_at = NULL "
        + f"RETURNING {', '.join(RETURNING)}"
    )


@functools.cache
def _processors(dialect: Any) -> tuple[Callable[[Any], Any] | None, ...]:
    """Each column's bind processor for this dialect, as SQLAlchemy would apply it."""
    return tuple(_ALERTS.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in COLUMNS)


async def upsert_rows(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[Returned]:
    """Open or refresh one alert per row (each row a distinct key, with every name of COLUMNS)."""
    connection = await session.connection()
    dialect = connection.dialect
    placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
    processors = _processors(dialect)
    returned: list[Returned] = []
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        params: list[Any] = []
        for row in chunk:
            for name, process in zip(COLUMNS, processors, strict=True):
                value = row[name]
                params.append(process(value) if process is not None and value is not None else value)
        result: Any = await connection.exec_driver_sql(_sql(placeholder, len(chunk)), tuple(params))
        returned += [(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in result]
    return returned
