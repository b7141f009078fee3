"""Opening and editing incident records: derived priority and overrides, extra fields, times, services."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import Actor, Can
from tocsin.db import utcnow
from tocsin.errors import Forbidden, Invalid, NotFound
from tocsin.incidents import matrix, sla_clocks
from tocsin.incidents.configuration import TypeFacts, get_matrix, type_facts
from tocsin.incidents.fields import validate_extra
from tocsin.incidents.models import (
    EntryKind,
    Incident,
    IncidentService,
    IncidentState,
    MajorStatus,
    SourceChannel,
)
from tocsin.incidents.store import (
    UNSET,
    Unset,
    existing_services,
    existing_users,
    load_to_act,
    new_services,
    record,
    record_creation,
    remember_new,
    user_who_can_work,
)
from tocsin.incidents.workflow import link_parent

CLOCK_SKEW = timedelta(minutes=5)  # how far in the future a reported timestamp may be


def snapshot(i: Incident) -> dict[str, Any]:
    """The incident's own fields as the audit log keeps them."""
    return {
        "title": i.title,
        "description": i.description,
        "type_key": i.type_key,
        "category": i.category,
        "impact": i.impact,
        "urgency": i.urgency,
        "priority": i.priority,
        "priority_overridden": i.priority_overridden,
        "priority_override_reason": i.priority_override_reason,
        "state": i.state,
        "confidential": i.confidential,
        "team_id": i.team_id,
        "assignee_id": i.assignee_id,
        "reporter_id": i.reporter_id,
        "source_channel": i.source_channel,
        "parent_id": i.parent_id,
        "extra": i.extra,
        "impact_started_at": i.impact_started_at,
        "detected_at": i.detected_at,
        "reported_at": i.reported_at,
    }


async def _usable_type(session: AsyncSession, key: str) -> TypeFacts:
    try:
        itype = await type_facts(session=session, key=key)
    except NotFound as exc:
        raise Invalid(f"type_key: {exc.detail}") from None
    if not itype.active:
        raise Invalid(f"type_key: incident type {key!r} is inactive; choose an active type")
    return itype


async def _checked_extra(
    session: AsyncSession, itype: TypeFacts, values: Mapping[str, Any]
) -> dict[str, Any]:
    checked = validate_extra(list(itype.fields), values, type_key=itype.key)
    await existing_users(session, checked.person_ids, "extra")
    return checked.values


def _override_reason(priority: int, reason: str | None) -> str:
    if priority not in matrix.PRIORITIES:
        raise Invalid("priority is 1 (critical) to 4 (low)")
    if reason is None or not reason.strip():
        raise Invalid("priority_reason: overriding the derived priority needs a reason, which is audited")
    return reason.strip()


def _check_times(i: Incident, now: datetime) -> None:
    named = {
        "impact_started_at": i.impact_started_at,
        "detected_at": i.detected_at,
        "reported_at": i.reported_at,
        "mitigated_at": i.mitigated_at,
    }
    future = [k for k, v in named.items() if v is not None and v > now + CLOCK_SKEW]
    if future:
        raise Invalid(f"{', '.join(future)}: a time in the future; give when it actually happened")
    started = i.impact_started_at
    for later in ("detected_at", "mitigated_at"):
        value = named[later]
        if started is not None and value is not None and value < started:
            raise Invalid(f"{later} is before impact_started_at; the impact must start first")


async def _check_people(
    session: AsyncSession, actor: Actor, assignee_id: int | None, reporter_id: int | None
) -> None:
    if assignee_id is not None:
        await user_who_can_work(session, assignee_id, "assignee_id")
    if reporter_id is not None and reporter_id != actor.user_id:
        await existing_users(session, [reporter_id], "reporter_id")


async def create_incident(
    *,
    session: AsyncSession,
    actor: Actor,
    title: str,
    type_key: str = "it_service",
    description: str = "",
    category: str | None = None,
    impact: int = 3,
    urgency: int = 3,
    priority: int | None = None,
    priority_reason: str | None = None,
    confidential: bool | None = None,
    team_id: int | None = None,
    assignee_id: int | None = None,
    reporter_id: int | None = None,
    source_channel: SourceChannel = SourceChannel.web,
    service_ids: Sequence[int] = (),
    parent: str | int | None = None,
    extra: Mapping[str, Any] | None = None,
    impact_started_at: datetime | None = None,
    detected_at: datetime | None = None,
    reported_at: datetime | None = None,
    now: datetime | None = None,
) -> Incident:
    """Open an incident with its priority derived from impact x urgency (or overridden with a reason).

    Reporters may file incidents; routing (team, assignee), overrides, parents, another reporter or lowering
    the type's confidentiality need a role that works incidents. The reporter defaults to the actor.
    """
    if not actor.can(Can.report_incident):
        raise Forbidden(f"your role ({actor.role}) may not report incidents")
    now = now or utcnow()
    itype = await _usable_type(session, type_key)
    reporter_id = actor.user_id if reporter_id is None else reporter_id
    given = {"team_id": team_id, "assignee_id": assignee_id, "priority": priority, "parent": parent}
    elevated = [name for name, value in given.items() if value is not None]
    elevated += ["reporter_id"] if reporter_id != actor.user_id else []
    elevated += ["confidential"] if confidential is False and itype.confidential_default else []
    if elevated and not actor.can(Can.work_incidents):
        raise Forbidden(
            f"your role ({actor.role}) may not set {', '.join(elevated)} when reporting an incident"
        )
    derived = matrix.derive(await get_matrix(session=session), impact, urgency)
    if priority is None and priority_reason is not None:
        raise Invalid("priority_reason goes with priority; send both to override the derived priority")
    reason = _override_reason(priority, priority_reason) if priority is not None else None
    services = await existing_services(session, service_ids, team_id=team_id)
    await _check_people(session, actor, assignee_id, reporter_id)
    incident = Incident(
        title=title,
        description=description,
        type_key=itype.key,
        category=category,
        impact=impact,
        urgency=urgency,
        priority=priority if priority is not None else derived,
        priority_overridden=priority is not None,
        priority_override_reason=reason,
        state=IncidentState.new,
        major_status=MajorStatus.none,
        confidential=itype.confidential_default if confidential is None else confidential,
        team_id=team_id,
        assignee_id=assignee_id,
        reporter_id=reporter_id,
        source_channel=SourceChannel(source_channel),
        extra=await _checked_extra(session, itype, extra or {}),
        impact_started_at=impact_started_at,
        detected_at=detected_at,
        reported_at=reported_at or now,
        created_at=now,
        updated_at=now,
        reassignment_count=0,
        reopen_count=0,
    )
    _check_times(incident, now)
    # Known before the row is written, so that starting the clocks (an event listener) changes nothing.
    incident.sla_status = await sla_clocks.opening_status(session, incident, services)
    session.add(incident)
    await session.flush()
    # The rest is written with plain inserts: nothing in this unit of work reads these rows back as objects.
    if services:
        await session.execute(
            _INSERT_SERVICES, [{"incident_id": incident.id, "service_id": s} for s in services]
        )
    remember_new(session, incident.id, services)
    await record_creation(session, incident, actor, now, snapshot(incident) | {"service_ids": services})
    if parent is not None:
        await link_parent(session, actor, incident, parent, now)
        await session.flush()
    return incident


_INSERT_SERVICES = insert(cast(Table, IncidentService.__table__))


async def update_incident(
    *,
    session: AsyncSession,
    actor: Actor,
    ref: str | int,
    title: str | Unset = UNSET,
    description: str | Unset = UNSET,
    category: str | Unset | None = UNSET,
    confidential: bool | Unset = UNSET,
    impact: int | Unset = UNSET,
    urgency: int | Unset = UNSET,
    priority: int | Unset | None = UNSET,
    priority_reason: str | Unset | None = UNSET,
    extra: Mapping[str, Any] | Unset = UNSET,
    service_ids: Sequence[int] | Unset = UNSET,
    impact_started_at: datetime | Unset | None = UNSET,
    detected_at: datetime | Unset | None = UNSET,
    mitigated_at: datetime | Unset | None = UNSET,
    parent: str | int | Unset | None = UNSET,
    now: datetime | None = None,
) -> Incident:
    """Change what was given (UNSET leaves a field alone; None clears it where that makes sense).

    priority=<n> overrides the derived priority and needs priority_reason; priority=None drops the override
    and derives it again. `extra` is a merge patch (a null value removes that field) re-validated in full.
    """
    now = now or utcnow()
    incident = (await load_to_act(session, actor, ref)).incident
    plain = {"title": title, "description": description, "category": category, "confidential": confidential}
    await _edit(session, actor, incident, {k: v for k, v in plain.items() if v is not UNSET}, now)
    await _edit_priority(session, actor, incident, impact, urgency, priority, priority_reason, now)
    if extra is not UNSET:
        await _edit_extra(session, actor, incident, extra, now)
    times = {"impact_started_at": impact_started_at, "detected_at": detected_at, "mitigated_at": mitigated_at}
    await _edit_times(session, actor, incident, {k: v for k, v in times.items() if v is not UNSET}, now)
    if service_ids is not UNSET:
        await _edit_services(session, actor, incident, service_ids, now)
    if parent is not UNSET:
        await link_parent(session, actor, incident, parent, now)
    await session.flush()
    return incident


async def _edit(
    session: AsyncSession, actor: Actor, incident: Incident, changes: dict[str, Any], now: datetime
) -> None:
    before = {k: getattr(incident, k) for k in changes if getattr(incident, k) != changes[k]}
    if not before:
        return
    for k in before:
        setattr(incident, k, changes[k])
    after = {k: changes[k] for k in before}
    text = "Edited " + ", ".join(before)
    if "confidential" in before:
        text += " (now confidential)" if incident.confidential else " (no longer confidential)"
    record(
        session, incident, actor, EntryKind.edited, text, now=now, action="update", before=before, after=after
    )


async def _edit_priority(
    session: AsyncSession,
    actor: Actor,
    incident: Incident,
    impact: int | Unset,
    urgency: int | Unset,
    priority: int | Unset | None,
    reason: str | Unset | None,
    now: datetime,
) -> None:
    keys = ("impact", "urgency", "priority", "priority_overridden", "priority_override_reason")
    before = {k: getattr(incident, k) for k in keys}
    if priority is UNSET and reason is not UNSET:
        raise Invalid("priority_reason goes with priority: send both to override, or priority null to clear")
    if impact is not UNSET:
        incident.impact = impact
    if urgency is not UNSET:
        incident.urgency = urgency
    if priority is not UNSET:
        incident.priority_overridden = priority is not None
        incident.priority_override_reason = (
            None if priority is None else _override_reason(priority, None if reason is UNSET else reason)
        )
        if priority is not None:
            incident.priority = priority
    if not incident.priority_overridden:
        incident.priority = matrix.derive(
            await get_matrix(session=session), incident.impact, incident.urgency
        )
    after = {k: getattr(incident, k) for k in keys}
    if after == before:
        return
    text = (
        f"Impact {incident.impact}, urgency {incident.urgency}: "
        f"priority {matrix.label(before['priority'])} -> {matrix.label(incident.priority)}"
    )
    if incident.priority_overridden:
        text += f" (overridden: {incident.priority_override_reason})"
    elif before["priority_overridden"]:
        text += " (override removed, derived from the matrix)"
    record(
        session,
        incident,
        actor,
        EntryKind.priority_changed,
        text,
        now=now,
        action="priority",
        before=before,
        after=after,
    )


async def _edit_extra(
    session: AsyncSession, actor: Actor, incident: Incident, patch: Mapping[str, Any], now: datetime
) -> None:
    merged = {k: v for k, v in {**incident.extra, **patch}.items() if v is not None}
    itype = await type_facts(session=session, key=incident.type_key)
    clean = await _checked_extra(session, itype, merged)
    if clean == incident.extra:
        return
    before, incident.extra = incident.extra, clean
    changed = sorted(k for k in set(before) | set(clean) if before.get(k) != clean.get(k))
    record(
        session,
        incident,
        actor,
        EntryKind.edited,
        "Edited " + ", ".join(f"extra.{k}" for k in changed),
        now=now,
        action="update",
        before={"extra": before},
        after={"extra": clean},
    )


async def _edit_times(
    session: AsyncSession,
    actor: Actor,
    incident: Incident,
    changes: dict[str, datetime | None],
    now: datetime,
) -> None:
    before = {k: getattr(incident, k) for k in changes if getattr(incident, k) != changes[k]}
    if not before:
        return
    for k in before:
        setattr(incident, k, changes[k])
    _check_times(incident, now)
    text = "; ".join(f"{k} set to {v.isoformat()}" if (v := changes[k]) else f"{k} cleared" for k in before)
    record(
        session,
        incident,
        actor,
        EntryKind.timestamp_set,
        text,
        now=now,
        action="timestamps",
        before=before,
        after={k: changes[k] for k in before},
    )


async def _edit_services(
    session: AsyncSession, actor: Actor, incident: Incident, service_ids: Sequence[int], now: datetime
) -> None:
    new = await existing_services(session, service_ids)
    old = sorted(
        await session.scalars(
            select(IncidentService.service_id).where(IncidentService.incident_id == incident.id)
        )
    )
    if new == old:
        return
    await session.execute(delete(IncidentService).where(IncidentService.incident_id == incident.id))
    session.add_all(IncidentService(incident_id=incident.id, service_id=s) for s in new)
    if new_services(session, incident.id) is not None:  # created in this unit of work: keep its note true
        remember_new(session, incident.id, new)
    added, removed = sorted(set(new) - set(old)), sorted(set(old) - set(new))
    text = "Services: " + "; ".join(
        p for p in (added and f"added {added}", removed and f"removed {removed}") if p
    )
    record(
        session,
        incident,
        actor,
        EntryKind.services_changed,
        text,
        now=now,
        action="services",
        before={"service_ids": old},
        after={"service_ids": new},
    )
