"""REST routes for running escalation: which policy services and teams run, an incident's escalation (state,
escalate now, reassign) and schedule warnings. Mounted by `oncall.api`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from tocsin.auth.deps import Ctx, ctx
from tocsin.oncall import service
from tocsin.oncall.schemas import (
    EscalationSettingIn,
    EscalationStateOut,
    ReassignIn,
    ScheduleDetailOut,
    ScheduleOut,
    ScheduleWarningOut,
    ServiceEscalationOut,
    TeamEscalationOut,
)

router = APIRouter()
RefPath = Annotated[str, Path(max_length=40, description='"INC-42" or 42')]
ServiceKey = Annotated[str, Path(max_length=80, description="The service's id or slug")]


# --- services and teams ----------------------------------------------------------------------------


@router.get("/services/{key}/escalation", response_model=ServiceEscalationOut, tags=["escalation"])
async def get_service_escalation(key: ServiceKey, c: Ctx = Depends(ctx)) -> ServiceEscalationOut:
    """The policy the service's incidents run; 404 when it has none (its team's default then applies)."""
    async with c.db.read() as s:
        row = await service.get_service_escalation(session=s, actor=c.actor, service_key=_key(key))
        return ServiceEscalationOut.model_validate(row)


@router.put("/services/{key}/escalation", response_model=ServiceEscalationOut, tags=["escalation"])
async def set_service_escalation(
    key: ServiceKey, body: EscalationSettingIn, c: Ctx = Depends(ctx)
) -> ServiceEscalationOut:
    """Set the policy the service's new incidents run (catalog managers, managers of its owning team)."""
    async with c.db.write() as s:
        row = await service.set_service_escalation(
            session=s, actor=c.actor, service_key=_key(key), **body.model_dump()
        )
        return ServiceEscalationOut.model_validate(row)


@router.delete("/services/{key}/escalation", status_code=204, tags=["escalation"])
async def delete_service_escalation(key: ServiceKey, c: Ctx = Depends(ctx)) -> None:
    """Remove the service's own policy; its incidents fall back to their team's default."""
    async with c.db.write() as s:
        await service.delete_service_escalation(session=s, actor=c.actor, service_key=_key(key))


@router.get("/teams/{team_id}/escalation", response_model=TeamEscalationOut, tags=["escalation"])
async def get_team_escalation(team_id: int, c: Ctx = Depends(ctx)) -> TeamEscalationOut:
    """The team's default policy, for its incidents that no service routes; 404 when it has none."""
    async with c.db.read() as s:
        row = await service.get_team_escalation(session=s, actor=c.actor, team_id=team_id)
        return TeamEscalationOut.model_validate(row)


@router.put("/teams/{team_id}/escalation", response_model=TeamEscalationOut, tags=["escalation"])
async def set_team_escalation(
    team_id: int, body: EscalationSettingIn, c: Ctx = Depends(ctx)
) -> TeamEscalationOut:
    """Set the team's default policy (admins, managers, the team's managers)."""
    async with c.db.write() as s:
        row = await service.set_team_escalation(
            session=s, actor=c.actor, team_id=team_id, **body.model_dump()
        )
        return TeamEscalationOut.model_validate(row)


@router.delete("/teams/{team_id}/escalation", status_code=204, tags=["escalation"])
async def delete_team_escalation(team_id: int, c: Ctx = Depends(ctx)) -> None:
    """Remove the team's default policy; incidents no service routes are then not escalated."""
    async with c.db.write() as s:
        await service.delete_team_escalation(session=s, actor=c.actor, team_id=team_id)


# --- an incident's escalation ----------------------------------------------------------------------


@router.get("/incidents/{ref}/escalation", response_model=EscalationStateOut, tags=["escalation"])
async def escalation_state(ref: RefPath, c: Ctx = Depends(ctx)) -> EscalationStateOut:
    """Where the incident's escalation stands: policy or target, the next step and when, who was paged."""
    async with c.db.read() as s:
        return EscalationStateOut.model_validate(
            await service.escalation_state(session=s, actor=c.actor, ref=ref)
        )


@router.post("/incidents/{ref}/escalate", response_model=EscalationStateOut, tags=["escalation"])
async def escalate_now(ref: RefPath, c: Ctx = Depends(ctx)) -> EscalationStateOut:
    """Fire the next escalation step now rather than after the current one's delay."""
    async with c.db.write() as s:
        state = await service.escalate_now(session=s, actor=c.actor, ref=ref)
    return EscalationStateOut.model_validate(state)


@router.post("/incidents/{ref}/reassign", response_model=EscalationStateOut, tags=["escalation"])
async def reassign(ref: RefPath, body: ReassignIn, c: Ctx = Depends(ctx)) -> EscalationStateOut:
    """Page another policy, person or schedule from its first step (an acknowledged incident is handed on)."""
    async with c.db.write() as s:
        state = await service.reassign(session=s, actor=c.actor, ref=ref, **body.model_dump())
    return EscalationStateOut.model_validate(state)


# --- schedule warnings -----------------------------------------------------------------------------


@router.get("/schedules/{schedule_id}/warnings", response_model=list[ScheduleWarningOut], tags=["on-call"])
async def schedule_warnings(schedule_id: int, c: Ctx = Depends(ctx)) -> list[ScheduleWarningOut]:
    """People the schedule can put on call whom a high-urgency page would not reach."""
    async with c.db.read() as s:
        found = await service.schedule_warnings(session=s, actor=c.actor, schedule_id=schedule_id)
        return [ScheduleWarningOut.model_validate(w) for w in found]


def schedule_detail_out(schedule: object, warnings: list[service.ScheduleWarning]) -> ScheduleDetailOut:
    base = ScheduleOut.model_validate(schedule).model_dump()
    return ScheduleDetailOut(**base, warnings=[ScheduleWarningOut.model_validate(w) for w in warnings])


def _key(key: str) -> int | str:
    """Services are named by id or slug; slugs are never all digits."""
    return int(key) if key.isdigit() else key
