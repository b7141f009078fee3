"""Operations on users, teams, tokens and sessions; resolving a credential to an Actor."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit import service as audit
from tocsin.auth.models import ApiToken, LoginSession, Role, Team, TeamMember, TeamRole, User
from tocsin.auth.permissions import Actor, Can
from tocsin.db import utcnow
from tocsin.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized

# OWASP's argon2id baseline (19 MiB, 2 passes): strong, and ~20 ms rather than ~60 ms per login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
TOKEN_PREFIX = "tcn_"
# session.info flag: this unit of work changed who may do what, so cached credentials must be dropped.
AUTH_CHANGED = "tocsin_auth_changed"
# Verified against when the email is unknown, so a login takes the same time either way.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_secret(raw: str) -> str:
    """Tokens are 256 random bits: a plain SHA-256 is the right at-rest hash (no dictionary to resist)."""
    return hashlib.sha256(raw.encode()).hexdigest()


def _auth_changed(session: AsyncSession) -> None:
    session.info[AUTH_CHANGED] = True


def require(actor: Actor, capability: Can) -> None:
    if not actor.can(capability):
        raise Forbidden(f"your role ({actor.role}) may not {capability.replace('_', ' ')}")


def user_view(user: User) -> dict[str, object]:
    return {
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "active": user.active,
        "time_zone": user.time_zone,
    }


# --- users -----------------------------------------------------------------------------------------


async def create_user(
    *,
    session: AsyncSession,
    actor: Actor,
    email: str,
    name: str,
    role: Role,
    password: str | None = None,
    time_zone: str = "UTC",
) -> User:
    require(actor, Can.manage_users)
    email = email.strip().lower()
    if await session.scalar(select(User.id).where(User.email == email)):
        raise Conflict(f"a user with email {email} already exists")
    user = User(
        email=email,
        name=name,
        role=Role(role),
        time_zone=time_zone,
        active=True,
        password_hash=_hasher.hash(password) if password else None,
        created_at=utcnow(),
    )
    session.add(user)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="user.create",
        entity_type="user",
        entity_id=user.id,
        after=user_view(user),
    )
    return user


async def get_user(*, session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


async def list_users(*, session: AsyncSession, active: bool | None = None) -> list[User]:
    stmt = select(User).order_by(User.id)
    if active is not None:
        stmt = stmt.where(User.active == active)
    return list(await session.scalars(stmt))


async def update_user(
    *,
    session: AsyncSession,
    actor: Actor,
    user_id: int,
    name: str | None = None,
    role: Role | None = None,
    password: str | None = None,
    active: bool | None = None,
    time_zone: str | None = None,
) -> User:
    user = await get_user(session=session, user_id=user_id)
    is_self = actor.user_id == user_id
    if not actor.can(Can.manage_users) and not (is_self and role is None and active is None):
        raise Forbidden("only an admin may change another user, a role, or whether an account is active")
    before = user_view(user)
    if name is not None:
        user.name = name
    if role is not None:
        user.role = Role(role)
    if active is not None:
        user.active = active
        if not active:
            await session.execute(delete(LoginSession).where(LoginSession.user_id == user_id))
    if time_zone is not None:
        user.time_zone = time_zone
    if password is not None:
        user.password_hash = _hasher.hash(password)
    _auth_changed(session)
    after = user_view(user) | ({"password": "changed"} if password else {})
    audit.record(
        session=session,
        actor=actor.ref,
        action="user.update",
        entity_type="user",
        entity_id=user.id,
        before=before,
        after=after,
    )
    return user


async def user_by_email(*, session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email.strip().lower()))


# --- teams -----------------------------------------------------------------------------------------


async def create_team(
    *, session: AsyncSession, actor: Actor, slug: str, name: str, description: str = ""
) -> Team:
    require(actor, Can.manage_teams)
    if await session.scalar(select(Team.id).where(Team.slug == slug)):
        raise Conflict(f"a team with slug {slug!r} already exists; choose another slug")
    team = Team(slug=slug, name=name, description=description, created_at=utcnow())
    session.add(team)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="team.create",
        entity_type="team",
        entity_id=team.id,
        after={"slug": slug, "name": name, "description": description},
    )
    return team


async def get_team(*, session: AsyncSession, team_id: int) -> Team:
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound(f"no team with id {team_id}")
    return team


async def list_teams(*, session: AsyncSession) -> list[Team]:
    return list(await session.scalars(select(Team).order_by(Team.name)))


async def members(*, session: AsyncSession, team_ids: list[int]) -> dict[int, list[TeamMember]]:
    out: dict[int, list[TeamMember]] = {t: [] for t in team_ids}
    if team_ids:
        for m in await session.scalars(
            select(TeamMember).where(TeamMember.team_id.in_(team_ids)).order_by(TeamMember.user_id)
        ):
            out[m.team_id].append(m)
    return out


async def update_team(
    *,
    session: AsyncSession,
    actor: Actor,
    team_id: int,
    name: str | None = None,
    description: str | None = None,
) -> Team:
    require(actor, Can.manage_teams)
    team = await get_team(session=session, team_id=team_id)
    before = {"name": team.name, "description": team.description}
    if name is not None:
        team.name = name
    if description is not None:
        team.description = description
    audit.record(
        session=session,
        actor=actor.ref,
        action="team.update",
        entity_type="team",
        entity_id=team.id,
        before=before,
        after={"name": team.name, "description": team.description},
    )
    return team


async def delete_team(*, session: AsyncSession, actor: Actor, team_id: int) -> None:
    require(actor, Can.manage_teams)
    team = await get_team(session=session, team_id=team_id)
    _auth_changed(session)
    audit.record(
        session=session,
        actor=actor.ref,
        action="team.delete",
        entity_type="team",
        entity_id=team.id,
        before={"slug": team.slug, "name": team.name},
    )
    await session.delete(team)
    await session.flush()


async def set_member(
    *, session: AsyncSession, actor: Actor, team_id: int, user_id: int, team_role: TeamRole = TeamRole.member
) -> TeamMember:
    require(actor, Can.manage_teams)
    await get_team(session=session, team_id=team_id)
    await get_user(session=session, user_id=user_id)
    member = await session.get(TeamMember, (team_id, user_id))
    before = {"team_role": member.team_role} if member else None
    if member is None:
        member = TeamMember(team_id=team_id, user_id=user_id, team_role=TeamRole(team_role))
        session.add(member)
    else:
        member.team_role = TeamRole(team_role)
    await session.flush()
    _auth_changed(session)
    audit.record(
        session=session,
        actor=actor.ref,
        action="team.member.set",
        entity_type="team",
        entity_id=team_id,
        before=before,
        after={"user_id": user_id, "team_role": team_role},
    )
    return member


async def remove_member(*, session: AsyncSession, actor: Actor, team_id: int, user_id: int) -> None:
    require(actor, Can.manage_teams)
    member = await session.get(TeamMember, (team_id, user_id))
    if member is None:
        raise NotFound(f"user {user_id} is not a member of team {team_id}")
    await session.delete(member)
    _auth_changed(session)
    audit.record(
        session=session,
        actor=actor.ref,
        action="team.member.remove",
        entity_type="team",
        entity_id=team_id,
        before={"user_id": user_id, "team_role": member.team_role},
    )


async def team_ids_of(*, session: AsyncSession, user_id: int) -> frozenset[int]:
    return frozenset(await session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)))


async def team_members_of(*, session: AsyncSession, team_id: int) -> list[int]:
    return list(await session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team_id)))


# --- tokens ----------------------------------------------------------------------------------------


def _token_view(token: ApiToken) -> dict[str, object]:
    return {
        "user_id": token.user_id,
        "name": token.name,
        "prefix": token.prefix,
        "expires_at": token.expires_at,
        "revoked_at": token.revoked_at,
    }


async def create_token(
    *,
    session: AsyncSession,
    actor: Actor,
    name: str,
    user_id: int | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Issue a token; the plaintext is returned once and only its hash is stored."""
    owner_id = user_id if user_id is not None else actor.user_id
    if owner_id is None:
        raise Invalid("user_id is required when the system creates a token")
    if owner_id != actor.user_id and not actor.can(Can.manage_users):
        raise Forbidden("only an admin may create a token for another user")
    owner = await get_user(session=session, user_id=owner_id)
    if not owner.active:
        raise Conflict(f"user {owner_id} is deactivated; reactivate them first")
    if expires_at is not None and expires_at <= utcnow():
        raise Invalid("expires_at is in the past; give a future time or omit it")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=owner_id,
        name=name,
        prefix=raw[:10],
        token_hash=hash_secret(raw),
        created_at=utcnow(),
        expires_at=expires_at,
    )
    session.add(token)
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action="token.create",
        entity_type="api_token",
        entity_id=token.id,
        after=_token_view(token),
    )
    return token, raw


async def list_tokens(*, session: AsyncSession, actor: Actor) -> list[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.id)
    if not actor.can(Can.manage_users):
        stmt = stmt.where(ApiToken.user_id == actor.user_id)
    return list(await session.scalars(stmt))


async def revoke_token(*, session: AsyncSession, actor: Actor, token_id: int) -> ApiToken:
    token = await session.get(ApiToken, token_id)
    if token is None or (token.user_id != actor.user_id and not actor.can(Can.manage_users)):
        raise NotFound(f"no token with id {token_id}")
    if token.revoked_at is None:
        _auth_changed(session)
        before = _token_view(token)
        token.revoked_at = utcnow()
        audit.record(
            session=session,
            actor=actor.ref,
            action="token.revoke",
            entity_type="api_token",
            entity_id=token.id,
            before=before,
            after=_token_view(token),
        )
    return token


async def _actor_for(session: AsyncSession, user: User, **kw: object) -> Actor:
    teams = await team_ids_of(session=session, user_id=user.id)
    return Actor(user_id=user.id, role=Role(user.role), name=user.name, team_ids=teams, **kw)  # type: ignore[arg-type]


async def actor_from_token(*, session: AsyncSession, raw: str) -> Actor:
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == hash_secret(raw))
        )
    ).first()
    now = utcnow()
    if row is None:
        raise Unauthorized("the API token is not valid; create one with `tocsin token create`")
    token, user = row
    if token.revoked_at is not None:
        raise Unauthorized("the API token was revoked; create a new one")
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthorized("the API token has expired; create a new one")
    if not user.active:
        raise Unauthorized("the token's user is deactivated")
    return await _actor_for(session, user, kind="token", token_id=token.id)


async def touch_token(*, session: AsyncSession, token_id: int) -> None:
    """Record last use at most once a minute per token (no write on every request)."""
    now = utcnow()
    await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            (ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at < now - timedelta(minutes=1)),
        )
        .values(last_used_at=now)
    )


# --- sessions --------------------------------------------------------------------------------------


async def login(
    *, session: AsyncSession, email: str, password: str, hours: int
) -> tuple[User, LoginSession, str]:
    """Check a password and open a session; the raw cookie value is returned once."""
    user = await user_by_email(session=session, email=email)
    try:
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None or not user.active or not user.password_hash:
        raise Unauthorized("email or password is wrong")
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    ls = LoginSession(
        user_id=user.id,
        token_hash=hash_secret(raw),
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    session.add(ls)
    await session.execute(
        delete(LoginSession).where(LoginSession.user_id == user.id, LoginSession.expires_at < now)
    )
    await session.flush()
    audit.record(
        session=session, actor=f"user:{user.id}", action="user.login", entity_type="user", entity_id=user.id
    )
    return user, ls, raw


async def actor_from_session(*, session: AsyncSession, raw: str) -> tuple[Actor, LoginSession]:
    row = (
        await session.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.token_hash == hash_secret(raw))
        )
    ).first()
    if row is None or row[0].expires_at <= utcnow() or not row[1].active:
        raise Unauthorized("your session has ended; log in again")
    ls, user = row
    return await _actor_for(session, user, kind="user", via_session=True), ls


async def logout(*, session: AsyncSession, raw: str) -> None:
    _auth_changed(session)
    await session.execute(delete(LoginSession).where(LoginSession.token_hash == hash_secret(raw)))


async def count_users(*, session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count(User.id))) or 0)
