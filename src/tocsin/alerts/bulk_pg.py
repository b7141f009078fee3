"""PostgreSQL fast paths for large intake batches: COPY into a staging table, then one upsert from it.

A multi-row INSERT ... VALUES with thousands of parameters costs more in the driver (its query text is
parsed anew each time, too long to cache) than in the server; COPY streams the rows instead, and the upsert
that follows has a short, constant text. Key lists are likewise passed as two arrays, not as pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, String, Table, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.models import OPEN_ALERT
from tocsin.db import dialect_of, json_dumps, on_commit

STAGE = "tocsin_alert_stage"
COPY_FROM = 32  # rows: below this, the plain upsert's single round trip wins

_COLUMNS = (
    "integration_id",
    "dedup_key",
    "summary",
    "severity",
    "source",
    "labels",
    "links",
    "details",
    "raw",
    "count",
    "started_at",
    "suppressed_by",
    "suppressed_reason",
    "incident_id",
)
_CREATE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE} (integration_id bigint, dedup_key text, summary text, "
    "severity text, source text, labels jsonb, links jsonb, details jsonb, raw jsonb, count integer, "
    "started_at timestamptz, suppressed_by text, suppressed_reason text, incident_id bigint) "
    # Emptied by each commit: deleted rows would otherwise stay as dead tuples in a table no vacuum visits,
    # and every later upsert would scan them (it took twice as long after 200 batches).
    "ON COMMIT DELETE ROWS"
)
_CREATED = (
    "tocsin_alert_stage_created"  # the connection's info: its stage table exists (created and committed)
)
_REFRESHED = ("summary", "severity", "source", "labels", "links", "details", "raw", "last_seen_at")
# The staged rows are deleted by the statement that reads them, so a second round in the same transaction
# starts from an empty stage; a rollback empties it too.
_UPSERT = (
    f"WITH staged AS (DELETE FROM {STAGE} RETURNING *) "
    "INSERT INTO alerts (integration_id, dedup_key, status, summary, severity, source, labels, links, "
    "details, raw, count, started_at, first_seen_at, last_seen_at, suppressed_by, suppressed_reason, "
    "flapping, incident_id) "
    "SELECT integration_id, dedup_key, 'triggered', summary, severity, source, labels, links, details, raw, "
    "count, started_at, %(now)s, %(now)s, suppressed_by, suppressed_reason, false, incident_id FROM staged "
    "ORDER BY integration_id, dedup_key "
    f"ON CONFLICT (integration_id, dedup_key) WHERE {OPEN_ALERT} DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _REFRESHED)
    + ", count = alerts.count + excluded.count, held_resolve_at = NULL "
    "RETURNING id, integration_id, dedup_key, count, incident_id, suppressed_by, flapping"
)


Returned = tuple[int, int, str, int, int | None, str | None, bool]

# COPY's text format, formatted here rather than by psycopg's row writer (a third of the time): a tab between
# columns, \N for NULL, and backslash, tab, newline and carriage return escaped in text. JSON as orjson and
# json write it holds no control characters, so only its backslashes need doubling.
ROWS_PER_WRITE = 64
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def _text(value: str | None) -> str:
    return _NULL if value is None else value.translate(_ESCAPES)


def _json(value: Any) -> str:
    return json_dumps(value).replace("\\", "\\\\")


def _line(row: dict[str, Any]) -> str:
    """One row of the stage, in _COLUMNS order."""
    started, incident = row["started_at"], row["incident_id"]
    return (
        "\t".join(
            (
                str(row["integration_id"]),
                _text(row["dedup_key"]),
                _text(row["summary"]),
                _text(row["severity"]),
                _text(row["source"]),
                _json(row["labels"]),
                _json(row["links"]),
                _json(row["details"]),
                _json(row["raw"]),
                str(row["count"]),
                _NULL if started is None else started.isoformat(),
                _text(row["suppressed_by"]),
                _text(row["suppressed_reason"]),
                _NULL if incident is None else str(incident),
            )
        )
        + "\n"
    )


async def copy_upsert(session: AsyncSession, rows: Sequence[dict[str, Any]], now: datetime) -> list[Returned]:
    """Open or refresh one alert per row (each row a distinct key); (id, integration, key, count, incident,
    suppressed_by, flapping) of each."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    try:
        return await _copy_upsert(session, raw, driver, rows, now)
    except Exception:
        # The stage may be gone (DISCARD TEMP, a pooler that swaps sessions): create it again next time.
        raw.info.pop(_CREATED, None)
        raise


async def _copy_upsert(
    session: AsyncSession, raw: Any, driver: Any, rows: Sequence[dict[str, Any]], now: datetime
) -> list[Returned]:
    async with driver.cursor() as cursor:
        if not raw.info.get(_CREATED):
            await cursor.execute(_CREATE)
            on_commit(session, lambda: raw.info.__setitem__(_CREATED, True))  # a rollback drops it again
        async with cursor.copy(f"COPY {STAGE} ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
            # Written a few rows at a time, so the server parses them while the next ones are formatted.
            for start in range(0, len(rows), ROWS_PER_WRITE):
                await copy.write("".join(map(_line, rows[start : start + ROWS_PER_WRITE])))
        await cursor.execute(_UPSERT, {"now": now})
        return [
            (int(r[0]), int(r[1]), str(r[2]), int(r[3]), r[4], r[5], bool(r[6]))
            for r in await cursor.fetchall()
        ]


def keys_matching(
    session: AsyncSession, table: Table, keys: Sequence[tuple[int, str]]
) -> ColumnElement[bool]:
    """`(integration_id, dedup_key) IN keys`, in the form each database runs fastest."""
    if dialect_of(session) == "postgresql":
        return keys_in(table, keys)
    return tuple_(table.c.integration_id, table.c.dedup_key).in_(keys)


def keys_in(table: Table, keys: Sequence[tuple[int, str]]) -> ColumnElement[bool]:
    """`(integration_id, dedup_key) IN keys`, with the keys sent as two arrays (one short, cached query)."""
    pairs = (
        func.unnest(
            bindparam("key_integrations", [k[0] for k in keys], type_=ARRAY(BigInteger)),
            bindparam("key_values", [k[1] for k in keys], type_=ARRAY(String)),
        )
        .table_valued("integration_id", "dedup_key")
        .render_derived()
    )
    return tuple_(table.c.integration_id, table.c.dedup_key).in_(
        select(pairs.c.integration_id, pairs.c.dedup_key)
    )
