"""Applying alert events to the alerts table in bulk, de-duplicated by the open-alert key.

A trigger on an open key updates that alert (count, last seen, summary, severity, labels...), a trigger on a
key with no open alert opens one, acknowledge and resolve on a key with no open alert do nothing. The partial
unique index on (integration_id, dedup_key) WHERE status != 'resolved' is the arbiter of INSERT ... ON
CONFLICT, so two processes (or Alertmanager's HA peers) delivering the same alert at once still make one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, literal, update
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import bulk_pg, grouping, snapshot, triage
from tocsin.alerts.adapters.base import Action, AlertEvent
from tocsin.alerts.alert_settings import AlertSettings, settings_for
from tocsin.alerts.dedup import Step, plan
from tocsin.alerts.flapping import FlapPolicy
from tocsin.alerts.grouping import Batch, Prepared, Touch
from tocsin.alerts.heartbeat import HEARTBEAT_TIMER, heartbeat_due
from tocsin.alerts.models import Alert, AlertStatus, Integration, SeenEvent
from tocsin.alerts.options import HeartbeatOptions
from tocsin.alerts.resolving import resolve
from tocsin.alerts.summary import Did
from tocsin.alerts.triage import Decision, Triage
from tocsin.alerts.upsert import upsert_rows
from tocsin.db import UTCDateTime, dialect_of, upsert_insert
from tocsin.engine import service as engine

_ALERTS = cast(Table, Alert.__table__)
_SEEN = cast(Table, SeenEvent.__table__)
REROUTE_DELAY = timedelta(seconds=10)
_CHUNK = 1000  # keys per statement: well under SQLite's and PostgreSQL's bound-parameter limits


@dataclass(frozen=True, slots=True)
class Delivery:
    """The events of one request (or mail, or check-in) for one integration; applied all or nothing."""

    integration_id: int
    events: Sequence[AlertEvent]
    checkin: bool = False  # a heartbeat check-in also records its time on the integration


@dataclass(slots=True)
class IngestResult:
    """Which alerts a batch opened or changed (ids), what it dropped, and which incidents it opened or
    resolved."""

    opened: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    acknowledged: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    repeats: int = 0  # CloudEvents seen before
    dropped: int = 0  # triggers a routing rule dropped
    suppressed: list[int] = field(default_factory=list)  # alerts opened suppressed (maintenance, rule)
    flapping: list[int] = field(default_factory=list)  # alerts whose resolve was held: flapping
    incidents_opened: list[int] = field(default_factory=list)
    incidents_resolved: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Context:
    """What a batch is judged by: the triage inputs, each trigger's decision, the service settings, and the
    incidents its triggers join."""

    triage: Triage
    decisions: dict[int, Decision] = field(default_factory=dict)  # by id() of the event
    settings: dict[int, AlertSettings] = field(default_factory=dict)
    prepared: Prepared = field(default_factory=Prepared)

    def decision(self, event: AlertEvent) -> Decision | None:
        return self.decisions.get(id(event))

    async def flap_policy(self, session: AsyncSession, integration_id: int) -> FlapPolicy:
        """The integration's own flapping thresholds, else its service's."""
        origin = self.triage.origins[integration_id]
        if origin.service_id not in self.settings:
            self.settings.update(await snapshot.settings(session, [origin.service_id], settings_for))
        policy = self.settings[origin.service_id].flap
        options = origin.options
        return FlapPolicy(
            policy.cycles if options.flap_cycles is None else options.flap_cycles,
            policy.window
            if options.flap_window_minutes is None
            else timedelta(minutes=options.flap_window_minutes),
        )


async def ingest(
    *, session: AsyncSession, integration_id: int, events: Sequence[AlertEvent], now: datetime
) -> IngestResult:
    """Apply one integration's events, in order, within the caller's unit of work."""
    return await ingest_many(session=session, deliveries=[Delivery(integration_id, events)], now=now)


class Turn:
    """A batch's place in the intake writer's pipeline (tocsin.alerts.writer), which this default, for a
    batch on its own, ignores."""

    async def begin(self, session: AsyncSession) -> None:
        """Hold this batch's place until it commits or rolls back (the first statement of the batch)."""

    def alerts_written(self) -> None:
        """This batch has written its alert rows (or failed to): the next batch may start."""

    async def settle(self, session: AsyncSession) -> None:
        """Wait until the batch ahead has committed, or raise Restart if it rolled back."""


class Restart(Exception):
    """The batch ahead rolled back: this one rolls back too, and is applied again after that one's
    deliveries have been retried, so that deliveries are still applied in the order they arrived."""


ALONE = Turn()


async def ingest_many(
    *,
    session: AsyncSession,
    deliveries: Sequence[Delivery],
    now: datetime,
    routing: bool = True,
    turn: Turn = ALONE,
) -> IngestResult:
    """Apply many deliveries as if one after the other, in a few bulk statements rather than one per event,
    then route and group what they did. `routing=False` only stores the alerts (no rules, windows,
    flapping or incidents): the intake writer's last resort when routing itself fails, so that what a
    sender delivered is never refused for it."""
    await turn.begin(session)
    result = IngestResult()
    events = [(d.integration_id, e) for d in deliveries for e in d.events]
    events = await _drop_repeats(session, events, now, result)
    checked_in = sorted({d.integration_id for d in deliveries if d.checkin})
    if not events and not checked_in:
        turn.alerts_written()
        return result
    triggers = routing and any(e.action is Action.trigger for _, e in events)
    ctx = _Context(await triage.load(session, {i for i, _ in events} | set(checked_in), now, rules=triggers))
    if triggers:
        events = _judge(ctx, events, result)
        judged = [(i, e, d) for i, e in events if (d := ctx.decision(e)) is not None]
        ctx.prepared = await grouping.prepare(session, judged, now)
    batch = Batch()
    # Triggers are upserts, which wait for the batch ahead's uncommitted alert rows; acknowledging and
    # resolving read alert rows, which would not see them: those wait until the batch ahead has committed.
    settled = False
    try:
        for steps in plan(events):
            await _trigger(session, ctx, [s for s in steps if s.action is Action.trigger], now, result, batch)
            if not settled and any(s.action is not Action.trigger for s in steps):
                await turn.settle(session)
                settled = True
            await _acknowledge(
                session, [s.key for s in steps if s.action is Action.acknowledge], now, result, batch
            )
            resolving = [s.key for s in steps if s.action is Action.resolve]
            if resolving:
                policies = {k[0]: await ctx.flap_policy(session, k[0]) for k in resolving} if routing else {}
                outcome = await resolve(session, resolving, now, policies)
                result.resolved += [t.alert_id for t in outcome if t.did is Did.resolved]
                result.flapping += [t.alert_id for t in outcome if t.did is Did.flapping]
                batch.touches += outcome
    finally:
        turn.alerts_written()
    if not settled:
        await turn.settle(session)
    if checked_in:
        await _checked_in(session, ctx.triage, checked_in, now)
    if routing:
        await grouping.recheck(session, batch)
        await grouping.touch_groups(session, ctx.prepared, now)
        await grouping.settle(session, batch, now)
        result.incidents_opened, result.incidents_resolved = batch.opened_incidents, batch.resolved_incidents
    elif result.opened or result.updated:  # route them as soon as routing works again
        await engine.schedule(
            session=session, kind=triage.REROUTE_TIMER, subject="unrouted", due_at=now + REROUTE_DELAY
        )
    return result


def _judge(
    ctx: _Context, events: list[tuple[int, AlertEvent]], result: IngestResult
) -> list[tuple[int, AlertEvent]]:
    """Decide each trigger's route; drop the ones a rule drops."""
    kept = []
    for integration_id, event in events:
        if event.action is Action.trigger:
            decision = ctx.triage.decide(integration_id, event)
            if decision.dropped:
                result.dropped += 1
                continue
            ctx.decisions[id(event)] = decision
        kept.append((integration_id, event))
    return kept


async def _checked_in(
    session: AsyncSession, found: Triage, integration_ids: list[int], now: datetime
) -> None:
    """Record heartbeat check-ins and move each one's deadline timer."""
    await session.execute(
        update(Integration).where(Integration.id.in_(integration_ids)).values(last_checkin_at=now)
    )
    for integration_id in integration_ids:
        origin = found.origins.get(integration_id)
        if origin is not None and isinstance(origin.options, HeartbeatOptions):
            due = heartbeat_due(
                now,
                timedelta(seconds=origin.options.interval_seconds),
                timedelta(seconds=origin.options.grace_seconds),
            )
            await engine.schedule(
                session=session, kind=HEARTBEAT_TIMER, subject=str(integration_id), due_at=due
            )


async def _drop_repeats(
    session: AsyncSession, events: list[tuple[int, AlertEvent]], now: datetime, result: IngestResult
) -> list[tuple[int, AlertEvent]]:
    """Remember each CloudEvent's (source, id) and drop the events already remembered."""
    wanted = {(i, *e.once) for i, e in events if e.once is not None}
    if not wanted:
        return events
    fresh: set[tuple[int, str, str]] = set()
    rows = [{"integration_id": i, "source": s, "event_id": e, "seen_at": now} for i, s, e in sorted(wanted)]
    for start in range(0, len(rows), _CHUNK):
        insert = upsert_insert(dialect_of(session))(_SEEN).values(rows[start : start + _CHUNK])
        stmt = insert.on_conflict_do_nothing(
            index_elements=["integration_id", "source", "event_id"]
        ).returning(_SEEN.c.integration_id, _SEEN.c.source, _SEEN.c.event_id)
        fresh.update((r[0], r[1], r[2]) for r in await session.execute(stmt))
    kept: list[tuple[int, AlertEvent]] = []
    for integration_id, event in events:
        if event.once is None:
            kept.append((integration_id, event))
        elif (ident := (integration_id, *event.once)) in fresh:
            fresh.discard(ident)  # the first of repeats within this batch stays, the others go
            kept.append((integration_id, event))
        else:
            result.repeats += 1
    return kept


def _row(step: Step, decision: Decision | None, incident_id: int | None, now: datetime) -> dict[str, Any]:
    event = step.event
    return {
        "integration_id": step.integration_id,
        "dedup_key": event.dedup_key,
        "status": AlertStatus.triggered.value,
        "summary": event.summary,
        "severity": event.severity.value,
        "source": event.source,
        "labels": event.labels,
        "links": event.links,
        "details": event.details,
        "raw": event.raw,
        "count": step.times,
        "started_at": step.first.occurred_at,
        "first_seen_at": now,
        "last_seen_at": now,
        "suppressed_by": decision.suppressed_by.value if decision and decision.suppressed_by else None,
        "suppressed_reason": decision.reason if decision else None,
        "flapping": False,
        "incident_id": incident_id,
    }


async def _trigger(
    session: AsyncSession,
    ctx: _Context,
    steps: list[Step],
    now: datetime,
    result: IngestResult,
    batch: Batch,
) -> None:
    if not steps:
        return
    by_key = {s.key: s for s in steps}
    # Sorted by key, so concurrent writers on PostgreSQL lock rows in the same order and never deadlock.
    joins = ctx.prepared.incident_of
    rows = [
        _row(s, ctx.decision(s.event), joins.get(id(s.event)), now)
        for s in sorted(steps, key=lambda s: s.key)
    ]
    dialect = dialect_of(session)
    if dialect == "postgresql" and len(rows) >= bulk_pg.COPY_FROM:
        returned = await bulk_pg.copy_upsert(session, rows, now)
    else:
        returned = await upsert_rows(session, rows)
    for alert_id, integration_id, key, count, incident_id, suppressed_by, flapping in returned:
        step = by_key[(integration_id, key)]
        decision = ctx.decision(step.event)
        touch = Touch(alert_id, step.key, Did.triggered, step.event.summary, incident_id, step.times)
        touch.event, touch.decision, touch.seen = step.event, decision, count
        # A new alert starts at the run's length; an existing one had at least one occurrence before.
        if count == step.times:
            result.opened.append(alert_id)
            if suppressed_by is not None:
                result.suppressed.append(alert_id)
        else:
            result.updated.append(alert_id)
            if flapping:
                continue  # a flapping alert's repeats are noise: no timeline entry, no notification
            touch.did = Did.repeated
            if suppressed_by is not None and decision is not None and decision.routed:
                batch.unsuppress.append(alert_id)  # the window that held it is over
        batch.touches.append(touch)


async def _acknowledge(
    session: AsyncSession, keys: list[tuple[int, str]], now: datetime, result: IngestResult, batch: Batch
) -> None:
    keys = sorted(keys)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        stmt = (
            update(_ALERTS)
            # Only a change counts: acknowledging again is a no-op, so a sender repeating it does not
            # re-acknowledge an incident that was reassigned or whose acknowledgement timed out meanwhile.
            .where(
                bulk_pg.keys_matching(session, _ALERTS, chunk),
                _ALERTS.c.status == AlertStatus.triggered.value,
            )
            .values(
                status=AlertStatus.acknowledged.value,
                acknowledged_at=func.coalesce(_ALERTS.c.acknowledged_at, literal(now, UTCDateTime())),
            )
            .returning(
                _ALERTS.c.id,
                _ALERTS.c.integration_id,
                _ALERTS.c.dedup_key,
                _ALERTS.c.summary,
                _ALERTS.c.incident_id,
            )
        )
        for alert_id, integration_id, key, summary, incident_id in await session.execute(stmt):
            result.acknowledged.append(alert_id)
            batch.touches.append(
                Touch(alert_id, (integration_id, key), Did.acknowledged, summary, incident_id)
            )
