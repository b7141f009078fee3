"""Pure hashing of audit rows: canonical JSON and the SHA-256 link to the previous row."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    """One byte-exact JSON form: sorted keys, no spaces, datetimes as UTC ISO strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def jsonable(value: Any) -> Any:
    """The value exactly as it will be stored and read back (so the stored row re-hashes identically)."""
    return None if value is None else json.loads(canonical(value))


@dataclass(frozen=True)
class Link:
    seq: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    before: Any
    after: Any


def row_hash(prev_hash: str, link: Link) -> str:
    body = canonical(
        {
            "seq": link.seq,
            "at": link.at.astimezone(UTC).isoformat(),
            "actor": link.actor,
            "action": link.action,
            "entity_type": link.entity_type,
            "entity_id": link.entity_id,
            "before": link.before,
            "after": link.after,
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()
