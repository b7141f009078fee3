"""Administration of people: users (role, active, password) and teams with their members."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Request, Response
from pydantic import EmailStr

from tocsin.auth import service as auth
from tocsin.auth.models import Role, TeamRole
from tocsin.auth.permissions import Can
from tocsin.web.render import html
from tocsin.web.routing import see_other, ui_router
from tocsin.web.session import Ui, ui

router = ui_router()
Id = Annotated[int, Form(ge=1, le=2**63 - 1)]
Password = Annotated[str | None, Form(min_length=10, max_length=200)]


@router.get("/admin")
async def index(request: Request, c: Ui = Depends(ui)) -> Response:
    """What an administrator can change, one link each."""
    auth.require(c.actor, Can.manage_teams)
    return html(request, "admin/index.html", {})


@router.get("/admin/users")
async def users(request: Request, c: Ui = Depends(ui)) -> Response:
    auth.require(c.actor, Can.manage_users)
    async with c.db.read() as s:
        rows = await auth.list_users(session=s)
    return html(request, "admin/users.html", {"rows": rows, "roles": list(Role)})


@router.post("/admin/users")
async def create_user(
    email: Annotated[EmailStr, Form()],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    role: Annotated[Role, Form()],
    password: Password = None,
    c: Ui = Depends(ui),
) -> Response:
    async with c.db.write() as s:
        await auth.create_user(
            session=s, actor=c.actor, email=str(email), name=name, role=role, password=password
        )
    return see_other("/admin/users")


@router.post("/admin/users/{user_id}")
async def update_user(
    user_id: int,
    role: Annotated[Role, Form()],
    active: Annotated[bool, Form()] = False,
    password: Password = None,
    c: Ui = Depends(ui),
) -> Response:
    """Change a user's role or whether they may log in (deactivating ends their sessions); set a password."""
    async with c.db.write() as s:
        await auth.update_user(
            session=s, actor=c.actor, user_id=user_id, role=role, active=active, password=password or None
        )
    return see_other(f"/admin/users#user-{user_id}")


@router.get("/admin/teams")
async def teams(request: Request, c: Ui = Depends(ui)) -> Response:
    auth.require(c.actor, Can.manage_teams)
    async with c.db.read() as s:
        rows = await auth.list_teams(session=s)
        members = await auth.members(session=s, team_ids=[t.id for t in rows])
        people = {u.id: u for u in await auth.list_users(session=s)}
    context = {"rows": rows, "members": members, "people": people, "team_roles": list(TeamRole)}
    return html(request, "admin/teams.html", context)


@router.post("/admin/teams")
async def create_team(
    slug: Annotated[str, Form(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$")],
    name: Annotated[str, Form(min_length=1, max_length=200)],
    description: Annotated[str, Form(max_length=5000)] = "",
    c: Ui = Depends(ui),
) -> Response:
    async with c.db.write() as s:
        await auth.create_team(session=s, actor=c.actor, slug=slug, name=name, description=description)
    return see_other("/admin/teams")


@router.post("/admin/teams/{team_id}/members")
async def set_member(
    team_id: int,
    user_id: Id,
    team_role: Annotated[TeamRole, Form()] = TeamRole.member,
    c: Ui = Depends(ui),
) -> Response:
    async with c.db.write() as s:
        await auth.set_member(session=s, actor=c.actor, team_id=team_id, user_id=user_id, team_role=team_role)
    return see_other(f"/admin/teams#team-{team_id}")


@router.post("/admin/teams/{team_id}/members/{user_id}/delete")
async def remove_member(team_id: int, user_id: int, c: Ui = Depends(ui)) -> Response:
    async with c.db.write() as s:
        await auth.remove_member(session=s, actor=c.actor, team_id=team_id, user_id=user_id)
    return see_other(f"/admin/teams#team-{team_id}")
