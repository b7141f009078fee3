"""Shared API pieces: strict input models, pages with keyset cursors, the /api/v1 prefix."""

from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from tocsin.errors import Invalid

API = "/api/v1"
T = TypeVar("T")


class In(BaseModel):
    """Base for request bodies: unknown fields are refused, with a message naming them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    """Base for response bodies, built from ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("cursor is not one this API issued; pass next_cursor from the previous page") from exc
    if not isinstance(values, list):
        raise Invalid("cursor is not one this API issued; pass next_cursor from the previous page")
    return values
