"""Tables of the on-call domain: schedules, layers, overrides, escalation policies, which policy a service or
team runs, each incident's escalation run, and calendar feed tokens.

Escalation targets are a child table with one nullable foreign key per kind and a check constraint that
exactly the kind's key is set, rather than a JSON list: the database then refuses a target naming a missing
user, team or schedule, a schedule still named by a policy cannot be deleted out from under it, and "which
policies reach this schedule / user / team" is an indexed query on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tocsin.db import Base, BigId, JSONType, UTCDateTime
from tocsin.oncall.rotation import ShiftUnit


class TargetKind(StrEnum):
    user = "user"
    schedule = "schedule"
    team = "team"


class FeedKind(StrEnum):
    user = "user"
    schedule = "schedule"


class UrgencyMode(StrEnum):
    """How urgent the pages of a service's (or team's) incidents are."""

    by_priority = "by_priority"  # P1 and P2 page with high urgency, P3 and P4 with low
    high = "high"
    low = "low"


class RunStatus(StrEnum):
    running = "running"  # a step timer is pending
    stopped = "stopped"  # somebody acknowledged, took on, resolved or cancelled the incident
    exhausted = "exhausted"  # every step of every round went unanswered


class RunSource(StrEnum):
    """Why a run follows its policy or target: the incident's service, its team, or a reassignment."""

    service = "service"
    team = "team"
    manual = "manual"


class Schedule(Base):
    __tablename__ = "oncall_schedules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    # A schedule outlives its team: deleting the team leaves it to admins and managers.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    layers: Mapped[list[Layer]] = relationship(
        order_by="Layer.position", cascade="all, delete-orphan", lazy="selectin", passive_deletes=True
    )


class Layer(Base):
    __tablename__ = "oncall_layers"
    __table_args__ = (
        Index("ix_oncall_layers_schedule_position", "schedule_id", "position"),
        CheckConstraint("shift_length > 0", name="shift_length_positive"),
        CheckConstraint("shift_unit IN ('hours', 'days', 'weeks')", name="shift_unit_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("oncall_schedules.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)  # 0 first; later layers win
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    time_zone: Mapped[str | None] = mapped_column(String(64))  # None: the schedule's zone
    # A wall-clock time in the layer's zone, not an instant, hence naive on purpose.
    rotation_start: Mapped[datetime] = mapped_column(DateTime(timezone=False), nullable=False)
    shift_length: Mapped[int] = mapped_column(Integer, nullable=False)
    shift_unit: Mapped[ShiftUnit] = mapped_column(String(10), nullable=False)
    restrictions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    members: Mapped[list[LayerMember]] = relationship(
        order_by="LayerMember.position", lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def participants(self) -> list[int]:
        return [m.user_id for m in self.members]


class LayerMember(Base):
    """One place in a layer's rotation order (the same user may hold several places)."""

    __tablename__ = "oncall_layer_members"

    layer_id: Mapped[int] = mapped_column(
        ForeignKey("oncall_layers.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )


class Override(Base):
    __tablename__ = "oncall_overrides"
    __table_args__ = (
        # Who is on call at T: the schedule's overrides still running at T.
        Index("ix_oncall_overrides_schedule_ends", "schedule_id", "ends_at"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("oncall_schedules.id", ondelete="CASCADE"), nullable=False
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class EscalationPolicy(Base):
    __tablename__ = "escalation_policies"
    __table_args__ = (CheckConstraint("repeat_count >= 0", name="repeat_count_not_negative"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    # How many more times the whole list of steps runs after the last step goes unanswered.
    repeat_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    steps: Mapped[list[EscalationStep]] = relationship(
        order_by="EscalationStep.position",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class EscalationStep(Base):
    __tablename__ = "escalation_steps"
    __table_args__ = (
        Index("ix_escalation_steps_policy_position", "policy_id", "position"),
        CheckConstraint("delay_minutes >= 0", name="delay_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("escalation_policies.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)  # 0 runs first
    # Minutes to wait, unanswered, after notifying this step's targets before moving to the next step.
    delay_minutes: Mapped[int] = mapped_column(Integer, nullable=False)

    targets: Mapped[list[EscalationTarget]] = relationship(
        order_by="EscalationTarget.position",
        lazy="selectin",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class EscalationTarget(Base):
    __tablename__ = "escalation_targets"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'user' AND user_id IS NOT NULL AND schedule_id IS NULL AND team_id IS NULL)"
            " OR (kind = 'schedule' AND schedule_id IS NOT NULL AND user_id IS NULL AND team_id IS NULL)"
            " OR (kind = 'team' AND team_id IS NOT NULL AND user_id IS NULL AND schedule_id IS NULL)",
            name="one_target",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    step_id: Mapped[int] = mapped_column(
        ForeignKey("escalation_steps.id", ondelete="CASCADE"), nullable=False, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[TargetKind] = mapped_column(String(10), nullable=False)
    # Users are deactivated rather than deleted, and a deleted team simply stops being paged; a schedule in
    # use cannot be deleted (the service refuses with 409 first).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("oncall_schedules.id", ondelete="RESTRICT"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)

    @property
    def target_id(self) -> int:
        value = {
            TargetKind.user: self.user_id,
            TargetKind.schedule: self.schedule_id,
            TargetKind.team: self.team_id,
        }[TargetKind(self.kind)]
        assert value is not None  # the check constraint guarantees it
        return value


class FeedToken(Base):
    """The secret behind one iCalendar feed URL: one per user and one per schedule; rotating replaces it."""

    __tablename__ = "oncall_feed_tokens"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'user' AND user_id IS NOT NULL AND schedule_id IS NULL)"
            " OR (kind = 'schedule' AND schedule_id IS NOT NULL AND user_id IS NULL)",
            name="one_owner",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[FeedKind] = mapped_column(String(10), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    schedule_id: Mapped[int | None] = mapped_column(
        ForeignKey("oncall_schedules.id", ondelete="CASCADE"), unique=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)  # sha256 of the secret
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


_TIMEOUT_POSITIVE = "ack_timeout_minutes IS NULL OR ack_timeout_minutes > 0"
_MODES = "urgency_mode IN ('by_priority', 'high', 'low')"


class ServiceEscalation(Base):
    """The escalation policy a service's incidents run (the first affected service that has one wins)."""

    __tablename__ = "service_escalation"
    __table_args__ = (
        CheckConstraint(_TIMEOUT_POSITIVE, name="ack_timeout_positive"),
        CheckConstraint(_MODES, name="urgency_mode_known"),
    )

    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # RESTRICT: deleting a policy a service runs is refused (409) until the service points elsewhere.
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("escalation_policies.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    # An acknowledgement not followed by work (in progress, resolved...) within this long is withdrawn.
    ack_timeout_minutes: Mapped[int | None] = mapped_column(Integer)
    urgency_mode: Mapped[UrgencyMode] = mapped_column(String(20), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class TeamEscalation(Base):
    """The escalation policy of a team's incidents that no affected service gives one."""

    __tablename__ = "team_escalation"
    __table_args__ = (
        CheckConstraint(_TIMEOUT_POSITIVE, name="ack_timeout_positive"),
        CheckConstraint(_MODES, name="urgency_mode_known"),
    )

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    policy_id: Mapped[int] = mapped_column(
        ForeignKey("escalation_policies.id", ondelete="RESTRICT"), nullable=False, index=True
    )
    ack_timeout_minutes: Mapped[int | None] = mapped_column(Integer)
    urgency_mode: Mapped[UrgencyMode] = mapped_column(String(20), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class EscalationRun(Base):
    """An incident's escalation: what it follows, where it stands, whom it paged.

    The `escalation.step` timer (subject `inc:<incident id>`) carries the same position in its payload; this
    row is the one the step handler locks and trusts, so a timer fired twice, or moved meanwhile, pages
    nobody twice. `generation` counts (re)starts and is part of every page's idempotency key.
    """

    __tablename__ = "escalation_runs"
    __table_args__ = (
        CheckConstraint("(target_kind IS NULL) = (target_id IS NULL)", name="direct_target_whole"),
        CheckConstraint("status IN ('running', 'stopped', 'exhausted')", name="status_known"),
    )

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # A deleted policy leaves its runs without one; their next step records that and stops.
    policy_id: Mapped[int | None] = mapped_column(
        ForeignKey("escalation_policies.id", ondelete="SET NULL"), index=True
    )
    # A direct target (reassigned to a user or a schedule) instead of a policy.
    target_kind: Mapped[TargetKind | None] = mapped_column(String(10))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[RunSource] = mapped_column(String(10), nullable=False)
    source_id: Mapped[int | None] = mapped_column(BigInteger)  # the service or team; the user for manual
    urgency_mode: Mapped[UrgencyMode] = mapped_column(String(20), nullable=False)
    status: Mapped[RunStatus] = mapped_column(String(10), nullable=False)
    generation: Mapped[int] = mapped_column(Integer, nullable=False)
    # The next step to fire (while running), or the last position reached.
    round: Mapped[int] = mapped_column(Integer, nullable=False)
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who was paged in this run, newest last: [{generation, round, step, user_id, name, reason, at}].
    paged: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False, default=list)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
