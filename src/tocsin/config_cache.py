"""Per-process copies of the small configuration tables that every incident write reads.

Creating an incident consults its type, the priority matrix, the SLA policies, the update cadence and the
escalation routing. Each is a handful of rows that changes rarely, yet reading them cost a third of the
statements of a create. Here each is read once and kept:

- a change made through this process is seen by the next unit of work: the code that changes one of these
  tables calls `changed(session)`, which drops every copy at once and again when that unit commits (so a
  copy taken meanwhile, of the rows as they were, does not survive);
- a unit of work that changed configuration reads it from the database, never from a copy (its own
  uncommitted rows must not be kept, in case it rolls back);
- a change made by another process is seen within `TTL` seconds.

Deleting a service or a team also deletes its escalation setting and SLA policies, yet needs no `changed()`:
no incident can name a deleted service or team, so the copy's entries for it are never looked up.

Copies are kept per database engine, so two databases in one process (tests) never share one. Values must
be immutable (tuples, frozen dataclasses, mapping proxies): every caller shares the same copy.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.db import on_commit

TTL = 2.0  # seconds

T = TypeVar("T")

_CHANGED = "tocsin_config_changed"  # session.info flag: this unit of work changed configuration
_version = 0
_copies: weakref.WeakKeyDictionary[Engine, dict[str, tuple[int, float, Any]]] = weakref.WeakKeyDictionary()


def _drop() -> None:
    global _version
    _version += 1


def changed(session: AsyncSession) -> None:
    """This unit of work changes cached configuration: drop the copies now and once it has committed."""
    session.info[_CHANGED] = True
    _drop()
    on_commit(session, _drop)


async def cached(session: AsyncSession, name: str, load: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """The copy of `name`, loaded with `load(session)` when missing, stale or dropped."""
    if session.info.get(_CHANGED):
        return await load(session)
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    copies = _copies.setdefault(engine, {})
    now = time.monotonic()
    found = copies.get(name)
    if found is not None and found[0] == _version and now - found[1] <= TTL:
        value: T = found[2]
        return value
    version = _version
    value = await load(session)
    copies[name] = (version, now, value)
    return value
