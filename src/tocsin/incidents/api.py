"""REST routes for incidents, their timeline and notes, incident types and the priority matrix.

The SLA routes (clocks, policies, business calendars) live in sla_api and are included here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.api_common import API, Page
from tocsin.auth.deps import Ctx, ctx
from tocsin.errors import Invalid
from tocsin.incidents import events, queries, service, sla, sla_api
from tocsin.incidents.models import Incident, IncidentRole, IncidentState, MajorStatus
from tocsin.incidents.schemas import (
    SLUG,
    AssignIn,
    Id,
    IncidentIn,
    IncidentOut,
    IncidentPatch,
    IncidentSummary,
    IncidentTypeIn,
    IncidentTypeOut,
    IncidentTypePatch,
    MajorIn,
    MatrixIn,
    MatrixOut,
    NoteIn,
    RoleIn,
    RoleOut,
    TimelineEntryOut,
    TransitionIn,
    When,
    incident_out,
    matrix_out,
    summary_out,
)
from tocsin.incidents.service import IncidentFilter, SortKey

router = APIRouter(prefix=API)
RefPath = Annotated[str, Path(max_length=40, description='"INC-42" or 42')]
KeyPath = Annotated[str, Path(pattern=SLUG, max_length=40)]
NoNul = r"^[^\x00]*$"


def _limit(c: Ctx, limit: int) -> int:
    if limit > c.settings.page_size_max:
        raise Invalid(f"limit is at most {c.settings.page_size_max}; follow next_cursor for more")
    return limit


async def _out(s: AsyncSession, c: Ctx, incident: Incident, *, new: bool = False) -> IncidentOut:
    """The incident as changed, shown even if the change took it out of the caller's sight.

    The change's listeners (SLA clocks...) run now rather than at commit, so the answer shows what commits.
    `new`: created in this unit of work, so most of its detail is in the session already.
    """
    await events.dispatch(s)
    view = queries.new_view(s, incident) if new else None
    if view is None:
        view = await service.detail(session=s, actor=c.actor, incident=incident)
    return incident_out(view, await sla.summary(session=s, incident=incident, new=new))


@router.post("/incidents", response_model=IncidentOut, status_code=201, tags=["incidents"])
async def create_incident(body: IncidentIn, c: Ctx = Depends(ctx)) -> IncidentOut:
    """Report an incident; its priority is derived from impact x urgency unless overridden with a reason."""
    fields = body.model_dump(exclude={"type"})
    async with c.db.write() as s:
        incident = await service.create_incident(session=s, actor=c.actor, type_key=body.type, **fields)
        return await _out(s, c, incident, new=True)


@router.get("/incidents", response_model=Page[IncidentSummary], tags=["incidents"])
async def list_incidents(
    state: Annotated[list[IncidentState], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    priority: Annotated[list[Annotated[int, Query(ge=1, le=4)]], Query()] = [],  # noqa: B006
    type: Annotated[list[Annotated[str, Query(pattern=SLUG, max_length=40)]], Query()] = [],  # noqa: B006
    major: Annotated[list[MajorStatus], Query()] = [],  # noqa: B006
    team_id: Annotated[Id | None, Query()] = None,
    assignee: Annotated[
        str | None, Query(description='A user id, "me" or "none".', max_length=20, pattern=NoNul)
    ] = None,
    reporter: Annotated[
        str | None, Query(description='A user id or "me".', max_length=20, pattern=NoNul)
    ] = None,
    service_id: Annotated[Id | None, Query()] = None,
    confidential: bool | None = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NoNul, description="Text in title or description.")
    ] = None,
    created_after: When | None = None,
    created_before: When | None = None,
    sort: SortKey = SortKey.created_at,
    limit: Annotated[int, Query(ge=1)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    c: Ctx = Depends(ctx),
) -> Page[IncidentSummary]:
    """Incidents you may see, newest first by default; follow next_cursor for the next page."""
    filters = IncidentFilter(
        states=tuple(state),
        priorities=tuple(priority),
        type_keys=tuple(type),
        major=tuple(major),
        team_id=team_id,
        assignee=assignee,
        reporter=reporter,
        service_id=service_id,
        confidential=confidential,
        q=q or None,
        created_after=created_after,
        created_before=created_before,
    )
    async with c.db.read() as s:
        rows, next_cursor = await service.list_incidents(
            session=s, actor=c.actor, filters=filters, sort=sort, limit=_limit(c, limit), cursor=cursor
        )
        items = [summary_out(v) for v in await service.views(session=s, incidents=rows)]
    return Page[IncidentSummary](items=items, next_cursor=next_cursor)


@router.get("/incidents/{ref}", response_model=IncidentOut, tags=["incidents"])
async def get_incident(ref: RefPath, c: Ctx = Depends(ctx)) -> IncidentOut:
    async with c.db.read() as s:
        view = await service.get_detail(session=s, actor=c.actor, ref=ref)
        return incident_out(view, await sla.summary(session=s, incident=view.incident))


@router.patch("/incidents/{ref}", response_model=IncidentOut, tags=["incidents"])
async def update_incident(ref: RefPath, body: IncidentPatch, c: Ctx = Depends(ctx)) -> IncidentOut:
    """Change the given fields; impact or urgency re-derive the priority unless it is overridden."""
    async with c.db.write() as s:
        changes = body.model_dump(exclude_unset=True)
        return await _out(s, c, await service.update_incident(session=s, actor=c.actor, ref=ref, **changes))


@router.post("/incidents/{ref}/state", response_model=IncidentOut, tags=["incidents"])
async def transition(ref: RefPath, body: TransitionIn, c: Ctx = Depends(ctx)) -> IncidentOut:
    """Move the incident through its lifecycle; 409 names the states allowed from the current one."""
    fields = body.model_dump(exclude={"state"})
    async with c.db.write() as s:
        incident = await service.transition(session=s, actor=c.actor, ref=ref, target=body.state, **fields)
        return await _out(s, c, incident)


@router.post("/incidents/{ref}/assign", response_model=IncidentOut, tags=["incidents"])
async def assign(ref: RefPath, body: AssignIn, c: Ctx = Depends(ctx)) -> IncidentOut:
    """Route to a team and/or assignee (null clears); replacing either counts a reassignment."""
    async with c.db.write() as s:
        changes = body.model_dump(exclude_unset=True)
        return await _out(s, c, await service.assign(session=s, actor=c.actor, ref=ref, **changes))


@router.put("/incidents/{ref}/roles/{role}", response_model=RoleOut, tags=["incidents"])
async def set_role(ref: RefPath, role: IncidentRole, body: RoleIn, c: Ctx = Depends(ctx)) -> RoleOut:
    """Give an incident-command role to someone; a hand-over is recorded on the timeline."""
    async with c.db.write() as s:
        holder = await service.set_role(session=s, actor=c.actor, ref=ref, role=role, user_id=body.user_id)
        return RoleOut.model_validate(holder)


@router.delete("/incidents/{ref}/roles/{role}", status_code=204, tags=["incidents"])
async def clear_role(ref: RefPath, role: IncidentRole, c: Ctx = Depends(ctx)) -> Response:
    async with c.db.write() as s:
        await service.clear_role(session=s, actor=c.actor, ref=ref, role=role)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/incidents/{ref}/major", response_model=IncidentOut, tags=["incidents"])
async def set_major(ref: RefPath, body: MajorIn, c: Ctx = Depends(ctx)) -> IncidentOut:
    """Propose as major (whoever works it), or accept/reject (managers, admins, the commander)."""
    async with c.db.write() as s:
        incident = await service.set_major(
            session=s, actor=c.actor, ref=ref, status=body.status, reason=body.reason
        )
        return await _out(s, c, incident)


@router.post("/incidents/{ref}/notes", response_model=TimelineEntryOut, status_code=201, tags=["incidents"])
async def add_note(ref: RefPath, body: NoteIn, c: Ctx = Depends(ctx)) -> TimelineEntryOut:
    """An internal work note, or a stakeholder comment the reporter sees too."""
    async with c.db.write() as s:
        entry = await service.add_note(
            session=s, actor=c.actor, ref=ref, text=body.text, visibility=body.visibility
        )
        return TimelineEntryOut.model_validate(entry)


async def _entries(
    c: Ctx, ref: str, notes_only: bool, limit: int, cursor: str | None
) -> Page[TimelineEntryOut]:
    async with c.db.read() as s:
        rows, next_cursor = await service.timeline(
            session=s, actor=c.actor, ref=ref, notes_only=notes_only, limit=_limit(c, limit), cursor=cursor
        )
    return Page[TimelineEntryOut](
        items=[TimelineEntryOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get("/incidents/{ref}/notes", response_model=Page[TimelineEntryOut], tags=["incidents"])
async def list_notes(
    ref: RefPath,
    limit: Annotated[int, Query(ge=1)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    c: Ctx = Depends(ctx),
) -> Page[TimelineEntryOut]:
    return await _entries(c, ref, True, limit, cursor)


@router.get("/incidents/{ref}/timeline", response_model=Page[TimelineEntryOut], tags=["incidents"])
async def timeline(
    ref: RefPath,
    limit: Annotated[int, Query(ge=1)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    c: Ctx = Depends(ctx),
) -> Page[TimelineEntryOut]:
    """Everything that happened, oldest first; reporters see the stakeholder-visible entries only."""
    return await _entries(c, ref, False, limit, cursor)


# --- configuration ---------------------------------------------------------------------------------


@router.get("/incident-types", response_model=list[IncidentTypeOut], tags=["configuration"])
async def list_types(active: bool | None = None, c: Ctx = Depends(ctx)) -> list[IncidentTypeOut]:
    async with c.db.read() as s:
        types = await service.list_types(session=s, include_inactive=active is not True)
    return [IncidentTypeOut.model_validate(t) for t in types if active is None or t.active == active]


@router.post("/incident-types", response_model=IncidentTypeOut, status_code=201, tags=["configuration"])
async def create_type(body: IncidentTypeIn, c: Ctx = Depends(ctx)) -> IncidentTypeOut:
    async with c.db.write() as s:
        return IncidentTypeOut.model_validate(
            await service.create_type(session=s, actor=c.actor, **dict(body))
        )


@router.get("/incident-types/{key}", response_model=IncidentTypeOut, tags=["configuration"])
async def get_type(key: KeyPath, c: Ctx = Depends(ctx)) -> IncidentTypeOut:
    async with c.db.read() as s:
        return IncidentTypeOut.model_validate(await service.get_type(session=s, key=key))


@router.patch("/incident-types/{key}", response_model=IncidentTypeOut, tags=["configuration"])
async def update_type(key: KeyPath, body: IncidentTypePatch, c: Ctx = Depends(ctx)) -> IncidentTypeOut:
    """Change a type's name, fields or defaults; its key is permanent (deactivate instead of deleting)."""
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    async with c.db.write() as s:
        return IncidentTypeOut.model_validate(
            await service.update_type(session=s, actor=c.actor, key=key, **changes)
        )


@router.get("/priority-matrix", response_model=MatrixOut, tags=["configuration"])
async def get_matrix(c: Ctx = Depends(ctx)) -> MatrixOut:
    async with c.db.read() as s:
        return matrix_out(await service.get_matrix(session=s))


@router.put("/priority-matrix", response_model=MatrixOut, tags=["configuration"])
async def replace_matrix(body: MatrixIn, c: Ctx = Depends(ctx)) -> MatrixOut:
    """Replace the whole impact x urgency -> priority table; it must give a priority for every pair."""
    cells = [(cell.impact, cell.urgency, cell.priority) for cell in body.cells]
    async with c.db.write() as s:
        return matrix_out(await service.replace_matrix(session=s, actor=c.actor, cells=cells))


router.include_router(sla_api.router)
