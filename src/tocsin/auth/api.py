"""REST routes for login, users, teams, membership and API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.api_common import API
from tocsin.auth import service
from tocsin.auth.deps import SESSION_COOKIE, Ctx, app_db, ctx
from tocsin.auth.models import Team
from tocsin.auth.schemas import (
    LoginIn,
    LoginOut,
    MemberIn,
    MemberOut,
    TeamIn,
    TeamOut,
    TeamPatch,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from tocsin.errors import NotFound

router = APIRouter(prefix=API)


@router.post("/auth/login", response_model=LoginOut, tags=["auth"])
async def login(body: LoginIn, request: Request, response: Response) -> LoginOut:
    """Open a cookie session; send the returned csrf_token as X-CSRF-Token on every write."""
    settings = request.app.state.settings
    async with app_db(request).write() as s:
        user, ls, raw = await service.login(
            session=s, email=str(body.email), password=body.password, hours=settings.session_hours
        )
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.base_url.startswith("https://"),
        path="/",
    )
    return LoginOut(user=UserOut.model_validate(user), csrf_token=ls.csrf_token)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, tags=["auth"])
async def logout(request: Request, response: Response, c: Ctx = Depends(ctx)) -> None:
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        async with c.db.write() as s:
            await service.logout(session=s, raw=raw)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me", response_model=UserOut, tags=["auth"])
async def me(c: Ctx = Depends(ctx)) -> UserOut:
    if c.actor.user_id is None:
        raise NotFound("the system actor has no user record")
    async with c.db.read() as s:
        return UserOut.model_validate(await service.get_user(session=s, user_id=c.actor.user_id))


# --- users -----------------------------------------------------------------------------------------


@router.get("/users", response_model=list[UserOut], tags=["users"])
async def list_users(active: bool | None = None, c: Ctx = Depends(ctx)) -> list[UserOut]:
    async with c.db.read() as s:
        return [UserOut.model_validate(u) for u in await service.list_users(session=s, active=active)]


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
async def create_user(body: UserIn, c: Ctx = Depends(ctx)) -> UserOut:
    async with c.db.write() as s:
        user = await service.create_user(session=s, actor=c.actor, **body.model_dump())
    return UserOut.model_validate(user)


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
async def get_user(user_id: int, c: Ctx = Depends(ctx)) -> UserOut:
    async with c.db.read() as s:
        return UserOut.model_validate(await service.get_user(session=s, user_id=user_id))


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
async def update_user(user_id: int, body: UserPatch, c: Ctx = Depends(ctx)) -> UserOut:
    async with c.db.write() as s:
        user = await service.update_user(
            session=s, actor=c.actor, user_id=user_id, **body.model_dump(exclude_unset=True)
        )
    return UserOut.model_validate(user)


# --- teams -----------------------------------------------------------------------------------------


async def _team_out(s: AsyncSession, teams: list[Team]) -> list[TeamOut]:
    by_team = await service.members(session=s, team_ids=[t.id for t in teams])
    return [
        TeamOut.model_validate(t).model_copy(
            update={"members": [MemberOut.model_validate(m) for m in by_team[t.id]]}
        )
        for t in teams
    ]


@router.get("/teams", response_model=list[TeamOut], tags=["teams"])
async def list_teams(c: Ctx = Depends(ctx)) -> list[TeamOut]:
    async with c.db.read() as s:
        return await _team_out(s, list(await service.list_teams(session=s)))


@router.post("/teams", response_model=TeamOut, status_code=201, tags=["teams"])
async def create_team(body: TeamIn, c: Ctx = Depends(ctx)) -> TeamOut:
    async with c.db.write() as s:
        team = await service.create_team(session=s, actor=c.actor, **body.model_dump())
    return TeamOut.model_validate(team)


@router.get("/teams/{team_id}", response_model=TeamOut, tags=["teams"])
async def get_team(team_id: int, c: Ctx = Depends(ctx)) -> TeamOut:
    async with c.db.read() as s:
        return (await _team_out(s, [await service.get_team(session=s, team_id=team_id)]))[0]


@router.patch("/teams/{team_id}", response_model=TeamOut, tags=["teams"])
async def update_team(team_id: int, body: TeamPatch, c: Ctx = Depends(ctx)) -> TeamOut:
    async with c.db.write() as s:
        team = await service.update_team(
            session=s, actor=c.actor, team_id=team_id, **body.model_dump(exclude_unset=True)
        )
        return (await _team_out(s, [team]))[0]


@router.delete("/teams/{team_id}", status_code=204, tags=["teams"])
async def delete_team(team_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.delete_team(session=s, actor=c.actor, team_id=team_id)


@router.put("/teams/{team_id}/members/{user_id}", response_model=MemberOut, tags=["teams"])
async def set_member(team_id: int, user_id: int, body: MemberIn, c: Ctx = Depends(ctx)) -> MemberOut:
    async with c.db.write() as s:
        member = await service.set_member(
            session=s, actor=c.actor, team_id=team_id, user_id=user_id, team_role=body.team_role
        )
    return MemberOut.model_validate(member)


@router.delete("/teams/{team_id}/members/{user_id}", status_code=204, tags=["teams"])
async def remove_member(team_id: int, user_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.remove_member(session=s, actor=c.actor, team_id=team_id, user_id=user_id)


# --- tokens ----------------------------------------------------------------------------------------


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"])
async def list_tokens(c: Ctx = Depends(ctx)) -> list[TokenOut]:
    async with c.db.read() as s:
        return [TokenOut.model_validate(t) for t in await service.list_tokens(session=s, actor=c.actor)]


@router.post("/tokens", response_model=TokenCreated, status_code=201, tags=["tokens"])
async def create_token(body: TokenIn, c: Ctx = Depends(ctx)) -> TokenCreated:
    async with c.db.write() as s:
        token, raw = await service.create_token(session=s, actor=c.actor, **body.model_dump())
    return TokenCreated(**TokenOut.model_validate(token).model_dump(), token=raw)


@router.delete("/tokens/{token_id}", response_model=TokenOut, tags=["tokens"])
async def revoke_token(token_id: int, c: Ctx = Depends(ctx)) -> TokenOut:
    async with c.db.write() as s:
        return TokenOut.model_validate(
            await service.revoke_token(session=s, actor=c.actor, token_id=token_id)
        )
