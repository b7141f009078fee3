"""What the incident pages show, gathered from the domain services in one read (no SQL of its own).

The routes call one function here per page; each returns a plain value the templates read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import service as alerts
from tocsin.alerts.models import Alert
from tocsin.alerts.service import AlertFilter
from tocsin.auth import service as auth
from tocsin.auth.models import Team, User
from tocsin.auth.permissions import Actor, Can
from tocsin.catalog import service as catalog
from tocsin.catalog.models import Service
from tocsin.incidents import service as incidents
from tocsin.incidents import sla
from tocsin.incidents.fields import FieldDef
from tocsin.incidents.lifecycle import allowed_targets
from tocsin.incidents.models import Incident, IncidentType, TimelineEntry
from tocsin.incidents.service import IncidentFilter, IncidentView, SortKey
from tocsin.oncall import service as oncall
from tocsin.oncall.service import EscalationState

TIMELINE_PAGE = 200
ALERTS_SHOWN = 10


@dataclass(frozen=True)
class Clock:
    """An SLA clock as the incident page shows it."""

    label: str  # "Response", "Resolution"
    state: str  # running, paused, met, breached, stopped
    due: datetime | None  # None while paused
    remaining: timedelta | None  # None once met or stopped
    at_risk: bool


async def sla_clocks(session: AsyncSession, actor: Actor, incident: Incident, now: datetime) -> list[Clock]:
    """The incident's current SLA clocks (none when no SLA policy applies)."""
    out = []
    for v in await sla.clocks(session=session, actor=actor, ref=incident.id, now=now):
        c = v.clock
        at_risk = c.warn_at is not None and c.warn_at <= now and str(c.state) == "running"
        out.append(Clock(str(c.kind).capitalize(), str(c.state), c.due_at, v.remaining, at_risk))
    return out


def sla_status(incident: Incident) -> str | None:
    """The incident's SLA at a glance, for lists (kept on the incident by the SLA clocks)."""
    status = getattr(incident, "sla_status", None)
    return None if status is None else str(status)


@dataclass(frozen=True)
class Directory:
    """Names of the people, teams and services a page mentions, and the choices its forms offer."""

    users: dict[int, User] = field(default_factory=dict)
    teams: dict[int, Team] = field(default_factory=dict)
    services: dict[int, Service] = field(default_factory=dict)
    types: dict[str, IncidentType] = field(default_factory=dict)

    def user(self, user_id: int | None) -> str:
        if user_id is None:
            return "nobody"
        found = self.users.get(user_id)
        return found.name if found else f"user {user_id}"

    def team(self, team_id: int | None) -> str:
        if team_id is None:
            return "no team"
        found = self.teams.get(team_id)
        return found.name if found else f"team {team_id}"

    def service(self, service_id: int) -> str:
        found = self.services.get(service_id)
        return found.name if found else f"service {service_id}"

    def type_name(self, key: str) -> str:
        found = self.types.get(key)
        return found.name if found else key

    @property
    def workers(self) -> list[User]:
        """Active people who may be assigned or given a role."""
        return [u for u in self.users.values() if u.active and u.role in ("admin", "manager", "responder")]


async def directory(session: AsyncSession, actor: Actor, service_ids: set[int] | None = None) -> Directory:
    """People, teams, services and types; reporters get only what their own incidents name."""
    users = {u.id: u for u in await auth.list_users(session=session)}
    teams = {t.id: t for t in await auth.list_teams(session=session)}
    types = {t.key: t for t in await incidents.list_types(session=session)}
    if service_ids is not None:
        services = await catalog.services_by_id(session=session, ids=service_ids)
    else:
        services = {s.id: s for s in (await catalog.list_services(session=session, limit=500))[0]}
    if not actor.can(Can.read_all):
        users = {uid: u for uid, u in users.items() if u.active and u.role != "reporter"}
    return Directory(users, teams, services, types)


@dataclass(frozen=True)
class QueuePage:
    rows: list[IncidentView]
    next_cursor: str | None
    names: Directory


async def queue_page(
    *,
    session: AsyncSession,
    actor: Actor,
    filters: IncidentFilter,
    sort: SortKey,
    cursor: str | None,
    limit: int,
) -> QueuePage:
    """One page of the queue with everything its rows and filter form name."""
    rows, next_cursor = await incidents.list_incidents(
        session=session, actor=actor, filters=filters, sort=sort, limit=limit, cursor=cursor
    )
    views = await incidents.views(session=session, incidents=rows)
    return QueuePage(views, next_cursor, await directory(session, actor))


@dataclass(frozen=True)
class DetailPage:
    view: IncidentView
    entries: list[TimelineEntry]
    more_cursor: str | None
    names: Directory
    fields: list[FieldDef]
    allowed: tuple[str, ...]
    clocks: list[Clock]
    extra: list[tuple[FieldDef, Any]]
    escalation: EscalationState | None  # for those who read beyond their own reports
    alerts: list[tuple[Alert, int]]  # the latest alerts grouped into it, with their service ids
    more_alerts: bool


async def detail_page(*, session: AsyncSession, actor: Actor, ref: str, now: datetime) -> DetailPage:
    """The incident as `actor` may see it (NotFound otherwise), its timeline, and the names it mentions."""
    view = await incidents.get_detail(session=session, actor=actor, ref=ref)
    entries, more = await incidents.timeline(
        session=session, actor=actor, ref=view.incident.id, limit=TIMELINE_PAGE
    )
    names = await directory(session, actor)
    itype = names.types.get(view.incident.type_key)
    defs = [FieldDef.model_validate(f) for f in itype.fields] if itype else []
    extra = [(d, view.incident.extra[d.name]) for d in defs if d.name in view.incident.extra]
    escalation, more_alerts = None, False
    linked: list[tuple[Alert, int]] = []
    if actor.can(Can.read_all):
        escalation = await oncall.escalation_state(session=session, actor=actor, ref=view.incident.id)
        linked, next_alerts = await alerts.list_alerts(
            session=session, actor=actor, where=AlertFilter(incident_id=view.incident.id), limit=ALERTS_SHOWN
        )
        more_alerts = next_alerts is not None
    return DetailPage(
        view=view,
        entries=entries,
        more_cursor=more,
        names=names,
        fields=defs,
        allowed=tuple(str(s) for s in allowed_targets(view.incident.state)),
        clocks=await sla_clocks(session, actor, view.incident, now),
        extra=extra,
        escalation=escalation,
        alerts=linked,
        more_alerts=more_alerts,
    )


async def timeline_page(
    *, session: AsyncSession, actor: Actor, ref: str, cursor: str | None
) -> tuple[list[TimelineEntry], str | None]:
    return await incidents.timeline(session=session, actor=actor, ref=ref, limit=TIMELINE_PAGE, cursor=cursor)
