"""A short-lived, per-process copy of the data that routes alerts: integrations, routing rules, maintenance
windows and per-service alert settings.

Intake reads them for every batch; reading them from the database each time cost more than storing the
alerts. A change made through this process's services is seen by the next batch (`changed()` drops the
copy); one made by another process is seen within `TTL` seconds. The copy is kept per database engine, so
two databases in one process (tests) never share one.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts.models import Integration
from tocsin.alerts.options import Options, options_for
from tocsin.alerts.routing import Rule, Window

if TYPE_CHECKING:  # alert_settings itself calls changed(): import only the type
    from tocsin.alerts.alert_settings import AlertSettings

TTL = 2.0  # seconds


@dataclass(frozen=True, slots=True)
class Origin:
    """What routing needs of an integration."""

    service_id: int
    name: str
    options: Options


@dataclass(slots=True)
class _Copy:
    version: int
    loaded_at: float
    origins: dict[int, Origin] = field(default_factory=dict)
    settings: dict[int, AlertSettings] = field(default_factory=dict)
    rules: Sequence[Rule] | None = None
    windows: Sequence[Window] | None = None  # every window not yet over when loaded


_version = 0
_copies: weakref.WeakKeyDictionary[Engine, _Copy] = weakref.WeakKeyDictionary()


def changed() -> None:
    """Something that routes alerts changed: the next batch reads everything afresh."""
    global _version
    _version += 1


def _copy(session: AsyncSession) -> _Copy:
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    now = time.monotonic()
    found = _copies.get(engine)
    if found is None or found.version != _version or now - found.loaded_at > TTL:
        found = _copies[engine] = _Copy(_version, now)
    return found


async def origins(session: AsyncSession, integration_ids: Collection[int]) -> dict[int, Origin]:
    copy = _copy(session)
    missing = sorted(set(integration_ids) - set(copy.origins))
    if missing:
        rows = await session.execute(
            select(
                Integration.id, Integration.service_id, Integration.name, Integration.kind, Integration.config
            ).where(Integration.id.in_(missing))
        )
        copy.origins.update({int(r[0]): Origin(int(r[1]), r[2], options_for(r[3], r[4])) for r in rows})
    return {i: copy.origins[i] for i in integration_ids if i in copy.origins}


async def settings(
    session: AsyncSession,
    service_ids: Collection[int],
    load: Callable[[AsyncSession, Collection[int]], Awaitable[dict[int, AlertSettings]]],
) -> dict[int, AlertSettings]:
    copy = _copy(session)
    missing = set(service_ids) - set(copy.settings)
    if missing:
        copy.settings.update(await load(session, missing))
    return {i: copy.settings[i] for i in service_ids}


async def rules(
    session: AsyncSession, load: Callable[[AsyncSession], Awaitable[Sequence[Rule]]]
) -> Sequence[Rule]:
    copy = _copy(session)
    if copy.rules is None:
        copy.rules = await load(session)
    return copy.rules


async def windows(
    session: AsyncSession,
    at: datetime,
    load: Callable[[AsyncSession, datetime], Awaitable[Sequence[Window]]],
) -> Sequence[Window]:
    """The windows not over at `at` (each still checks its own start and end against a later moment)."""
    copy = _copy(session)
    if copy.windows is None:
        copy.windows = await load(session, at)
    return copy.windows
