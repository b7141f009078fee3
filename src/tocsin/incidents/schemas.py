"""API shapes for incidents, their timeline, incident types and the priority matrix."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, AwareDatetime, Field, model_validator

from tocsin.api_common import In, Out
from tocsin.incidents import matrix
from tocsin.incidents.fields import FieldDef
from tocsin.incidents.lifecycle import allowed_targets
from tocsin.incidents.models import (
    ClockState,
    EntryKind,
    HoldReason,
    Incident,
    IncidentRole,
    IncidentState,
    MajorStatus,
    ResolutionCode,
    SlaKind,
    SlaStatus,
    SourceChannel,
    Visibility,
)
from tocsin.incidents.queries import IncidentView
from tocsin.incidents.sla_clocks import ClockView, target_text

ID_MAX = 2**63 - 1  # BIGINT: larger ids can never exist and must not reach the database driver
SLUG = r"^[a-z][a-z0-9_]*$"


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range") from None


Id = Annotated[int, Field(ge=1, le=ID_MAX)]
When = Annotated[AwareDatetime, AfterValidator(_utc)]
Ref = Annotated[str | int, Field(description='An incident reference: "INC-42", "42" or 42.')]
Level = Annotated[int, Field(ge=1, le=3, description="1 high, 2 medium, 3 low")]
Priority = Annotated[int, Field(ge=1, le=4, description="1 critical .. 4 low")]


def _no_nul(value: Any) -> None:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    if isinstance(value, dict):
        for k, v in value.items():
            _no_nul(k)
            _no_nul(v)
    elif isinstance(value, list):
        for v in value:
            _no_nul(v)


class _Body(In):
    """Request bodies of this domain: text anywhere in them (extra included) must be storable everywhere."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        _no_nul(data)
        return data

    not_null: ClassVar[tuple[str, ...]] = ()  # fields a PATCH may leave out but not set to null

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Any:
        for name in self.not_null:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null; leave it out to keep it unchanged")
        return self


class IncidentIn(_Body):
    title: str = Field(min_length=1, max_length=300)
    type: str = Field(default="it_service", pattern=SLUG, max_length=40, description="An incident type key.")
    description: str = Field(default="", max_length=50_000)
    category: str | None = Field(default=None, max_length=120)
    impact: Level = 3
    urgency: Level = 3
    priority: Priority | None = Field(
        default=None, description="Override the derived priority (needs a reason)."
    )
    priority_reason: str | None = Field(default=None, max_length=2000)
    confidential: bool | None = Field(default=None, description="Defaults to the type's setting.")
    team_id: Id | None = None
    assignee_id: Id | None = None
    reporter_id: Id | None = Field(default=None, description="Defaults to the caller.")
    source_channel: SourceChannel = SourceChannel.api
    service_ids: list[Id] = Field(default_factory=list, max_length=100)
    parent: Ref | None = None
    extra: dict[str, Any] = Field(default_factory=dict, description="Values for the type's extra fields.")
    impact_started_at: When | None = None
    detected_at: When | None = None
    reported_at: When | None = None


class IncidentPatch(_Body):
    not_null = ("title", "description", "impact", "urgency", "confidential", "service_ids", "extra")

    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=50_000)
    category: str | None = Field(default=None, max_length=120)
    impact: Level | None = None
    urgency: Level | None = None
    priority: Priority | None = Field(
        default=None,
        description="A number overrides (with priority_reason); null returns to the derived priority.",
    )
    priority_reason: str | None = Field(default=None, max_length=2000)
    confidential: bool | None = None
    service_ids: list[Id] | None = Field(default=None, max_length=100)
    extra: dict[str, Any] | None = Field(default=None, description="A merge patch: null removes a field.")
    impact_started_at: When | None = None
    detected_at: When | None = None
    mitigated_at: When | None = None
    parent: Ref | None = Field(default=None, description="The parent incident; null unlinks.")


class TransitionIn(_Body):
    state: IncidentState
    reason: str | None = Field(
        default=None,
        max_length=5000,
        description="Hold note, cancellation reason or reopen reason; for other moves, shown on the timeline "
        "entry of the change (which stakeholders see).",
    )
    hold_reason: HoldReason | None = None
    resolution_code: ResolutionCode | None = None
    resolution_summary: str | None = Field(default=None, max_length=20_000)
    duplicate_of: Ref | None = None
    known_error_ref: str | None = Field(default=None, max_length=60)


class AssignIn(_Body):
    team_id: Id | None = None
    assignee_id: Id | None = None


class RoleIn(_Body):
    user_id: Id


class MajorIn(_Body):
    status: Literal[MajorStatus.proposed, MajorStatus.accepted, MajorStatus.rejected]
    reason: str | None = Field(default=None, max_length=5000)


class NoteIn(_Body):
    text: str = Field(min_length=1, max_length=20_000)
    visibility: Visibility = Visibility.internal


class IncidentTypeIn(_Body):
    key: str = Field(pattern=SLUG, max_length=40)
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=5000)
    confidential_default: bool = False
    fields: list[FieldDef] = Field(default_factory=list, max_length=100)
    active: bool = True


class IncidentTypePatch(_Body):
    not_null = ("name", "description", "confidential_default", "fields", "active")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=5000)
    confidential_default: bool | None = None
    fields: list[FieldDef] | None = Field(default=None, max_length=100)
    active: bool | None = None


class MatrixCellIn(_Body):
    impact: int = Field(ge=-1000, le=1000)
    urgency: int = Field(ge=-1000, le=1000)
    priority: int = Field(ge=-1000, le=1000)


class MatrixIn(_Body):
    cells: list[MatrixCellIn] = Field(max_length=100)


# --- outputs ---------------------------------------------------------------------------------------


class RoleOut(Out):
    role: IncidentRole
    user_id: int
    assigned_at: datetime


class SlaClockOut(Out):
    kind: SlaKind
    cycle: int = Field(description="1, then one more for each reopen (resolution clocks).")
    state: ClockState
    target_minutes: int
    target: str = Field(description='The target as people read it: "15 min", "8 h business time".')
    calendar: str | None = Field(description="The business calendar's key; null for calendar time.")
    started_at: datetime
    warn_at: datetime | None
    due_at: datetime | None = Field(description="Null while paused.")
    remaining_seconds: int | None = Field(
        description="Left of the target now, in the clock's measure (business seconds for business-hours "
        "clocks); negative when overdue; null once met or stopped."
    )
    paused: bool
    paused_total_seconds: int
    warned_at: datetime | None
    breached_at: datetime | None
    met_at: datetime | None
    stopped_at: datetime | None


_SECOND = timedelta(seconds=1)


def clock_out(view: ClockView) -> SlaClockOut:
    c = view.clock
    return SlaClockOut.model_validate(
        _fields_of(SlaClockOut, c)
        | {
            "target": target_text(c),
            "calendar": view.calendar_key,
            "remaining_seconds": None if view.remaining is None else view.remaining // _SECOND,
            "paused": c.paused_at is not None,
            "paused_total_seconds": view.paused_total // _SECOND,
        }
    )


class IncidentSummary(Out):
    ref: str
    id: int
    title: str
    type: str
    category: str | None
    state: IncidentState
    impact: int
    urgency: int
    priority: int
    priority_label: str
    priority_overridden: bool
    major_status: MajorStatus
    confidential: bool
    team_id: int | None
    assignee_id: int | None
    reporter_id: int | None
    source_channel: SourceChannel
    service_ids: list[int]
    roles: list[RoleOut]
    reassignment_count: int
    reopen_count: int
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    sla_status: SlaStatus | None = Field(
        description="The SLA at a glance: breached, at_risk, running, paused or met; null without SLA."
    )


class IncidentOut(IncidentSummary):
    description: str
    priority_override_reason: str | None
    hold_reason: HoldReason | None
    hold_note: str | None
    resolution_code: ResolutionCode | None
    resolution_summary: str | None
    duplicate_of: str | None
    known_error_ref: str | None
    cancel_reason: str | None
    major_reason: str | None
    parent: str | None
    children: list[str]
    extra: dict[str, Any]
    impact_started_at: datetime | None
    detected_at: datetime | None
    reported_at: datetime | None
    mitigated_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    allowed_states: list[IncidentState] = Field(description="States this incident may move to next.")
    sla: list[SlaClockOut] = Field(default_factory=list, description="The current SLA clocks.")


def _common(view: IncidentView) -> dict[str, Any]:
    i: Incident = view.incident
    return {
        "ref": i.ref,
        "type": i.type_key,
        "priority_label": matrix.label(i.priority),
        "service_ids": view.service_ids,
        "roles": [RoleOut.model_validate(r) for r in view.roles],
    }


_SHARED: dict[tuple[type, type], tuple[str, ...]] = {}  # (model, row class): the fields both have


def _fields_of(model: type[Out], row: object) -> dict[str, Any]:
    key = (model, type(row))
    names = _SHARED.get(key)
    if names is None:
        names = _SHARED[key] = tuple(name for name in model.model_fields if hasattr(type(row), name))
    return {name: getattr(row, name) for name in names}


def summary_out(view: IncidentView) -> IncidentSummary:
    return IncidentSummary.model_validate(_fields_of(IncidentSummary, view.incident) | _common(view))


def incident_out(view: IncidentView, sla: Sequence[ClockView] = ()) -> IncidentOut:
    i = view.incident

    def ref(incident_id: int | None) -> str | None:
        return f"INC-{incident_id}" if incident_id is not None and incident_id in view.visible_links else None

    return IncidentOut.model_validate(
        _fields_of(IncidentOut, i)
        | _common(view)
        | {
            "duplicate_of": ref(i.duplicate_of_id),
            "parent": ref(i.parent_id),
            "children": [f"INC-{c}" for c in view.children],
            "allowed_states": list(allowed_targets(i.state)),
            "sla": [clock_out(v) for v in sla],
        }
    )


class TimelineEntryOut(Out):
    id: int
    at: datetime
    actor: str
    actor_name: str
    kind: EntryKind
    visibility: Visibility
    text: str
    data: dict[str, Any] | None


class IncidentTypeOut(Out):
    key: str
    name: str
    description: str
    confidential_default: bool
    fields: list[FieldDef]
    active: bool
    created_at: datetime
    updated_at: datetime


class MatrixCellOut(Out):
    impact: int
    urgency: int
    priority: int
    label: str


class MatrixOut(Out):
    cells: list[MatrixCellOut]


def matrix_out(cells: dict[tuple[int, int], int]) -> MatrixOut:
    return MatrixOut(
        cells=[
            MatrixCellOut(impact=i, urgency=u, priority=p, label=matrix.label(p))
            for (i, u), p in sorted(cells.items())
        ]
    )
