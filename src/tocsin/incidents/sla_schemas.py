"""API shapes for SLA configuration: business calendars and SLA policies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field

from tocsin.api_common import Out
from tocsin.incidents.models import BusinessCalendar, SlaPolicy
from tocsin.incidents.schemas import SLUG, Id, Priority, _Body

Clock = Annotated[
    str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$", description="HH:MM, 24:00 = midnight")
]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Minutes = Annotated[int, Field(ge=1, le=525_600, description="Minutes (at most a year).")]
Percent = Annotated[int, Field(ge=1, le=99)]
Zone = Annotated[str, Field(min_length=1, max_length=64, description="An IANA zone, e.g. Europe/London.")]


class WindowIn(_Body):
    day: Day
    start: Clock
    end: Clock


class WindowOut(Out):
    day: Day
    start: str
    end: str


class BusinessCalendarIn(_Body):
    key: str = Field(pattern=SLUG, max_length=40)
    name: str = Field(min_length=1, max_length=120)
    time_zone: Zone
    windows: list[WindowIn] = Field(
        min_length=1, max_length=70, description="Working time, local wall clock."
    )
    holidays: list[date] = Field(default_factory=list, max_length=2000, description="Local dates off work.")


class BusinessCalendarPatch(_Body):
    not_null = ("name", "time_zone", "windows", "holidays")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    time_zone: Zone | None = None
    windows: list[WindowIn] | None = Field(default=None, min_length=1, max_length=70)
    holidays: list[date] | None = Field(default=None, max_length=2000)


class BusinessCalendarOut(Out):
    key: str
    name: str
    time_zone: str
    windows: list[WindowOut]
    holidays: list[date]
    created_at: datetime
    updated_at: datetime


def calendar_out(row: BusinessCalendar) -> BusinessCalendarOut:
    return BusinessCalendarOut.model_validate(row)


class SlaPolicyIn(_Body):
    name: str = Field(min_length=1, max_length=120)
    priority: Priority
    type: str | None = Field(default=None, pattern=SLUG, max_length=40, description="Narrow to a type.")
    service_id: Id | None = Field(default=None, description="Narrow to incidents affecting a service.")
    response_minutes: Minutes | None = Field(default=None, description="Target to acknowledgement.")
    resolution_minutes: Minutes | None = Field(default=None, description="Target to resolution.")
    calendar: str | None = Field(
        default=None, pattern=SLUG, max_length=40, description="Business calendar key; null = calendar time."
    )
    warn_percent: Percent | None = Field(
        default=75, description="Warn at this share of a target; null: never."
    )
    notify_managers: bool = Field(default=True, description="Tell the team's managers of a breach.")
    notify_user_id: Id | None = Field(default=None, description="Also tell this person of a breach.")
    active: bool = True


class SlaPolicyPatch(_Body):
    not_null = ("name", "priority", "notify_managers", "active")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    priority: Priority | None = None
    type: str | None = Field(default=None, pattern=SLUG, max_length=40)
    service_id: Id | None = None
    response_minutes: Minutes | None = None
    resolution_minutes: Minutes | None = None
    calendar: str | None = Field(default=None, pattern=SLUG, max_length=40)
    warn_percent: Percent | None = None
    notify_managers: bool | None = None
    notify_user_id: Id | None = None
    active: bool | None = None


class SlaPolicyOut(Out):
    id: int
    name: str
    priority: int
    type: str | None
    service_id: int | None
    response_minutes: int | None
    resolution_minutes: int | None
    calendar: str | None
    warn_percent: int | None
    notify_managers: bool
    notify_user_id: int | None
    active: bool
    created_at: datetime
    updated_at: datetime


def policy_out(p: SlaPolicy, calendar_keys: dict[int, str]) -> SlaPolicyOut:
    fields = {name: getattr(p, name) for name in SlaPolicyOut.model_fields if hasattr(p, name)}
    calendar = None if p.calendar_id is None else calendar_keys.get(p.calendar_id)
    return SlaPolicyOut.model_validate(fields | {"type": p.type_key, "calendar": calendar})
