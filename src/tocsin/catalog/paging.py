"""Keyset pages for catalog lists: order by one or more columns ending in id, resume after the last row."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from tocsin.api_common import decode_cursor, encode_cursor
from tocsin.errors import Invalid

M = TypeVar("M")
_BAD_CURSOR = "cursor is not one this list issued; pass next_cursor from the previous page"


def _after(keys: tuple[InstrumentedAttribute[Any], ...], values: list[Any]) -> ColumnElement[bool]:
    """Lexicographic "row > values" that works on every backend (no row-value comparison needed)."""
    first, rest = keys[0], keys[1:]
    beyond: ColumnElement[bool] = first > values[0]
    if not rest:
        return beyond
    return or_(beyond, and_(first == values[0], _after(rest, values[1:])))


async def page(
    session: AsyncSession,
    stmt: Select[M],
    *,
    keys: tuple[InstrumentedAttribute[Any], ...],
    cursor: str | None,
    limit: int,
) -> tuple[list[M], str | None]:
    """Up to `limit` rows after `cursor` in `keys` order (the last key must be unique, e.g. the id), and the
    cursor for the next page (None on the last page)."""
    if cursor is not None:
        values: list[Any] = decode_cursor(cursor)
        if len(values) != len(keys) or any(
            type(v) is not k.type.python_type for k, v in zip(keys, values, strict=True)
        ):
            raise Invalid(_BAD_CURSOR)
        stmt = stmt.where(_after(keys, values))
    rows = list(await session.scalars(stmt.order_by(*keys).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], encode_cursor([getattr(last, k.key) for k in keys])
