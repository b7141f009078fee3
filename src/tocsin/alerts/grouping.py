"""Alerts into incidents: attach or open, one timeline entry per incident per batch, mitigate and resolve.

After an intake batch is stored, `settle()` takes what it did to each alert:

1. routed alerts without an incident are grouped by (target service, grouping key); per group, one locked
   lookup of `alert_groups` says whether an open incident took an alert of that key within the service's
   window (attach) or not (open one, with priority inputs from the route and the service); alerts that
   join asking for a higher urgency than the incident has raise it (never lower it), and its priority
   follows unless a person overrode it;
2. each incident touched gets one timeline entry counting what its alerts did (repeats alone: at most one
   entry a minute, since the alert rows count every repeat);
3. an incident still new whose alert the sender acknowledged is acknowledged (tocsin.alerts.closing);
4. an incident whose alerts are now all resolved gets `mitigated_at`, and is resolved if its service's
   settings say `auto_resolve` (tocsin.alerts.closing).

All of it runs in the intake transaction.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine, column, select, table, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import closing, snapshot
from tocsin.alerts.adapters.base import AlertEvent, clamp
from tocsin.alerts.alert_settings import AlertSettings, service_tiers, settings_for
from tocsin.alerts.models import Alert, AlertGroup
from tocsin.alerts.routing import DEFAULT_TYPE, group_key, impact_of, urgency_of
from tocsin.alerts.summary import Did, Tally
from tocsin.alerts.triage import Decision
from tocsin.auth.permissions import SYSTEM
from tocsin.db import UTCDateTime, dialect_of, upsert_insert
from tocsin.errors import Invalid, NotFound
from tocsin.incidents import service as incidents
from tocsin.incidents.lifecycle import OPEN_STATES
from tocsin.incidents.models import EntryKind, SourceChannel

log = structlog.get_logger(__name__)

# The incidents table as the grouping lookup joins it (read-only; changes go through incidents.service).
_INCIDENTS = table(
    "incidents", column("id"), column("state"), column("mitigated_at", UTCDateTime()), column("urgency")
)
_TITLE_MAX = 300
# A group's last alert time is written at most this often: windows are minutes long, and a storm would
# otherwise rewrite the row in every batch.
_TOUCH_EVERY = timedelta(seconds=30)
# An incident's timeline tells of repeats (and nothing else) at most this often, per process: a sender
# repeating an alert thousands of times a second would otherwise write an entry with every commit.
REPEATS_EVERY = timedelta(minutes=1)
_repeat_entries: weakref.WeakKeyDictionary[Engine, dict[int, datetime]] = weakref.WeakKeyDictionary()

Key = tuple[int, str]


@dataclass(slots=True)
class Touch:
    """One alert changed by a batch; triggers carry the event and the triage decision they were stored by."""

    alert_id: int
    key: Key
    did: Did
    summary: str
    incident_id: int | None
    times: int = 1
    event: AlertEvent | None = None
    decision: Decision | None = None
    seen: int | None = None  # the alert's count after this batch, where known


@dataclass(slots=True)
class Batch:
    """What one transaction did to alerts, in order, for `settle()`."""

    touches: list[Touch] = field(default_factory=list)
    unsuppress: list[int] = field(default_factory=list)  # alert ids a maintenance window no longer holds
    unmitigate: set[int] = field(default_factory=set)  # mitigated incidents that new alerts joined
    opened_incidents: list[int] = field(default_factory=list)
    resolved_incidents: list[int] = field(default_factory=list)
    urgencies: dict[int, int] = field(default_factory=dict)  # the urgency of incidents alerts joined


@dataclass(slots=True)
class Prepared:
    """The open incidents a batch's routed triggers join, found before the alerts are stored, so that new
    alerts are inserted with their incident rather than updated afterwards. Read without a lock, maybe
    before the batch ahead commits: `recheck()` confirms it once that one has."""

    incident_of: dict[int, int] = field(default_factory=dict)  # id() of the event -> incident id
    stale: list[Key] = field(default_factory=list)  # joined groups whose last alert time is to be bumped


@dataclass(frozen=True, slots=True)
class _Group:
    incident_id: int | None
    last_alert_at: datetime
    state: str | None
    mitigated: bool
    urgency: int | None = None


async def settle(session: AsyncSession, batch: Batch, now: datetime) -> None:
    """Group, record and close incidents for what the batch did (see the module docstring)."""
    if batch.unsuppress:
        await session.execute(
            update(Alert)
            .where(Alert.id.in_(sorted(batch.unsuppress)))
            .values(suppressed_by=None, suppressed_reason=None),
            execution_options={"synchronize_session": False},
        )
    for incident_id in sorted(batch.unmitigate):  # the impact is back: no longer mitigated
        await incidents.update_incident(
            session=session, actor=SYSTEM, ref=incident_id, mitigated_at=None, now=now
        )
    await _attach(session, batch, now)
    await _raise_urgency(session, batch, now)
    await _record(session, batch.touches, now)
    await closing.acknowledge(
        session, {t.incident_id for t in batch.touches if t.did is Did.acknowledged and t.incident_id}, now
    )
    closed = await closing.mitigate(
        session, {t.incident_id for t in batch.touches if t.did is Did.resolved and t.incident_id}, now
    )
    batch.resolved_incidents += closed


def _group_of(alert: Key, event: AlertEvent, decision: Decision, settings: dict[int, AlertSettings]) -> Key:
    service_id = decision.route.service_id
    chosen = settings[service_id]
    if chosen.grouping_window_minutes == 0:  # no grouping: each alert its own incident
        return service_id, f"alert:{alert[0]}:{alert[1]}"[:255]
    return service_id, group_key(event.labels, event.summary, chosen.group_by)


def _joins(group: _Group, chosen: AlertSettings, now: datetime) -> bool:
    """Whether a new alert of the group joins its current incident: open, and took one within the window."""
    fresh = chosen.grouping_window_minutes > 0 and group.last_alert_at >= now - chosen.window
    return group.incident_id is not None and group.state in OPEN_STATES and fresh


async def prepare(
    session: AsyncSession, triggers: Sequence[tuple[int, AlertEvent, Decision]], now: datetime
) -> Prepared:
    """Find the incident each routed trigger would join (one read for the batch, no lock), and the groups
    whose last alert time `touch_groups` is to bump. Triggers whose group has no such incident are left to
    `settle()`, which opens one."""
    routed = [(i, e, d) for i, e, d in triggers if d.routed]
    if not routed:
        return Prepared()
    settings = await snapshot.settings(session, {d.route.service_id for _, _, d in routed}, settings_for)
    keys = {id(e): _group_of((i, e.dedup_key), e, d, settings) for i, e, d in routed}
    found = await _select_groups(session, sorted(set(keys.values())), lock=False)
    joined = {k: g for k, g in found.items() if _joins(g, settings[k[0]], now)}
    stale = [k for k, g in joined.items() if now - g.last_alert_at >= _TOUCH_EVERY]
    return Prepared(
        {event: g.incident_id for event, k in keys.items() if (g := joined.get(k)) and g.incident_id},
        stale,
    )


async def recheck(session: AsyncSession, batch: Batch) -> None:
    """Confirm the incidents new alerts were stored with, as they are now: one closed meanwhile (by the
    batch ahead, or another process) leaves its alerts to `settle()` to group anew; a mitigated one is
    no longer mitigated; the urgency read here is what `settle()` raises from."""
    joined = {t.incident_id for t in batch.touches if t.did is Did.triggered and t.incident_id is not None}
    if not joined:
        return
    stmt = (
        select(_INCIDENTS.c.id, _INCIDENTS.c.state, _INCIDENTS.c.mitigated_at, _INCIDENTS.c.urgency)
        .where(_INCIDENTS.c.id.in_(sorted(joined)))
        .order_by(_INCIDENTS.c.id)
    )
    if dialect_of(session) == "postgresql":
        # Locked, so that whoever closes one of them either has committed (it is seen closed here) or waits
        # for this commit (and then sees these alerts: resolving an incident resolves its open alerts).
        stmt = stmt.with_for_update(key_share=True)
    rows = await session.execute(stmt)
    open_now = {int(r[0]): r for r in rows if r[1] in OPEN_STATES}
    for t in batch.touches:
        if t.did is not Did.triggered or t.incident_id is None:
            continue
        now_open = open_now.get(t.incident_id)
        if now_open is None:
            t.incident_id = None
        elif now_open[2] is not None:
            batch.unmitigate.add(t.incident_id)
    batch.urgencies.update((i, r[3]) for i, r in open_now.items() if r[3] is not None)


async def touch_groups(session: AsyncSession, prepared: Prepared, now: datetime) -> None:
    """Bump the last alert time of the groups `prepare` found joined but not touched for a while."""
    if prepared.stale:
        await session.execute(
            update(AlertGroup)
            .where(tuple_(AlertGroup.service_id, AlertGroup.group_key).in_(prepared.stale))
            .values(last_alert_at=now),
            execution_options={"synchronize_session": False},
        )


def _groups_needed(batch: Batch, settings: dict[int, AlertSettings]) -> dict[Key, list[Touch]]:
    groups: dict[Key, list[Touch]] = defaultdict(list)
    for t in batch.touches:
        if t.incident_id is None and t.decision is not None and t.event is not None and t.decision.routed:
            groups[_group_of(t.key, t.event, t.decision, settings)].append(t)
    return groups


async def _attach(session: AsyncSession, batch: Batch, now: datetime) -> None:
    routed = {
        t.decision.route.service_id
        for t in batch.touches
        if t.incident_id is None and t.decision is not None and t.decision.routed
    }
    if not routed:
        return
    settings = await snapshot.settings(session, routed, settings_for)
    groups = _groups_needed(batch, settings)
    found = await _lock_groups(session, sorted(groups), now)
    tiers: dict[int, int] | None = None
    assigned: dict[int, int] = {}
    for key in groups:  # in arrival order (the rows are already locked, in key order)
        touches, group, chosen = groups[key], found[key], settings[key[0]]
        if _joins(group, chosen, now) and group.incident_id is not None:
            incident_id = group.incident_id
            if group.mitigated and incident_id not in batch.unmitigate:  # the impact is back
                await incidents.update_incident(
                    session=session, actor=SYSTEM, ref=incident_id, mitigated_at=None, now=now
                )
            if group.urgency is not None:
                batch.urgencies[incident_id] = group.urgency
        else:
            tiers = tiers if tiers is not None else await service_tiers(session, routed)
            incident_id = await _open(session, key[0], touches, chosen, tiers.get(key[0]), now)
            batch.opened_incidents.append(incident_id)
        assigned.update((t.alert_id, incident_id) for t in touches)
        if incident_id != group.incident_id or now - group.last_alert_at >= _TOUCH_EVERY:
            await session.execute(
                update(AlertGroup)
                .where(AlertGroup.service_id == key[0], AlertGroup.group_key == key[1])
                .values(incident_id=incident_id, last_alert_at=now)
            )
    by_incident: dict[int, list[int]] = defaultdict(list)
    for alert_id, incident_id in assigned.items():
        by_incident[incident_id].append(alert_id)
    for incident_id, alert_ids in sorted(by_incident.items()):
        await session.execute(
            update(Alert).where(Alert.id.in_(sorted(alert_ids))).values(incident_id=incident_id),
            execution_options={"synchronize_session": False},
        )
    for t in batch.touches:
        if t.incident_id is None and t.alert_id in assigned:
            t.incident_id = assigned[t.alert_id]


async def _select_groups(
    session: AsyncSession, keys: Sequence[Key], *, lock: bool = True
) -> dict[Key, _Group]:
    stmt = (
        select(
            AlertGroup.service_id,
            AlertGroup.group_key,
            AlertGroup.incident_id,
            AlertGroup.last_alert_at,
            _INCIDENTS.c.state,
            _INCIDENTS.c.mitigated_at,
            _INCIDENTS.c.urgency,
        )
        .outerjoin(_INCIDENTS, _INCIDENTS.c.id == AlertGroup.incident_id)
        .where(tuple_(AlertGroup.service_id, AlertGroup.group_key).in_(list(keys)))
        .order_by(AlertGroup.service_id, AlertGroup.group_key)
    )
    if lock and dialect_of(session) == "postgresql":  # concurrent batches of one key queue: one incident
        stmt = stmt.with_for_update(of=AlertGroup)
    return {
        (int(r[0]), str(r[1])): _Group(r[2], r[3], r[4], r[5] is not None, r[6])
        for r in await session.execute(stmt)
    }


async def _lock_groups(session: AsyncSession, keys: Sequence[Key], now: datetime) -> dict[Key, _Group]:
    """The group row of every key, created where missing, locked until commit (PostgreSQL)."""
    found = await _select_groups(session, keys)
    missing = [k for k in keys if k not in found]
    if missing:
        insert = upsert_insert(dialect_of(session))(AlertGroup).values(
            [{"service_id": s, "group_key": g, "incident_id": None, "last_alert_at": now} for s, g in missing]
        )
        await session.execute(insert.on_conflict_do_nothing(index_elements=["service_id", "group_key"]))
        found.update(await _select_groups(session, missing))
    return found


async def _raise_urgency(session: AsyncSession, batch: Batch, now: datetime) -> None:
    """Raise the urgency of incidents that new alerts asking for more joined (a warning storm turning
    critical); never lower it. Repeats of alerts already counted raise nothing (Alertmanager re-sends every
    firing alert, which would otherwise undo a person's choice again and again). The priority follows,
    unless a person overrode it."""
    joined = [  # new routed alerts that joined an incident found open (batch.urgencies: as read then)
        (t.incident_id, t.decision.route.service_id, t)
        for t in batch.touches
        if t.did is Did.triggered and t.incident_id in batch.urgencies and t.decision and t.decision.routed
    ]
    if not joined:
        return
    settings = await snapshot.settings(session, {service for _, service, _ in joined}, settings_for)
    asked: dict[int, int] = {}
    for incident_id, service, t in joined:
        if incident_id is not None:
            asked[incident_id] = min(asked.get(incident_id, 3), _urgency([t], settings[service]))
    for incident_id, urgency in sorted(asked.items()):
        if urgency >= batch.urgencies[incident_id]:  # what the batch read: nothing to raise
            continue
        try:  # compare with the locked row: another process may have raised it meanwhile
            incident = await incidents.get_incident_to_work(session=session, actor=SYSTEM, ref=incident_id)
        except NotFound:
            continue
        if incident.state in OPEN_STATES and urgency < incident.urgency:
            await incidents.update_incident(
                session=session, actor=SYSTEM, ref=incident_id, urgency=urgency, now=now
            )


def _urgency(touches: Sequence[Touch], chosen: AlertSettings) -> int:
    """The urgency alerts ask for: their route's, else the most severe alert's (1 is the most urgent)."""
    urgencies = [
        t.decision.route.urgency
        or (urgency_of(t.event.severity.value, chosen.severity_urgency) if t.event is not None else 3)
        for t in touches
        if t.decision is not None
    ]
    return min(urgencies, default=3)


async def _open(
    session: AsyncSession,
    service_id: int,
    touches: Sequence[Touch],
    chosen: AlertSettings,
    tier: int | None,
    now: datetime,
) -> int:
    """Open the incident for a group's first alerts; the priority inputs come from the route, else from
    the most severe alert (urgency) and the service (impact)."""
    first = touches[0]
    assert first.event is not None and first.decision is not None
    route = first.decision.route
    events = [t.event for t in touches if t.event is not None]
    urgency = _urgency(touches, chosen)
    impact = route.impact or impact_of(tier, chosen.default_impact)
    started = [e.occurred_at for e in events if e.occurred_at is not None and e.occurred_at <= now]
    more = f" and {len(touches) - 1} more alert(s)" if len(touches) > 1 else ""

    async def create(type_key: str) -> int:
        assert first.event is not None
        incident = await incidents.create_incident(
            session=session,
            actor=SYSTEM,
            title=clamp(first.event.summary or f"Alert {first.key[1]}", _TITLE_MAX),
            type_key=type_key,
            description=f"Opened by alert {first.event.summary!r} (key {first.key[1]}){more}.",
            impact=impact,
            urgency=urgency,
            service_ids=[service_id],
            source_channel=SourceChannel.alert,
            detected_at=now,
            impact_started_at=min(started) if started else None,
            now=now,
        )
        return incident.id

    try:
        return await create(route.type_key or DEFAULT_TYPE)
    except Invalid as exc:  # refused before anything was written, e.g. the rule's type was deactivated
        log.warning("alert incident refused; opening it with the default type", reason=exc.detail)
        return await create(DEFAULT_TYPE)


async def _record(session: AsyncSession, touches: Sequence[Touch], now: datetime) -> None:
    tallies: dict[int, Tally] = defaultdict(Tally)
    for t in touches:
        if t.incident_id is not None:
            tallies[t.incident_id].add(t.did, t.alert_id, t.summary, t.times, t.seen)
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    recent = _repeat_entries.setdefault(engine, {})
    for incident_id, tally in sorted(tallies.items()):
        last = recent.get(incident_id)
        if tally.only(Did.repeated) and last is not None and timedelta(0) <= now - last < REPEATS_EVERY:
            continue  # the alerts' own counts keep every repeat; the timeline hears of them once a minute
        await incidents.add_system_entry(
            session=session,
            incident_id=incident_id,
            kind=EntryKind.alert,
            text=tally.text(),
            data=tally.data(),
            now=now,
        )
        if Did.repeated in tally.alerts:
            if len(recent) > 10_000:
                recent.clear()
            recent[incident_id] = now
