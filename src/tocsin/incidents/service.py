"""Incident operations: the domain's public entry points (other domains and the routes call these).

Functions take the session and actor as keywords, do the domain work, write a timeline entry and an audit
record for each change in the caller's transaction, and never commit. Other domains (alerts opening incidents,
escalation acknowledging them) call `create_incident` and `transition` with actor=SYSTEM. The work lives in
records (create, edit), workflow (lifecycle, parents), responding (assignment, roles, major, notes, timeline),
queries (lists), configuration (types, matrix) and sla (SLA clocks; sla_config for SLA policies);
this module gathers them.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import Actor
from tocsin.incidents.configuration import (
    create_type,
    get_matrix,
    get_type,
    list_types,
    replace_matrix,
    update_type,
)
from tocsin.incidents.external import add_system_entry
from tocsin.incidents.models import Incident
from tocsin.incidents.queries import IncidentFilter, IncidentView, SortKey, detail, list_incidents, views
from tocsin.incidents.records import create_incident, update_incident
from tocsin.incidents.responding import add_note, assign, clear_role, set_major, set_role, timeline
from tocsin.incidents.sla import clocks as sla_clocks
from tocsin.incidents.sla import summary as sla_summary
from tocsin.incidents.sla_clocks import ClockView
from tocsin.incidents.store import UNSET, load, load_to_act, parse_ref
from tocsin.incidents.workflow import transition


async def get_incident(*, session: AsyncSession, actor: Actor, ref: str | int) -> Incident:
    """The incident by "INC-42", "42" or id; NotFound when it does not exist or is hidden from the actor."""
    return (await load(session, actor, ref)).incident


async def get_incident_to_work(*, session: AsyncSession, actor: Actor, ref: str | int) -> Incident:
    """The incident, locked for this unit of work, once the actor may work it: NotFound when it is hidden from
    them, Forbidden when they may see but not act on it. For other domains' actions on an incident
    (escalating it, paging for it) and their handlers, which pass SYSTEM."""
    return (await load_to_act(session, actor, ref)).incident


async def get_detail(*, session: AsyncSession, actor: Actor, ref: str | int) -> IncidentView:
    """The incident with its services, roles and the linked incidents the actor may see."""
    loaded = await load(session, actor, ref)
    return await detail(
        session=session, actor=actor, incident=loaded.incident, roles=list(loaded.roles.values())
    )


__all__ = [
    "UNSET",
    "ClockView",
    "IncidentFilter",
    "IncidentView",
    "SortKey",
    "add_note",
    "add_system_entry",
    "assign",
    "clear_role",
    "create_incident",
    "create_type",
    "detail",
    "get_detail",
    "get_incident",
    "get_incident_to_work",
    "get_matrix",
    "get_type",
    "list_incidents",
    "list_types",
    "parse_ref",
    "replace_matrix",
    "set_major",
    "set_role",
    "sla_clocks",
    "sla_summary",
    "timeline",
    "transition",
    "update_incident",
    "update_type",
    "views",
]
