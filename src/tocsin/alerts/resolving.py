"""Resolving alerts by key, except where flapping detection holds a resolve back.

A resolve ends one open/resolve cycle of its key. The key's recent resolve times (`alert_flaps`) say whether
it has now cycled too often (tocsin.alerts.flapping): then the alert stays open, marked flapping, and a timer
resolves it once it has stayed quiet for the flapping window; a trigger meanwhile cancels that (the upsert
clears `held_resolve_at`). Resolves of an alert already flapping are held the same way, silently.

Resolve times older than the longest flapping window count for no policy: a daily timer
(`alerts.flaps_prune`, ensured a day ahead when resolve times are written, looked at once an hour per
process) deletes the keys whose newest resolve is that old, so the memory does not grow with every key ever
resolved.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Engine, String, Table, delete, literal_column, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import bulk_pg
from tocsin.alerts.flapping import MAX_WINDOW_MINUTES, FlapPolicy, record_resolve
from tocsin.alerts.grouping import Touch
from tocsin.alerts.models import OPEN_ALERT, Alert, AlertFlap, AlertStatus
from tocsin.alerts.summary import Did
from tocsin.db import dialect_of, on_commit, upsert_insert
from tocsin.engine import service as engine

TIMER = "alerts.flap"
PRUNE_TIMER = "alerts.flaps_prune"  # subject "all": forget resolve times no flapping window reaches
PRUNE_EVERY = timedelta(days=1)
PRUNE_BATCH = 1000
OFF = FlapPolicy(cycles=0)
# When this process last made sure the prune timer exists, per database: once an hour is plenty.
_ensured: weakref.WeakKeyDictionary[Engine | Connection, datetime] = weakref.WeakKeyDictionary()
_ALERTS = cast(Table, Alert.__table__)
_CHUNK = 1000
_FAST = {"synchronize_session": False}

Key = tuple[int, str]


async def resolve(
    session: AsyncSession, keys: Sequence[Key], now: datetime, policies: Mapping[int, FlapPolicy]
) -> list[Touch]:
    """Resolve the open alert of each key (no open alert: nothing), or hold it if flapping; `policies` by
    integration id (absent: no flapping detection). Returns what became of each alert."""
    keys = sorted(keys)
    touches: list[Touch] = []
    for start in range(0, len(keys), _CHUNK):
        touches += await _resolve_chunk(session, keys[start : start + _CHUNK], now, policies)
    return touches


async def _resolve_chunk(
    session: AsyncSession, keys: Sequence[Key], now: datetime, policies: Mapping[int, FlapPolicy]
) -> list[Touch]:
    rows = (
        await session.execute(
            select(
                _ALERTS.c.id,
                _ALERTS.c.integration_id,
                _ALERTS.c.dedup_key,
                _ALERTS.c.summary,
                _ALERTS.c.incident_id,
                _ALERTS.c.flapping,
            )
            .where(bulk_pg.keys_matching(session, _ALERTS, keys), text(OPEN_ALERT))
            .order_by(_ALERTS.c.id)
        )
    ).all()
    watched = [r for r in rows if not r.flapping and policies.get(r.integration_id, OFF).enabled]
    history = await _history(session, [(r.integration_id, r.dedup_key) for r in watched])
    remembered: list[dict[str, Any]] = []
    held: dict[int, FlapPolicy] = {r.id: policies.get(r.integration_id, OFF) for r in rows if r.flapping}
    starts_flapping: set[int] = set()
    for r in watched:
        policy = policies[r.integration_id]
        times, flapping = record_resolve(history.get((r.integration_id, r.dedup_key), []), now, policy)
        remembered.append(
            {
                "integration_id": r.integration_id,
                "dedup_key": r.dedup_key,
                "resolved_times": [t.isoformat() for t in times],
            }
        )
        if flapping:
            held[r.id] = policy
            starts_flapping.add(r.id)
    if remembered:
        insert = upsert_insert(dialect_of(session))(AlertFlap)
        await session.execute(
            insert.on_conflict_do_update(
                index_elements=["integration_id", "dedup_key"],
                set_={"resolved_times": insert.excluded.resolved_times},
            ),
            remembered,
        )
        await _ensure_pruning(session, now)
    resolving = [r.id for r in rows if r.id not in held]
    resolved: set[int] = set()
    if resolving:
        resolved = set(
            await session.scalars(
                update(Alert)
                .where(Alert.id.in_(resolving), text(OPEN_ALERT))
                .values(status=AlertStatus.resolved.value, resolved_at=now, held_resolve_at=None)
                .returning(Alert.id),
                execution_options=_FAST,
            )
        )
    if held:
        await _hold(session, held, now)
    touches = []
    for r in rows:
        key = (r.integration_id, r.dedup_key)
        if r.id in resolved:
            touches.append(Touch(r.id, key, Did.resolved, r.summary, r.incident_id))
        elif r.id in starts_flapping:
            touches.append(Touch(r.id, key, Did.flapping, r.summary, r.incident_id))
    return touches


async def _ensure_pruning(session: AsyncSession, now: datetime) -> None:
    """Make sure the prune timer exists, looking at most once an hour per process (remembered at commit)."""
    key = session.get_bind()
    last = _ensured.get(key)
    if last is not None and timedelta(0) <= now - last < timedelta(hours=1):
        return
    await engine.ensure(session=session, kind=PRUNE_TIMER, subject="all", due_at=now + PRUNE_EVERY)
    on_commit(session, lambda: _ensured.__setitem__(key, now))


def _newest_resolve(session: AsyncSession) -> Any:
    """SQL for a key's newest resolve time (its list is kept oldest first), as ISO text."""
    if dialect_of(session) == "postgresql":
        return literal_column("alert_flaps.resolved_times ->> -1", String)
    return literal_column("json_extract(alert_flaps.resolved_times, '$[#-1]')", String)


async def prune(session: AsyncSession, now: datetime, *, limit: int = PRUNE_BATCH) -> int:
    """Delete up to `limit` keys whose newest resolve is older than any flapping window; how many."""
    cutoff = (now - timedelta(minutes=MAX_WINDOW_MINUTES)).isoformat()
    newest = _newest_resolve(session)
    is_stale = (newest < cutoff) | newest.is_(None)
    # PostgreSQL: rows intake holds are skipped (pruned next time), so this never waits on intake, and the
    # rows taken are locked, so intake waits for this short transaction instead of deadlocking with it.
    stale = (
        select(AlertFlap.integration_id, AlertFlap.dedup_key)
        .where(is_stale)
        .order_by(AlertFlap.integration_id, AlertFlap.dedup_key)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.execute(stale)).all()
    if rows:
        keys = [(int(r[0]), str(r[1])) for r in rows]
        await session.execute(
            delete(AlertFlap).where(tuple_(AlertFlap.integration_id, AlertFlap.dedup_key).in_(keys), is_stale)
        )
    return len(rows)


async def _history(session: AsyncSession, keys: Sequence[Key]) -> dict[Key, list[datetime]]:
    if not keys:
        return {}
    rows = await session.execute(
        select(AlertFlap.integration_id, AlertFlap.dedup_key, AlertFlap.resolved_times).where(
            tuple_(AlertFlap.integration_id, AlertFlap.dedup_key).in_(list(keys))
        )
    )
    return {(r[0], r[1]): [datetime.fromisoformat(t) for t in r[2]] for r in rows}


async def _hold(session: AsyncSession, held: Mapping[int, FlapPolicy], now: datetime) -> None:
    """Keep these alerts open, flapping, and resolve each once it has been quiet for its window."""
    await session.execute(
        update(Alert).where(Alert.id.in_(sorted(held))).values(flapping=True, held_resolve_at=now),
        execution_options=_FAST,
    )
    for alert_id, policy in sorted(held.items()):
        window = policy.window if policy.enabled else FlapPolicy().window
        await engine.schedule(
            session=session,
            kind=TIMER,
            subject=str(alert_id),
            due_at=now + window,
            payload={"quiet_seconds": int(window.total_seconds())},
        )
