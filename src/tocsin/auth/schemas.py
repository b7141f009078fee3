"""API shapes for users, teams, tokens and login."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import available_timezones

from pydantic import EmailStr, Field, field_validator

from tocsin.api_common import In, Out
from tocsin.auth.models import Role, TeamRole


def _check_zone(value: str | None) -> str | None:
    if value is not None and value not in available_timezones():
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Paris")
    return value


class UserIn(In):
    email: EmailStr
    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.responder
    password: str | None = Field(default=None, min_length=10, max_length=200)
    time_zone: str = "UTC"

    _zone = field_validator("time_zone")(_check_zone)


class UserPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    password: str | None = Field(default=None, min_length=10, max_length=200)
    active: bool | None = None
    time_zone: str | None = None

    _zone = field_validator("time_zone")(_check_zone)


class UserOut(Out):
    id: int
    email: str
    name: str
    role: Role
    active: bool
    time_zone: str
    created_at: datetime


class TeamIn(In):
    slug: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)


class TeamPatch(In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)


class MemberOut(Out):
    user_id: int
    team_role: TeamRole


class TeamOut(Out):
    id: int
    slug: str
    name: str
    description: str
    created_at: datetime
    members: list[MemberOut] = []


class MemberIn(In):
    team_role: TeamRole = TeamRole.member


class TokenIn(In):
    name: str = Field(min_length=1, max_length=120)
    user_id: int | None = Field(default=None, description="Whose token; admins may create one for anyone.")
    expires_at: datetime | None = None


class TokenOut(Out):
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret, shown once; store it now.")


class LoginIn(In):
    email: EmailStr
    password: str = Field(min_length=1, max_length=200)


class LoginOut(Out):
    user: UserOut
    csrf_token: str
