"""Incident tables: types, the priority matrix, incidents, their services, roles, timeline and SLA clocks."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    DDL,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, BigId, JSONType, UTCDateTime


class IncidentState(StrEnum):
    new = "new"
    acknowledged = "acknowledged"
    in_progress = "in_progress"
    on_hold = "on_hold"
    resolved = "resolved"
    closed = "closed"
    cancelled = "cancelled"


class HoldReason(StrEnum):
    awaiting_caller = "awaiting_caller"
    awaiting_vendor = "awaiting_vendor"
    awaiting_change = "awaiting_change"
    awaiting_problem = "awaiting_problem"
    other = "other"


class ResolutionCode(StrEnum):
    solution_provided = "solution_provided"
    workaround_provided = "workaround_provided"
    duplicate = "duplicate"  # must name the original
    known_error = "known_error"  # must link the known error
    resolved_by_change = "resolved_by_change"
    resolved_by_problem = "resolved_by_problem"
    user_error = "user_error"
    no_resolution = "no_resolution"


class MajorStatus(StrEnum):
    none = "none"
    proposed = "proposed"
    accepted = "accepted"
    rejected = "rejected"


class SourceChannel(StrEnum):
    web = "web"
    api = "api"
    email = "email"
    alert = "alert"
    phone = "phone"
    chat = "chat"
    other = "other"


class IncidentRole(StrEnum):
    commander = "commander"
    comms_lead = "comms_lead"
    resolver = "resolver"
    scribe = "scribe"


class Visibility(StrEnum):
    internal = "internal"  # responders and staff
    stakeholder = "stakeholder"  # also the reporter


class EntryKind(StrEnum):
    created = "created"
    edited = "edited"
    priority_changed = "priority_changed"
    timestamp_set = "timestamp_set"
    services_changed = "services_changed"
    state_changed = "state_changed"
    reopened = "reopened"
    assigned = "assigned"
    role_changed = "role_changed"
    major_changed = "major_changed"
    linked = "linked"
    note = "note"
    # Written by other domains through service.add_system_entry:
    alert = "alert"
    escalation = "escalation"
    notification = "notification"
    sla = "sla"
    reminder = "reminder"


class SlaStatus(StrEnum):
    """An incident's SLA at a glance (denormalised onto the incident so lists need no extra query)."""

    running = "running"
    at_risk = "at_risk"  # a running clock passed its warning point
    paused = "paused"
    breached = "breached"  # a current clock missed its target
    met = "met"  # every clock met its target


class IncidentType(Base):
    """A kind of incident (IT service, security, safety...) with the extra fields its records carry."""

    __tablename__ = "incident_types"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    confidential_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # A list of field definitions, see tocsin.incidents.fields.FieldDef.
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False, default=list)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class PriorityCell(Base):
    """One cell of the impact x urgency -> priority matrix (editable data, seeded with ServiceNow's)."""

    __tablename__ = "priority_matrix"
    __table_args__ = (
        CheckConstraint("impact BETWEEN 1 AND 3", name="impact_range"),
        CheckConstraint("urgency BETWEEN 1 AND 3", name="urgency_range"),
        CheckConstraint("priority BETWEEN 1 AND 4", name="priority_range"),
    )

    impact: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    urgency: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    priority: Mapped[int] = mapped_column(SmallInteger, nullable=False)


_MAJOR = text("major_status != 'none'")


class Incident(Base):
    __tablename__ = "incidents"
    # Each list filter has a composite index ending in id, so "filter + newest first + keyset" is an index
    # range scan; PostgreSQL does not index foreign keys by itself.
    __table_args__ = (
        CheckConstraint("impact BETWEEN 1 AND 3", name="impact_range"),
        CheckConstraint("urgency BETWEEN 1 AND 3", name="urgency_range"),
        CheckConstraint("priority BETWEEN 1 AND 4", name="priority_range"),
        Index("ix_incidents_state_id", "state", "id"),
        Index("ix_incidents_priority_id", "priority", "id"),
        Index("ix_incidents_type_key_id", "type_key", "id"),
        Index("ix_incidents_team_id_id", "team_id", "id"),
        Index("ix_incidents_assignee_id_id", "assignee_id", "id"),
        Index("ix_incidents_reporter_id_id", "reporter_id", "id"),
        # Partial: most incidents are not major, so the index stays tiny and "major incidents" is instant.
        Index(
            "ix_incidents_major_status_id", "major_status", "id", sqlite_where=_MAJOR, postgresql_where=_MAJOR
        ),
        Index("ix_incidents_updated_at_id", "updated_at", "id"),
        Index("ix_incidents_created_at", "created_at"),
        Index("ix_incidents_parent_id", "parent_id"),
        Index("ix_incidents_duplicate_of_id", "duplicate_of_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    title: Mapped[str] = mapped_column(String(300), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    type_key: Mapped[str] = mapped_column(
        ForeignKey("incident_types.key", ondelete="RESTRICT"), nullable=False
    )
    category: Mapped[str | None] = mapped_column(String(120))
    impact: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    urgency: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    priority: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    priority_overridden: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    priority_override_reason: Mapped[str | None] = mapped_column(Text)
    state: Mapped[IncidentState] = mapped_column(String(20), nullable=False, default=IncidentState.new)
    hold_reason: Mapped[HoldReason | None] = mapped_column(String(30))
    hold_note: Mapped[str | None] = mapped_column(Text)
    resolution_code: Mapped[ResolutionCode | None] = mapped_column(String(30))
    resolution_summary: Mapped[str | None] = mapped_column(Text)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    known_error_ref: Mapped[str | None] = mapped_column(String(60))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    major_status: Mapped[MajorStatus] = mapped_column(String(20), nullable=False, default=MajorStatus.none)
    major_reason: Mapped[str | None] = mapped_column(Text)
    confidential: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    source_channel: Mapped[SourceChannel] = mapped_column(
        String(20), nullable=False, default=SourceChannel.web
    )
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    extra: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    impact_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    detected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mitigated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    reassignment_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Kept by tocsin.incidents.sla from the incident's clocks; None when no SLA policy applies.
    sla_status: Mapped[SlaStatus | None] = mapped_column(String(20))

    @property
    def ref(self) -> str:
        return f"INC-{self.id}"


class IncidentService(Base):
    """An incident affects a service (catalog)."""

    __tablename__ = "incident_services"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_incident_services_service_id_incident_id", "service_id", "incident_id"),)


class IncidentRoleHolder(Base):
    """Who holds an incident-command role on an incident."""

    __tablename__ = "incident_roles"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[IncidentRole] = mapped_column(String(20), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class TimelineEntry(Base):
    """One thing that happened to an incident, in order; notes are entries too."""

    __tablename__ = "incident_timeline"
    __table_args__ = (Index("ix_incident_timeline_incident_id_id", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    actor: Mapped[str] = mapped_column(String(120), nullable=False)
    actor_name: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[EntryKind] = mapped_column(String(40), nullable=False)
    visibility: Mapped[Visibility] = mapped_column(String(20), nullable=False, default=Visibility.internal)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


# --- SLA policies and clocks (tocsin.incidents.sla) ------------------------------------------------


class SlaKind(StrEnum):
    response = "response"  # to acknowledgement
    resolution = "resolution"


class ClockState(StrEnum):
    running = "running"
    paused = "paused"  # the incident is on hold
    met = "met"  # reached in time
    breached = "breached"  # the target passed first (met_at records when it was reached anyway)
    stopped = "stopped"  # the incident was cancelled (or no policy applies any more)


class BusinessCalendar(Base):
    """Working hours for SLA clocks measured in business time: a zone, weekly windows and holidays."""

    __tablename__ = "business_calendars"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False)
    # [{"day": "mon", "start": "09:00", "end": "17:00"}, ...] and ["2024-12-25", ...]
    windows: Mapped[list[dict[str, str]]] = mapped_column(JSONType, nullable=False, default=list)
    holidays: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class SlaPolicy(Base):
    """Response and resolution targets for a priority, optionally narrowed to a type and/or a service."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        CheckConstraint("priority BETWEEN 1 AND 4", name="priority_range"),
        CheckConstraint("warn_percent BETWEEN 1 AND 99", name="warn_percent_range"),
        CheckConstraint("response_minutes > 0", name="response_positive"),
        CheckConstraint("resolution_minutes > 0", name="resolution_positive"),
        Index("ix_sla_policies_priority_id", "priority", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    priority: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    type_key: Mapped[str | None] = mapped_column(ForeignKey("incident_types.key", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    response_minutes: Mapped[int | None] = mapped_column(Integer)
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)
    # None measures calendar time.
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("business_calendars.id", ondelete="RESTRICT"), index=True
    )
    warn_percent: Mapped[int | None] = mapped_column(SmallInteger, default=75)
    notify_managers: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    notify_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class SlaClock(Base):
    """One SLA clock of an incident; a reopen starts a new resolution cycle and keeps the old row."""

    __tablename__ = "sla_clocks"
    __table_args__ = (
        UniqueConstraint("incident_id", "kind", "cycle", name="uq_sla_clocks_incident_kind_cycle"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[SlaKind] = mapped_column(String(20), nullable=False)
    cycle: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    state: Mapped[ClockState] = mapped_column(String(20), nullable=False, default=ClockState.running)
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("sla_policies.id", ondelete="SET NULL"), index=True
    )
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("business_calendars.id", ondelete="SET NULL"), index=True
    )
    target_minutes: Mapped[int] = mapped_column(Integer, nullable=False)
    warn_percent: Mapped[int | None] = mapped_column(SmallInteger)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # an open pause
    pauses: Mapped[list[list[str]]] = mapped_column(
        JSONType, nullable=False, default=list
    )  # closed: [from, to]
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None while paused or without warning
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None while paused
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the due time that passed
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- text search on SQLite -----------------------------------------------------------------------------
# The incident list's `q` is a case-insensitive substring match on title and description. PostgreSQL answers
# it from trigram indexes (migration 0002). On SQLite a LIKE reads every incident (20-55 ms at 100,000); an
# FTS5 table with the trigram tokenizer (SQLite 3.34+) finds substrings of three characters or more from an
# index instead (well under a millisecond for a rare one). External content: the table stores only the index,
# the text stays in `incidents`, and triggers keep the two in step (an FTS5 'delete' must be given the old
# text, which the triggers have). Created with the table for schemas built from the models, and by migration
# 0004 (its copy of these statements) where SQLite can have it. A migration that rebuilds `incidents`
# (Alembic's batch mode on SQLite copies the table, and the triggers go with the old one) must run
# SQLITE_SEARCH_TRIGGERS again, then SEARCH_REBUILD; until then search uses LIKE (queries.searchable).
SEARCH_TABLE = "incidents_search"
_COLUMNS = "rowid, title, description"
_OLD = (
    f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, {_COLUMNS}) "
    "VALUES ('delete', old.id, old.title, old.description);"
)
_NEW = f"INSERT INTO {SEARCH_TABLE} ({_COLUMNS}) VALUES (new.id, new.title, new.description);"
SEARCH_TRIGGERS = (f"{SEARCH_TABLE}_insert", f"{SEARCH_TABLE}_delete", f"{SEARCH_TABLE}_update")
SEARCH_REBUILD = f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('rebuild')"
SQLITE_SEARCH_TRIGGERS = (
    f"CREATE TRIGGER IF NOT EXISTS {SEARCH_TABLE}_insert AFTER INSERT ON incidents BEGIN {_NEW} END",
    f"CREATE TRIGGER IF NOT EXISTS {SEARCH_TABLE}_delete AFTER DELETE ON incidents BEGIN {_OLD} END",
    f"CREATE TRIGGER IF NOT EXISTS {SEARCH_TABLE}_update AFTER UPDATE OF title, description ON incidents "
    f"BEGIN {_OLD} {_NEW} END",
)
SQLITE_SEARCH = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH_TABLE} USING fts5(title, description, "
    "content='incidents', content_rowid='id', tokenize='trigram')",
    *SQLITE_SEARCH_TRIGGERS,
)


def sqlite_can_search(connection: Any) -> bool:
    """Whether this SQLite has FTS5 and its trigram tokenizer (3.34 and later, when built with FTS5): tried
    with a table of the connection's own temporary schema."""
    try:
        connection.exec_driver_sql(
            "CREATE VIRTUAL TABLE temp.tocsin_search_probe USING fts5(x, tokenize='trigram')"
        )
    except OperationalError:  # no such module: fts5, or no such tokenizer: trigram
        return False
    connection.exec_driver_sql("DROP TABLE temp.tocsin_search_probe")
    return True


def _creates_search(
    ddl: Any, target: Any, bind: Any, tables: Any = None, state: Any = None, **_: Any
) -> bool:
    return bind is not None and sqlite_can_search(bind)


for _statement in SQLITE_SEARCH:
    event.listen(
        Incident.__table__,
        "after_create",
        DDL(_statement).execute_if(dialect="sqlite", callable_=_creates_search),  # type: ignore[no-untyped-call]
    )
event.listen(
    Incident.__table__,
    "before_drop",
    DDL(f"DROP TABLE IF EXISTS {SEARCH_TABLE}").execute_if(dialect="sqlite"),  # type: ignore[no-untyped-call]
)
