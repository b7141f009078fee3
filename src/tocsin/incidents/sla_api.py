"""REST routes for SLA clocks, SLA policies and business calendars (included by incidents.api)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.deps import Ctx, ctx
from tocsin.incidents import sla, sla_config
from tocsin.incidents.schemas import ID_MAX, SLUG, SlaClockOut, clock_out
from tocsin.incidents.sla_schemas import (
    BusinessCalendarIn,
    BusinessCalendarOut,
    BusinessCalendarPatch,
    SlaPolicyIn,
    SlaPolicyOut,
    SlaPolicyPatch,
    calendar_out,
    policy_out,
)

router = APIRouter()  # the incidents router includes it under /api/v1
RefPath = Annotated[str, Path(max_length=40, description='"INC-42" or 42')]
KeyPath = Annotated[str, Path(pattern=SLUG, max_length=40)]
PolicyId = Annotated[int, Path(ge=1, le=ID_MAX)]


@router.get("/incidents/{ref}/sla", response_model=list[SlaClockOut], tags=["incidents"])
async def incident_sla(ref: RefPath, history: bool = False, c: Ctx = Depends(ctx)) -> list[SlaClockOut]:
    """The incident's SLA clocks with what is left of each target; `history` adds earlier cycles."""
    async with c.db.read() as s:
        return [clock_out(v) for v in await sla.clocks(session=s, actor=c.actor, ref=ref, history=history)]


# --- business calendars ----------------------------------------------------------------------------


@router.get("/business-calendars", response_model=list[BusinessCalendarOut], tags=["configuration"])
async def list_calendars(c: Ctx = Depends(ctx)) -> list[BusinessCalendarOut]:
    async with c.db.read() as s:
        return [calendar_out(row) for row in await sla_config.list_calendars(session=s)]


@router.post(
    "/business-calendars", response_model=BusinessCalendarOut, status_code=201, tags=["configuration"]
)
async def create_calendar(body: BusinessCalendarIn, c: Ctx = Depends(ctx)) -> BusinessCalendarOut:
    """Working windows (local wall clock in `time_zone`) and holidays for SLA clocks in business time."""
    async with c.db.write() as s:
        row = await sla_config.create_calendar(
            session=s,
            actor=c.actor,
            key=body.key,
            name=body.name,
            time_zone=body.time_zone,
            windows=[w.model_dump() for w in body.windows],
            holidays=body.holidays,
        )
        return calendar_out(row)


@router.get("/business-calendars/{key}", response_model=BusinessCalendarOut, tags=["configuration"])
async def get_calendar(key: KeyPath, c: Ctx = Depends(ctx)) -> BusinessCalendarOut:
    async with c.db.read() as s:
        return calendar_out(await sla_config.get_calendar(session=s, key=key))


@router.patch("/business-calendars/{key}", response_model=BusinessCalendarOut, tags=["configuration"])
async def update_calendar(
    key: KeyPath, body: BusinessCalendarPatch, c: Ctx = Depends(ctx)
) -> BusinessCalendarOut:
    """Change the given fields; running clocks use the new hours from their next re-computation."""
    changes = body.model_dump(mode="json", exclude_unset=True)
    async with c.db.write() as s:
        return calendar_out(
            await sla_config.update_calendar(session=s, actor=c.actor, key=key, changes=changes)
        )


@router.delete("/business-calendars/{key}", status_code=204, tags=["configuration"])
async def delete_calendar(key: KeyPath, c: Ctx = Depends(ctx)) -> Response:
    """Remove a calendar no SLA policy uses (409 names the policies that do)."""
    async with c.db.write() as s:
        await sla_config.delete_calendar(session=s, actor=c.actor, key=key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- policies --------------------------------------------------------------------------------------


def _policy_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The API calls the incident type `type`; the service `type_key`."""
    return {("type_key" if k == "type" else k): v for k, v in values.items()}


async def _calendar_keys(s: AsyncSession) -> dict[int, str]:
    return {row.id: row.key for row in await sla_config.list_calendars(session=s)}


@router.get("/sla-policies", response_model=list[SlaPolicyOut], tags=["configuration"])
async def list_policies(
    priority: Annotated[int | None, Query(ge=1, le=4)] = None, c: Ctx = Depends(ctx)
) -> list[SlaPolicyOut]:
    """Every SLA policy, by priority; the most specific active one applies to an incident."""
    async with c.db.read() as s:
        keys = await _calendar_keys(s)
        return [policy_out(p, keys) for p in await sla_config.list_policies(session=s, priority=priority)]


@router.post("/sla-policies", response_model=SlaPolicyOut, status_code=201, tags=["configuration"])
async def create_policy(body: SlaPolicyIn, c: Ctx = Depends(ctx)) -> SlaPolicyOut:
    """Targets for a priority, optionally narrowed to a type and/or a service (most specific wins)."""
    async with c.db.write() as s:
        fields = _policy_fields(body.model_dump())
        policy = await sla_config.create_policy(session=s, actor=c.actor, fields=fields)
        return policy_out(policy, await _calendar_keys(s))


@router.get("/sla-policies/{policy_id}", response_model=SlaPolicyOut, tags=["configuration"])
async def get_policy(policy_id: PolicyId, c: Ctx = Depends(ctx)) -> SlaPolicyOut:
    async with c.db.read() as s:
        return policy_out(
            await sla_config.get_policy(session=s, policy_id=policy_id), await _calendar_keys(s)
        )


@router.patch("/sla-policies/{policy_id}", response_model=SlaPolicyOut, tags=["configuration"])
async def update_policy(policy_id: PolicyId, body: SlaPolicyPatch, c: Ctx = Depends(ctx)) -> SlaPolicyOut:
    """Change the given fields (null clears an optional one); running clocks keep their targets until
    their incident's priority or services change."""
    async with c.db.write() as s:
        changes = _policy_fields(body.model_dump(exclude_unset=True))
        policy = await sla_config.update_policy(
            session=s, actor=c.actor, policy_id=policy_id, changes=changes
        )
        return policy_out(policy, await _calendar_keys(s))


@router.delete("/sla-policies/{policy_id}", status_code=204, tags=["configuration"])
async def delete_policy(policy_id: PolicyId, c: Ctx = Depends(ctx)) -> Response:
    async with c.db.write() as s:
        await sla_config.delete_policy(session=s, actor=c.actor, policy_id=policy_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
