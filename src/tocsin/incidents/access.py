"""Who may see and act on an incident: one rule, expressed both in SQL (lists) and on a loaded record.

- Admins see everything. Confidential incidents are otherwise visible only to their responders: the
  assignee, role holders, members of the incident's team and the reporter. To anyone else they do not exist.
- Reporters (the role) see only the incidents they reported. Viewers, responders and managers read every
  non-confidential incident.
- Responders act on incidents of their teams, on incidents with no team, and on those they are assignee or
  role holder of; managers and admins act on any incident they can see.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, exists, false, or_, select, true

from tocsin.auth.permissions import Actor, Can
from tocsin.errors import Forbidden
from tocsin.incidents.models import Incident, IncidentRoleHolder


def visible_clause(actor: Actor) -> ColumnElement[bool]:
    """The SQL condition selecting the incidents `actor` may see."""
    if actor.can(Can.see_confidential):
        return true()
    uid = actor.user_id
    if uid is None:
        return false()
    if not actor.can(Can.read_all):
        return Incident.reporter_id == uid
    holds_role = exists(
        select(IncidentRoleHolder.incident_id).where(
            IncidentRoleHolder.incident_id == Incident.id, IncidentRoleHolder.user_id == uid
        )
    )
    party = [Incident.assignee_id == uid, Incident.reporter_id == uid, holds_role]
    if actor.team_ids:
        party.append(Incident.team_id.in_(sorted(actor.team_ids)))
    return or_(Incident.confidential.is_(False), *party)


def is_party(actor: Actor, incident: Incident, role_holders: Collection[int]) -> bool:
    """Whether the actor is one of the incident's responders (or its reporter)."""
    uid = actor.user_id
    return uid is not None and (
        uid in (incident.assignee_id, incident.reporter_id)
        or uid in role_holders
        or (incident.team_id is not None and incident.team_id in actor.team_ids)
    )


def can_see(actor: Actor, incident: Incident, role_holders: Collection[int]) -> bool:
    if actor.can(Can.see_confidential):
        return True
    if not actor.can(Can.read_all):
        return actor.user_id is not None and incident.reporter_id == actor.user_id
    return not incident.confidential or is_party(actor, incident, role_holders)


def require_act(actor: Actor, incident: Incident, role_holders: Collection[int]) -> None:
    """Raise Forbidden unless the actor may work this (visible) incident."""
    if actor.can(Can.work_any_incident):
        return
    if not actor.can(Can.work_incidents):
        raise Forbidden(f"your role ({actor.role}) may not work incidents")
    uid = actor.user_id
    if (
        incident.team_id is None
        or incident.team_id in actor.team_ids
        or (uid is not None and (uid == incident.assignee_id or uid in role_holders))
    ):
        return
    raise Forbidden(
        f"{incident.ref} belongs to team {incident.team_id}; responders act on incidents of their "
        "own teams, on incidents with no team, and on those they are assignee or role holder of"
    )


def may_decide_major(actor: Actor, commander_id: int | None) -> bool:
    """Managers, admins and the incident's commander accept or reject a major-incident proposal."""
    return actor.can(Can.work_any_incident) or (actor.user_id is not None and actor.user_id == commander_id)


def reporter_only(actor: Actor) -> bool:
    """Actors who see only stakeholder-visible timeline entries and may only comment."""
    return not actor.can(Can.read_all)


__all__ = ["can_see", "is_party", "may_decide_major", "reporter_only", "require_act", "visible_clause"]
