"""Schedules and their layers: audited writes, and turning stored rows into rotation values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit import service as audit
from tocsin.auth.permissions import Actor
from tocsin.db import utcnow
from tocsin.errors import Conflict, Invalid, NotFound
from tocsin.oncall import access, checks, rotation
from tocsin.oncall.checks import UNSET, Unset
from tocsin.oncall.models import (
    EscalationPolicy,
    EscalationStep,
    EscalationTarget,
    Layer,
    LayerMember,
    Override,
)
from tocsin.oncall.models import Schedule as ScheduleRow
from tocsin.oncall.rotation import ShiftUnit, Window
from tocsin.oncall.zones import load_zone

MAX_PARTICIPANTS = 200


def schedule_view(s: ScheduleRow) -> dict[str, object]:
    return {"name": s.name, "team_id": s.team_id, "time_zone": s.time_zone, "description": s.description}


def layer_view(layer: Layer) -> dict[str, object]:
    return {
        "schedule_id": layer.schedule_id,
        "position": layer.position,
        "name": layer.name,
        "time_zone": layer.time_zone,
        "rotation_start": layer.rotation_start.isoformat(),
        "shift_length": layer.shift_length,
        "shift_unit": layer.shift_unit,
        "participants": layer.participants,
        "restrictions": layer.restrictions,
    }


# --- reading rows -------------------------------------------------------------------------------------


async def load_schedule(*, session: AsyncSession, schedule_id: int) -> ScheduleRow:
    """The schedule with its layers and participants, without a permission check (for other services)."""
    found = await session.get(ScheduleRow, schedule_id)
    if found is None:
        raise NotFound(f"no on-call schedule with id {schedule_id}")
    return found


async def get_schedule(*, session: AsyncSession, actor: Actor, schedule_id: int) -> ScheduleRow:
    access.require_read(actor)
    return await load_schedule(session=session, schedule_id=schedule_id)


async def list_schedules(
    *, session: AsyncSession, actor: Actor, team_id: int | None = None
) -> list[ScheduleRow]:
    access.require_read(actor)
    stmt = select(ScheduleRow).order_by(ScheduleRow.name)
    if team_id is not None:
        stmt = stmt.where(ScheduleRow.team_id == team_id)
    return list(await session.scalars(stmt))


async def overrides_between(
    *, session: AsyncSession, schedule_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, list[Override]]:
    """Each schedule's overrides overlapping [start, end), oldest first (so the newest wins)."""
    out: dict[int, list[Override]] = {sid: [] for sid in schedule_ids}
    if schedule_ids:
        rows = await session.scalars(
            select(Override)
            .where(
                Override.schedule_id.in_(schedule_ids),
                Override.ends_at > start,
                Override.starts_at < end,
            )
            .order_by(Override.id)
        )
        for o in rows:
            out[o.schedule_id].append(o)
    return out


def to_rotation(schedule: ScheduleRow, overrides: Sequence[Override]) -> rotation.Schedule:
    """The pure value the rotation math works on (layers inherit the schedule's zone unless they set one)."""
    layers = tuple(
        rotation.Layer(
            participants=tuple(layer.participants),
            start=layer.rotation_start,
            zone=load_zone(layer.time_zone or schedule.time_zone),
            shift_length=layer.shift_length,
            unit=ShiftUnit(layer.shift_unit),
            restrictions=tuple(Window.from_json(w) for w in layer.restrictions),
            name=layer.name,
            id=layer.id,
        )
        for layer in sorted(schedule.layers, key=lambda la: la.position)
    )
    return rotation.Schedule(
        layers, tuple(rotation.Override(o.user_id, o.starts_at, o.ends_at, o.id) for o in overrides)
    )


# --- schedules --------------------------------------------------------------------------------------


async def _name_free(session: AsyncSession, name: str, schedule_id: int | None = None) -> None:
    other = await session.scalar(select(ScheduleRow.id).where(ScheduleRow.name == name))
    if other is not None and other != schedule_id:
        raise Conflict(f"a schedule named {name!r} already exists; choose another name")


async def create_schedule(
    *,
    session: AsyncSession,
    actor: Actor,
    name: str,
    time_zone: str = "UTC",
    team_id: int | None = None,
    description: str = "",
) -> ScheduleRow:
    await access.require_write(session=session, actor=actor, team_id=team_id, what="this team's schedules")
    checks.zone("time_zone", time_zone)
    await checks.team(session, "team_id", team_id)
    await _name_free(session, name)
    schedule = ScheduleRow(
        name=name,
        team_id=team_id,
        time_zone=time_zone,
        description=description,
        created_at=utcnow(),
        layers=[],
    )
    session.add(schedule)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="schedule.create",
        entity_type="schedule",
        entity_id=schedule.id,
        after=schedule_view(schedule),
    )
    return schedule


async def update_schedule(
    *,
    session: AsyncSession,
    actor: Actor,
    schedule_id: int,
    name: str | None = None,
    time_zone: str | None = None,
    team_id: int | Unset | None = UNSET,
    description: str | None = None,
) -> ScheduleRow:
    schedule = await load_schedule(session=session, schedule_id=schedule_id)
    await access.require_write(session=session, actor=actor, team_id=schedule.team_id, what="this schedule")
    before = schedule_view(schedule)
    if not isinstance(team_id, Unset) and team_id != schedule.team_id:
        await access.require_write(
            session=session, actor=actor, team_id=team_id, what="schedules of the team you are moving it to"
        )
        await checks.team(session, "team_id", team_id)
        schedule.team_id = team_id
    if name is not None:
        await _name_free(session, name, schedule.id)
        schedule.name = name
    if time_zone is not None:
        schedule.time_zone = checks.zone("time_zone", time_zone)
    if description is not None:
        schedule.description = description
    audit.record(
        session=session,
        actor=actor.ref,
        action="schedule.update",
        entity_type="schedule",
        entity_id=schedule.id,
        before=before,
        after=schedule_view(schedule),
    )
    return schedule


async def delete_schedule(*, session: AsyncSession, actor: Actor, schedule_id: int) -> None:
    """Delete a schedule no escalation policy pages (409 naming the policies otherwise)."""
    schedule = await load_schedule(session=session, schedule_id=schedule_id)
    await access.require_write(session=session, actor=actor, team_id=schedule.team_id, what="this schedule")
    using = list(
        await session.scalars(
            select(EscalationPolicy.name)
            .join(EscalationStep)
            .join(EscalationTarget)
            .where(EscalationTarget.schedule_id == schedule_id)
            .distinct()
            .order_by(EscalationPolicy.name)
        )
    )
    if using:
        raise Conflict(
            f"schedule {schedule.name!r} is paged by escalation policies {', '.join(using)}; "
            "remove it from their steps first",
            policies=using,
        )
    audit.record(
        session=session,
        actor=actor.ref,
        action="schedule.delete",
        entity_type="schedule",
        entity_id=schedule.id,
        before=schedule_view(schedule),
    )
    await session.delete(schedule)
    await session.flush()


# --- layers -----------------------------------------------------------------------------------------


async def _layer_of(
    session: AsyncSession, actor: Actor, schedule_id: int, layer_id: int
) -> tuple[ScheduleRow, Layer]:
    schedule = await load_schedule(session=session, schedule_id=schedule_id)
    layer = next((la for la in schedule.layers if la.id == layer_id), None)
    if layer is None:
        raise NotFound(f"schedule {schedule_id} has no layer with id {layer_id}")
    await access.require_write(session=session, actor=actor, team_id=schedule.team_id, what="this schedule")
    return schedule, layer


async def _set_participants(session: AsyncSession, layer: Layer, participants: Sequence[int]) -> None:
    if not 1 <= len(participants) <= MAX_PARTICIPANTS:
        raise Invalid(f"participants: give between 1 and {MAX_PARTICIPANTS} user ids, in rotation order")
    await checks.users(session, "participants", participants)
    if layer.members:
        layer.members.clear()
        await session.flush()  # delete the old places before inserting the same (layer, position) keys
    layer.members.extend(LayerMember(position=i, user_id=u) for i, u in enumerate(participants))


def _place(schedule: ScheduleRow, layer: Layer, position: int | None) -> None:
    """Move (or add) `layer` to `position` (default: last, the highest precedence) and renumber 0..n-1."""
    layers = [la for la in schedule.layers if la is not layer]
    layers.insert(len(layers) if position is None else max(0, min(position, len(layers))), layer)
    for i, la in enumerate(layers):
        la.position = i
    schedule.layers = layers


async def add_layer(
    *,
    session: AsyncSession,
    actor: Actor,
    schedule_id: int,
    name: str,
    participants: Sequence[int],
    rotation_start: datetime,
    shift_length: int = 1,
    shift_unit: ShiftUnit = ShiftUnit.days,
    time_zone: str | None = None,
    restrictions: Sequence[Window] = (),
    position: int | None = None,
) -> Layer:
    """Add a layer (default: on top); `rotation_start` is a wall-clock time in the layer's zone."""
    schedule = await load_schedule(session=session, schedule_id=schedule_id)
    await access.require_write(session=session, actor=actor, team_id=schedule.team_id, what="this schedule")
    if time_zone is not None:
        checks.zone("time_zone", time_zone)
    layer = Layer(
        schedule_id=schedule.id,
        name=name,
        time_zone=time_zone,
        position=0,
        members=[],
        created_at=utcnow(),
        **_rotation_fields(rotation_start, shift_length, shift_unit, restrictions),
    )
    await _set_participants(session, layer, participants)
    _place(schedule, layer, position)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="schedule.layer.create",
        entity_type="schedule",
        entity_id=schedule.id,
        after={"layer_id": layer.id, **layer_view(layer)},
    )
    return layer


def _rotation_fields(
    rotation_start: datetime, shift_length: int, shift_unit: ShiftUnit, restrictions: Sequence[Window]
) -> dict[str, object]:
    if rotation_start.tzinfo is not None:
        raise Invalid(
            "rotation_start is a wall-clock time in the layer's zone: give it without an offset "
            "(e.g. 2025-03-03T09:00)"
        )
    if shift_length < 1:
        raise Invalid("shift_length must be at least 1")
    return {
        "rotation_start": rotation_start,
        "shift_length": shift_length,
        "shift_unit": ShiftUnit(shift_unit),
        "restrictions": [w.to_json() for w in restrictions],
    }


async def update_layer(
    *,
    session: AsyncSession,
    actor: Actor,
    schedule_id: int,
    layer_id: int,
    name: str | None = None,
    participants: Sequence[int] | None = None,
    rotation_start: datetime | None = None,
    shift_length: int | None = None,
    shift_unit: ShiftUnit | None = None,
    time_zone: str | Unset | None = UNSET,
    restrictions: Sequence[Window] | None = None,
    position: int | None = None,
) -> Layer:
    """Change a layer; a None (or, for `time_zone`, UNSET) argument leaves that field as it is."""
    schedule, layer = await _layer_of(session, actor, schedule_id, layer_id)
    before = layer_view(layer)
    fields = _rotation_fields(
        rotation_start if rotation_start is not None else layer.rotation_start,
        shift_length if shift_length is not None else layer.shift_length,
        shift_unit if shift_unit is not None else ShiftUnit(layer.shift_unit),
        restrictions if restrictions is not None else [Window.from_json(w) for w in layer.restrictions],
    )
    for key, value in fields.items():
        setattr(layer, key, value)
    if name is not None:
        layer.name = name
    if not isinstance(time_zone, Unset):
        layer.time_zone = None if time_zone is None else checks.zone("time_zone", time_zone)
    if participants is not None:
        await _set_participants(session, layer, participants)
    if position is not None:
        _place(schedule, layer, position)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="schedule.layer.update",
        entity_type="schedule",
        entity_id=schedule.id,
        before={"layer_id": layer.id, **before},
        after={"layer_id": layer.id, **layer_view(layer)},
    )
    return layer


async def delete_layer(*, session: AsyncSession, actor: Actor, schedule_id: int, layer_id: int) -> None:
    schedule, layer = await _layer_of(session, actor, schedule_id, layer_id)
    audit.record(
        session=session,
        actor=actor.ref,
        action="schedule.layer.delete",
        entity_type="schedule",
        entity_id=schedule.id,
        before={"layer_id": layer.id, **layer_view(layer)},
    )
    schedule.layers.remove(layer)
    for i, la in enumerate(schedule.layers):
        la.position = i
    await session.flush()
