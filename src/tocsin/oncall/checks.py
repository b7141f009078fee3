"""Input checks on-call writes share: references name existing, active records; zones are IANA names."""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth import service as auth
from tocsin.auth.models import User
from tocsin.errors import Invalid, NotFound
from tocsin.oncall.zones import check_zone


class Unset(Enum):
    """Marks a nullable field a PATCH did not mention (None there means "clear it")."""

    token = 0


UNSET: Final = Unset.token


def zone(field: str, name: str) -> str:
    try:
        return check_zone(name)
    except ValueError as exc:
        raise Invalid(f"{field}: {exc}") from exc


async def user(session: AsyncSession, field: str, user_id: int) -> User:
    """The active user `user_id`, or a 422 naming the field (a reference in the body, not the URL)."""
    try:
        found = await auth.get_user(session=session, user_id=user_id)
    except NotFound as exc:
        raise Invalid(f"{field}: no user with id {user_id}; pick an existing user") from exc
    if not found.active:
        raise Invalid(f"{field}: user {user_id} ({found.name}) is deactivated; pick an active user")
    return found


async def users(session: AsyncSession, field: str, user_ids: Iterable[int]) -> None:
    for user_id in dict.fromkeys(user_ids):
        await user(session, field, user_id)


async def team(session: AsyncSession, field: str, team_id: int | None) -> None:
    if team_id is None:
        return
    try:
        await auth.get_team(session=session, team_id=team_id)
    except NotFound as exc:
        raise Invalid(f"{field}: no team with id {team_id}; pick an existing team") from exc
