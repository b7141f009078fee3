"""Working an incident: assignment, incident-command roles, the major flag, notes and the timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.api_common import decode_cursor, encode_cursor
from tocsin.auth.permissions import Actor, Can
from tocsin.db import utcnow
from tocsin.errors import Forbidden, Invalid, NotFound
from tocsin.incidents import access
from tocsin.incidents.lifecycle import check_major
from tocsin.incidents.models import (
    EntryKind,
    Incident,
    IncidentRole,
    IncidentRoleHolder,
    MajorStatus,
    TimelineEntry,
    Visibility,
)
from tocsin.incidents.store import (
    UNSET,
    Unset,
    existing_team,
    load,
    load_to_act,
    record,
    team_names,
    user_names,
    user_who_can_work,
)

NOTE_MAX = 20_000


async def assign(
    *,
    session: AsyncSession,
    actor: Actor,
    ref: str | int,
    team_id: int | Unset | None = UNSET,
    assignee_id: int | Unset | None = UNSET,
    now: datetime | None = None,
) -> Incident:
    """Route the incident to a team and/or a person (None clears). Replacing an existing team or assignee
    with another counts one reassignment per call."""
    if team_id is UNSET and assignee_id is UNSET:
        raise Invalid("give team_id and/or assignee_id (null clears it)")
    now = now or utcnow()
    incident = (await load_to_act(session, actor, ref)).incident
    before = {"team_id": incident.team_id, "assignee_id": incident.assignee_id}
    after = dict(before)
    if team_id is not UNSET:
        if team_id is not None:
            await existing_team(session, team_id)
        after["team_id"] = team_id
    if assignee_id is not UNSET:
        if assignee_id is not None:
            await user_who_can_work(session, assignee_id, "assignee_id")
        after["assignee_id"] = assignee_id
    if after == before:
        return incident
    replaced = any(before[k] is not None and after[k] != before[k] for k in before)
    incident.team_id, incident.assignee_id = after["team_id"], after["assignee_id"]
    if replaced:
        incident.reassignment_count += 1
    record(
        session,
        incident,
        actor,
        EntryKind.assigned,
        await _assignment_text(session, before, after),
        now=now,
        action="assign",
        before=before,
        after=after | {"reassignment_count": incident.reassignment_count},
    )
    return incident


async def _assignment_text(
    session: AsyncSession, before: dict[str, int | None], after: dict[str, int | None]
) -> str:
    people = await user_names(session, [before["assignee_id"], after["assignee_id"]])
    teams = await team_names(session, [before["team_id"], after["team_id"]])

    def who(values: dict[str, int | None]) -> str:
        team, person = values["team_id"], values["assignee_id"]
        named_team = teams[team] if team is not None else "no team"
        return f"{named_team}, {people[person] if person is not None else 'nobody'}"

    return f"Assigned to {who(after)} (was {who(before)})"


async def set_role(
    *,
    session: AsyncSession,
    actor: Actor,
    ref: str | int,
    role: IncidentRole,
    user_id: int,
    now: datetime | None = None,
) -> IncidentRoleHolder:
    """Give an incident-command role to a user; handing it over from someone else is recorded as such."""
    now = now or utcnow()
    loaded = await load_to_act(session, actor, ref)
    incident, role = loaded.incident, IncidentRole(role)
    user = await user_who_can_work(session, user_id, "user_id")
    holder = loaded.roles.get(role)
    if holder is not None and holder.user_id == user_id:
        return holder
    label = role.replace("_", " ")
    if holder is None:
        previous = None
        holder = IncidentRoleHolder(incident_id=incident.id, role=role, user_id=user_id, assigned_at=now)
        session.add(holder)
        text = f"{user.name} is now {label}"
    else:
        previous = holder.user_id
        text = (
            f"{label.capitalize()} handed over from {(await user_names(session, [previous]))[previous]} to "
            f"{user.name}"
        )
        holder.user_id, holder.assigned_at = user_id, now
    record(
        session,
        incident,
        actor,
        EntryKind.role_changed,
        text,
        now=now,
        action="role.set",
        before={"role": role, "user_id": previous},
        after={"role": role, "user_id": user_id},
    )
    await session.flush()
    return holder


async def clear_role(
    *, session: AsyncSession, actor: Actor, ref: str | int, role: IncidentRole, now: datetime | None = None
) -> None:
    """Take a role away from whoever holds it (NotFound when nobody does)."""
    now = now or utcnow()
    loaded = await load_to_act(session, actor, ref)
    role = IncidentRole(role)
    holder = loaded.roles.get(role)
    if holder is None:
        raise NotFound(f"nobody holds the {role} role on {loaded.incident.ref}")
    name = (await user_names(session, [holder.user_id]))[holder.user_id]
    await session.delete(holder)
    record(
        session,
        loaded.incident,
        actor,
        EntryKind.role_changed,
        f"{name} is no longer {role.replace('_', ' ')}",
        now=now,
        action="role.clear",
        before={"role": role, "user_id": holder.user_id},
        after={"role": role, "user_id": None},
    )


async def set_major(
    *,
    session: AsyncSession,
    actor: Actor,
    ref: str | int,
    status: MajorStatus,
    reason: str | None = None,
    now: datetime | None = None,
) -> Incident:
    """Propose an incident as major (anyone working it), or accept/reject it (managers, admins, commander)."""
    now = now or utcnow()
    status = MajorStatus(status)
    loaded = await load(session, actor, ref, for_update=True)
    incident = loaded.incident
    if status == MajorStatus.proposed:
        access.require_act(actor, incident, loaded.role_holders)
    else:
        commander = loaded.roles.get(IncidentRole.commander)
        if not access.may_decide_major(actor, commander.user_id if commander else None):
            raise Forbidden(
                f"only a manager, an admin or the commander of {incident.ref} may "
                f"{'accept' if status == MajorStatus.accepted else 'reject'} a major incident"
            )
    check_major(MajorStatus(incident.major_status), status, reason)
    before = {"major_status": incident.major_status, "major_reason": incident.major_reason}
    incident.major_status = status
    incident.major_reason = reason.strip() if reason and reason.strip() else None
    verb = {
        MajorStatus.proposed: "Proposed as a major incident",
        MajorStatus.accepted: "Declared a major incident",
        MajorStatus.rejected: "Not a major incident",
    }[status]
    record(
        session,
        incident,
        actor,
        EntryKind.major_changed,
        verb + (f": {incident.major_reason}" if incident.major_reason else ""),
        now=now,
        action=f"major.{status}",
        before=before,
        after={"major_status": status, "major_reason": incident.major_reason},
    )
    return incident


async def add_note(
    *,
    session: AsyncSession,
    actor: Actor,
    ref: str | int,
    text: str,
    visibility: Visibility = Visibility.internal,
    now: datetime | None = None,
) -> TimelineEntry:
    """An internal work note, or a comment stakeholders (the reporter included) can read.

    Reporters may add stakeholder comments to the incidents they reported; everyone else must be able to work
    the incident.
    """
    now = now or utcnow()
    visibility = Visibility(visibility)
    text = text.strip()
    if not text:
        raise Invalid("text: a note needs some text")
    if len(text) > NOTE_MAX:
        raise Invalid(f"text: a note is at most {NOTE_MAX} characters")
    loaded = await load(session, actor, ref, for_update=True)
    if access.reporter_only(actor) and actor.can(Can.report_incident):
        if visibility != Visibility.stakeholder:
            raise Forbidden("reporters add stakeholder comments only; send visibility stakeholder")
    else:
        access.require_act(actor, loaded.incident, loaded.role_holders)
    entry = record(
        session,
        loaded.incident,
        actor,
        EntryKind.note,
        text,
        now=now,
        action=f"note.{visibility}",
        after={"visibility": visibility, "text": text},
        visibility=visibility,
        data={},
    )
    await session.flush()
    return entry


async def timeline(
    *,
    session: AsyncSession,
    actor: Actor,
    ref: str | int,
    notes_only: bool = False,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[TimelineEntry], str | None]:
    """The incident's entries, oldest first, a page at a time; reporters see stakeholder entries only."""
    incident = (await load(session, actor, ref)).incident
    stmt = select(TimelineEntry).where(TimelineEntry.incident_id == incident.id)
    if notes_only:
        stmt = stmt.where(TimelineEntry.kind == EntryKind.note)
    if access.reporter_only(actor):
        stmt = stmt.where(TimelineEntry.visibility == Visibility.stakeholder)
    if cursor:
        values = decode_cursor(cursor)
        if len(values) != 2 or values[0] != "t" or type(values[1]) is not int or not 0 <= values[1] < 2**63:
            raise Invalid("cursor is not one this API issued; pass next_cursor from the previous page")
        stmt = stmt.where(TimelineEntry.id > values[1])
    rows = list(await session.scalars(stmt.order_by(TimelineEntry.id).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(["t", rows[limit - 1].id])
