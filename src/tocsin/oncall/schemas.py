"""API shapes for schedules, layers, overrides, who is on call, shifts, escalation policies and settings,
incidents' escalation, and feed links."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from pydantic import AwareDatetime, Field, NaiveDatetime, field_validator, model_validator

from tocsin.api_common import In, Out
from tocsin.oncall.models import RunSource, TargetKind, UrgencyMode
from tocsin.oncall.policies import StepSpec, Target
from tocsin.oncall.rotation import ShiftUnit, SourceKind, Weekday, Window
from tocsin.oncall.routing import MAX_ACK_TIMEOUT_MINUTES
from tocsin.oncall.zones import check_zone

Name = Field(min_length=1, max_length=200)
ID_MAX = 2**63 - 1  # BIGINT: a larger id cannot exist
Description = Field(default="", max_length=5000)


def _check_zone(value: str | None) -> str | None:
    return None if value is None else check_zone(value)


# --- schedules --------------------------------------------------------------------------------------


class ScheduleIn(In):
    name: str = Name
    time_zone: str = Field(default="UTC", description="IANA zone, e.g. Europe/Paris; layers inherit it.")
    team_id: int | None = Field(default=None, description="The owning team; its managers may edit.")
    description: str = Description

    _zone = field_validator("time_zone")(_check_zone)


class SchedulePatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    time_zone: str | None = None
    team_id: int | None = None
    description: str | None = Field(default=None, max_length=5000)

    _zone = field_validator("time_zone")(_check_zone)


class WindowIn(In):
    """Active from `start` to `end` (wall clock, HH:MM) on each listed day; end <= start runs past midnight,
    end == start is the whole day."""

    days: list[Weekday] = Field(default_factory=lambda: list(Weekday), min_length=1, max_length=7)
    start: time = time(0)
    end: time = time(0)

    @field_validator("start", "end")
    @classmethod
    def _minutes(cls, value: time) -> time:
        if value.tzinfo is not None or value.second or value.microsecond:
            raise ValueError("give a wall-clock time as HH:MM, without seconds or an offset")
        return value

    def to_window(self) -> Window:
        return Window(days=frozenset(d.number for d in self.days), start=self.start, end=self.end)


class WindowOut(Out):
    days: list[Weekday]
    start: str
    end: str


class LayerIn(In):
    name: str = Name
    participants: list[int] = Field(min_length=1, max_length=200, description="User ids in rotation order.")
    rotation_start: NaiveDatetime = Field(
        description="First hand-off, as a wall-clock time in the layer's zone without an offset "
        "(e.g. 2025-03-03T09:00); later hand-offs keep that wall-clock time across DST."
    )
    shift_length: int = Field(default=1, ge=1, le=10_000)
    shift_unit: ShiftUnit = ShiftUnit.days
    time_zone: str | None = Field(default=None, description="IANA zone; omit to use the schedule's.")
    restrictions: list[WindowIn] = Field(
        default_factory=list, max_length=50, description="When the layer applies; empty means always."
    )
    position: int | None = Field(default=None, ge=0, description="0 is lowest precedence; default: on top.")

    _zone = field_validator("time_zone")(_check_zone)

    def windows(self) -> list[Window]:
        return [w.to_window() for w in self.restrictions]


class LayerPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    participants: list[int] | None = Field(default=None, min_length=1, max_length=200)
    rotation_start: NaiveDatetime | None = None
    shift_length: int | None = Field(default=None, ge=1, le=10_000)
    shift_unit: ShiftUnit | None = None
    time_zone: str | None = Field(default=None, description="null: use the schedule's zone.")
    restrictions: list[WindowIn] | None = Field(default=None, max_length=50)
    position: int | None = Field(default=None, ge=0)

    _zone = field_validator("time_zone")(_check_zone)

    def changes(self) -> dict[str, Any]:
        out = self.model_dump(exclude_unset=True, exclude={"restrictions"})
        if self.restrictions is not None:
            out["restrictions"] = [w.to_window() for w in self.restrictions]
        return out


class LayerOut(Out):
    id: int
    position: int
    name: str
    time_zone: str | None
    rotation_start: datetime
    shift_length: int
    shift_unit: ShiftUnit
    participants: list[int]
    restrictions: list[WindowOut]


class ScheduleOut(Out):
    id: int
    name: str
    time_zone: str
    team_id: int | None
    description: str
    created_at: datetime
    layers: list[LayerOut]


# --- overrides --------------------------------------------------------------------------------------


class OverrideIn(In):
    user_id: int | None = Field(default=None, description="Who covers; default: you.")
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _ordered(self) -> OverrideIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class OverrideOut(Out):
    id: int
    schedule_id: int
    user_id: int
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: int | None
    created_at: datetime


# --- who is on call ---------------------------------------------------------------------------------


class SourceOut(Out):
    kind: SourceKind
    id: int = Field(validation_alias="key", description="The layer's or override's id.")
    name: str


class PersonOut(Out):
    id: int
    name: str
    email: str


class OnCallOut(Out):
    schedule_id: int
    schedule_name: str
    at: datetime
    user: PersonOut | None = Field(description="null: nobody is on call.")
    source: SourceOut | None = Field(description="The layer or override that put them on call.")
    until: datetime | None = Field(description="When this stretch ends; null if beyond the next 31 days.")


class ShiftOut(Out):
    user_id: int | None = Field(description="null: nobody is on call over this stretch.")
    start: datetime
    end: datetime
    source: SourceOut | None


# --- escalation policies ----------------------------------------------------------------------------


class TargetIO(In):
    kind: TargetKind
    id: int

    def to_target(self) -> Target:
        return Target(self.kind, self.id)


class StepIn(In):
    delay_minutes: int = Field(
        ge=0, le=7 * 24 * 60, description="Minutes to wait, unanswered, before the next step (or a repeat)."
    )
    targets: list[TargetIO] = Field(min_length=1, max_length=20)

    def to_spec(self) -> StepSpec:
        return StepSpec(self.delay_minutes, [t.to_target() for t in self.targets])


class PolicyIn(In):
    name: str = Name
    team_id: int | None = None
    repeat_count: int = Field(default=0, ge=0, le=9, description="How many more times to run all steps.")
    description: str = Description
    steps: list[StepIn] = Field(min_length=1, max_length=20)

    def specs(self) -> list[StepSpec]:
        return [s.to_spec() for s in self.steps]


class PolicyPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    team_id: int | None = None
    repeat_count: int | None = Field(default=None, ge=0, le=9)
    description: str | None = Field(default=None, max_length=5000)
    steps: list[StepIn] | None = Field(
        default=None, min_length=1, max_length=20, description="Replaces every step."
    )

    def changes(self) -> dict[str, Any]:
        out = self.model_dump(exclude_unset=True, exclude={"steps"})
        if self.steps is not None:
            out["steps"] = [s.to_spec() for s in self.steps]
        return out


class TargetOut(Out):
    kind: TargetKind
    id: int = Field(validation_alias="target_id")


class StepOut(Out):
    position: int
    delay_minutes: int
    targets: list[TargetOut]


class PolicyOut(Out):
    id: int
    name: str
    team_id: int | None
    repeat_count: int
    description: str
    created_at: datetime
    steps: list[StepOut]


# --- which policy services and teams run -----------------------------------------------------------


class EscalationSettingIn(In):
    policy_id: int = Field(ge=1, le=ID_MAX, description="The escalation policy the incidents run.")
    ack_timeout_minutes: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ACK_TIMEOUT_MINUTES,
        description="An acknowledgement not followed by work (in progress, resolved...) within this long is "
        "withdrawn and escalation resumes; null: never.",
    )
    urgency_mode: UrgencyMode = Field(
        default=UrgencyMode.by_priority,
        description="by_priority: P1 and P2 page with high urgency, P3 and P4 with low; or always high/low.",
    )


class ServiceEscalationOut(Out):
    service_id: int
    policy_id: int
    ack_timeout_minutes: int | None
    urgency_mode: UrgencyMode
    updated_at: datetime


class TeamEscalationOut(Out):
    team_id: int
    policy_id: int
    ack_timeout_minutes: int | None
    urgency_mode: UrgencyMode
    updated_at: datetime


# --- an incident's escalation -----------------------------------------------------------------------


class ReassignIn(In):
    """Exactly one of the three."""

    policy_id: int | None = Field(default=None, ge=1, le=ID_MAX, description="Run this policy from step 1.")
    user_id: int | None = Field(default=None, ge=1, le=ID_MAX, description="Page this person directly.")
    schedule_id: int | None = Field(
        default=None, ge=1, le=ID_MAX, description="Page whoever is on call for this schedule."
    )

    @model_validator(mode="after")
    def _one(self) -> ReassignIn:
        if sum(v is not None for v in (self.policy_id, self.user_id, self.schedule_id)) != 1:
            raise ValueError("give exactly one of policy_id, user_id and schedule_id")
        return self


class PagedOut(Out):
    generation: int
    round: int
    step: int
    user_id: int
    name: str
    reason: str | None
    at: datetime


class EscalationStateOut(Out):
    incident_id: int
    status: str = Field(description="none (never escalated), running, stopped or exhausted.")
    policy_id: int | None
    policy_name: str | None
    target_kind: TargetKind | None = Field(description="A direct target (after a reassignment), else null.")
    target_id: int | None
    source: RunSource | None = Field(description="Where the policy came from: service, team or manual.")
    source_id: int | None
    generation: int = Field(description="How many times escalation (re)started for this incident.")
    round: int | None = Field(description="The next step's round, counted from 0; null unless running.")
    step: int | None = Field(description="The next step, counted from 0; null unless running.")
    next_step_at: datetime | None
    ack_timeout_at: datetime | None = Field(description="When a pending acknowledgement times out.")
    note: str
    started_at: datetime | None
    paged: list[PagedOut] = Field(description="Who was paged, oldest first (the latest 200).")


# --- schedule warnings ------------------------------------------------------------------------------


class ScheduleWarningOut(Out):
    user_id: int
    name: str
    problem: str


class ScheduleDetailOut(ScheduleOut):
    warnings: list[ScheduleWarningOut] = Field(
        description="People the schedule can put on call whom a high-urgency page would not reach."
    )


# --- feeds ------------------------------------------------------------------------------------------


class FeedLink(Out):
    url: str = Field(description="The secret calendar address, shown once; creating a new one retires it.")
    prefix: str
    created_at: datetime
