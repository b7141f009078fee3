"""REST routes for on-call: schedules, layers, overrides, who is on call, escalation policies, feeds; running
escalation's routes live in `escalation_api` and are mounted here."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Request, Response
from pydantic import AwareDatetime

from tocsin.api_common import API
from tocsin.auth.deps import Ctx, app_db, ctx
from tocsin.config import Settings
from tocsin.oncall import escalation_api, service
from tocsin.oncall.models import FeedToken
from tocsin.oncall.schemas import (
    FeedLink,
    LayerIn,
    LayerOut,
    LayerPatch,
    OnCallOut,
    OverrideIn,
    OverrideOut,
    PolicyIn,
    PolicyOut,
    PolicyPatch,
    ScheduleDetailOut,
    ScheduleIn,
    ScheduleOut,
    SchedulePatch,
    ShiftOut,
)

router = APIRouter(prefix=API)
CALENDAR = "text/calendar; charset=utf-8"


def _link(settings: Settings, token: FeedToken, raw: str) -> FeedLink:
    url = f"{settings.base_url.rstrip('/')}{API}/ical/{token.kind}s/{raw}.ics"
    return FeedLink(url=url, prefix=token.prefix, created_at=token.created_at)


def _domain(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return urlparse(settings.base_url).hostname or "tocsin"


# --- schedules --------------------------------------------------------------------------------------


@router.get("/schedules", response_model=list[ScheduleOut], tags=["on-call"])
async def list_schedules(team_id: int | None = None, c: Ctx = Depends(ctx)) -> list[ScheduleOut]:
    async with c.db.read() as s:
        return [
            ScheduleOut.model_validate(x)
            for x in await service.list_schedules(session=s, actor=c.actor, team_id=team_id)
        ]


@router.post("/schedules", response_model=ScheduleOut, status_code=201, tags=["on-call"])
async def create_schedule(body: ScheduleIn, c: Ctx = Depends(ctx)) -> ScheduleOut:
    async with c.db.write() as s:
        schedule = await service.create_schedule(session=s, actor=c.actor, **body.model_dump())
    return ScheduleOut.model_validate(schedule)


@router.get("/schedules/{schedule_id}", response_model=ScheduleDetailOut, tags=["on-call"])
async def get_schedule(schedule_id: int, c: Ctx = Depends(ctx)) -> ScheduleDetailOut:
    """The schedule, with warnings about people on it whom a page would not reach."""
    async with c.db.read() as s:
        schedule, warnings = await service.schedule_detail(session=s, actor=c.actor, schedule_id=schedule_id)
        return escalation_api.schedule_detail_out(schedule, warnings)


@router.patch("/schedules/{schedule_id}", response_model=ScheduleOut, tags=["on-call"])
async def update_schedule(schedule_id: int, body: SchedulePatch, c: Ctx = Depends(ctx)) -> ScheduleOut:
    async with c.db.write() as s:
        schedule = await service.update_schedule(
            session=s, actor=c.actor, schedule_id=schedule_id, **body.model_dump(exclude_unset=True)
        )
    return ScheduleOut.model_validate(schedule)


@router.delete("/schedules/{schedule_id}", status_code=204, tags=["on-call"])
async def delete_schedule(schedule_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.delete_schedule(session=s, actor=c.actor, schedule_id=schedule_id)


# --- layers -----------------------------------------------------------------------------------------


@router.get("/schedules/{schedule_id}/layers", response_model=list[LayerOut], tags=["on-call"])
async def list_layers(schedule_id: int, c: Ctx = Depends(ctx)) -> list[LayerOut]:
    async with c.db.read() as s:
        schedule = await service.get_schedule(session=s, actor=c.actor, schedule_id=schedule_id)
        return [LayerOut.model_validate(layer) for layer in schedule.layers]


@router.post("/schedules/{schedule_id}/layers", response_model=LayerOut, status_code=201, tags=["on-call"])
async def add_layer(schedule_id: int, body: LayerIn, c: Ctx = Depends(ctx)) -> LayerOut:
    async with c.db.write() as s:
        layer = await service.add_layer(
            session=s,
            actor=c.actor,
            schedule_id=schedule_id,
            restrictions=body.windows(),
            **body.model_dump(exclude={"restrictions"}),
        )
    return LayerOut.model_validate(layer)


@router.patch("/schedules/{schedule_id}/layers/{layer_id}", response_model=LayerOut, tags=["on-call"])
async def update_layer(schedule_id: int, layer_id: int, body: LayerPatch, c: Ctx = Depends(ctx)) -> LayerOut:
    async with c.db.write() as s:
        layer = await service.update_layer(
            session=s, actor=c.actor, schedule_id=schedule_id, layer_id=layer_id, **body.changes()
        )
    return LayerOut.model_validate(layer)


@router.delete("/schedules/{schedule_id}/layers/{layer_id}", status_code=204, tags=["on-call"])
async def delete_layer(schedule_id: int, layer_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.delete_layer(session=s, actor=c.actor, schedule_id=schedule_id, layer_id=layer_id)


# --- overrides --------------------------------------------------------------------------------------


@router.get("/schedules/{schedule_id}/overrides", response_model=list[OverrideOut], tags=["on-call"])
async def list_overrides(
    schedule_id: int,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
    c: Ctx = Depends(ctx),
) -> list[OverrideOut]:
    """Overrides overlapping start..end; by default every one not yet over."""
    async with c.db.read() as s:
        return [
            OverrideOut.model_validate(o)
            for o in await service.list_overrides(
                session=s, actor=c.actor, schedule_id=schedule_id, start=start, end=end
            )
        ]


@router.post(
    "/schedules/{schedule_id}/overrides", response_model=OverrideOut, status_code=201, tags=["on-call"]
)
async def create_override(schedule_id: int, body: OverrideIn, c: Ctx = Depends(ctx)) -> OverrideOut:
    async with c.db.write() as s:
        override = await service.create_override(
            session=s, actor=c.actor, schedule_id=schedule_id, **body.model_dump()
        )
    return OverrideOut.model_validate(override)


@router.delete("/schedules/{schedule_id}/overrides/{override_id}", status_code=204, tags=["on-call"])
async def delete_override(schedule_id: int, override_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.delete_override(
            session=s, actor=c.actor, schedule_id=schedule_id, override_id=override_id
        )


# --- who is on call ---------------------------------------------------------------------------------


@router.get("/schedules/{schedule_id}/on-call", response_model=OnCallOut, tags=["on-call"])
async def on_call(schedule_id: int, at: AwareDatetime | None = None, c: Ctx = Depends(ctx)) -> OnCallOut:
    """Who is on call at `at` (default now), and the layer or override that put them there."""
    async with c.db.read() as s:
        return OnCallOut.model_validate(
            await service.on_call(session=s, actor=c.actor, schedule_id=schedule_id, at=at)
        )


@router.get("/schedules/{schedule_id}/shifts", response_model=list[ShiftOut], tags=["on-call"])
async def shifts(
    schedule_id: int, start: AwareDatetime, end: AwareDatetime, c: Ctx = Depends(ctx)
) -> list[ShiftOut]:
    """Consecutive segments covering start..end (at most 90 days); user_id null where nobody is on call."""
    async with c.db.read() as s:
        return [
            ShiftOut.model_validate(x)
            for x in await service.shifts(
                session=s, actor=c.actor, schedule_id=schedule_id, start=start, end=end
            )
        ]


@router.get("/on-call", response_model=list[OnCallOut], tags=["on-call"])
async def on_call_now(at: AwareDatetime | None = None, c: Ctx = Depends(ctx)) -> list[OnCallOut]:
    """Who is on call on every schedule at `at` (default now)."""
    async with c.db.read() as s:
        return [
            OnCallOut.model_validate(x) for x in await service.on_call_now(session=s, actor=c.actor, at=at)
        ]


# --- escalation policies ----------------------------------------------------------------------------


@router.get("/escalation-policies", response_model=list[PolicyOut], tags=["escalation"])
async def list_policies(team_id: int | None = None, c: Ctx = Depends(ctx)) -> list[PolicyOut]:
    async with c.db.read() as s:
        return [
            PolicyOut.model_validate(p)
            for p in await service.list_policies(session=s, actor=c.actor, team_id=team_id)
        ]


@router.post("/escalation-policies", response_model=PolicyOut, status_code=201, tags=["escalation"])
async def create_policy(body: PolicyIn, c: Ctx = Depends(ctx)) -> PolicyOut:
    async with c.db.write() as s:
        policy = await service.create_policy(
            session=s, actor=c.actor, steps=body.specs(), **body.model_dump(exclude={"steps"})
        )
    return PolicyOut.model_validate(policy)


@router.get("/escalation-policies/{policy_id}", response_model=PolicyOut, tags=["escalation"])
async def get_policy(policy_id: int, c: Ctx = Depends(ctx)) -> PolicyOut:
    async with c.db.read() as s:
        return PolicyOut.model_validate(
            await service.get_policy(session=s, actor=c.actor, policy_id=policy_id)
        )


@router.patch("/escalation-policies/{policy_id}", response_model=PolicyOut, tags=["escalation"])
async def update_policy(policy_id: int, body: PolicyPatch, c: Ctx = Depends(ctx)) -> PolicyOut:
    async with c.db.write() as s:
        policy = await service.update_policy(session=s, actor=c.actor, policy_id=policy_id, **body.changes())
    return PolicyOut.model_validate(policy)


@router.delete("/escalation-policies/{policy_id}", status_code=204, tags=["escalation"])
async def delete_policy(policy_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await service.delete_policy(session=s, actor=c.actor, policy_id=policy_id)


# --- calendar feeds ---------------------------------------------------------------------------------


@router.post(
    "/schedules/{schedule_id}/feed-token", response_model=FeedLink, status_code=201, tags=["on-call"]
)
async def issue_schedule_feed(schedule_id: int, c: Ctx = Depends(ctx)) -> FeedLink:
    """A secret iCalendar address for the schedule, shown once; asking again retires the previous one."""
    async with c.db.write() as s:
        token, raw = await service.issue_schedule_feed(session=s, actor=c.actor, schedule_id=schedule_id)
    return _link(c.settings, token, raw)


@router.post("/users/me/feed-token", response_model=FeedLink, status_code=201, tags=["on-call"])
async def issue_user_feed(c: Ctx = Depends(ctx)) -> FeedLink:
    """A secret iCalendar address for your own shifts, shown once; asking again retires the previous one."""
    async with c.db.write() as s:
        token, raw = await service.issue_user_feed(session=s, actor=c.actor)
    return _link(c.settings, token, raw)


@router.get(
    "/ical/schedules/{secret}.ics",
    response_class=Response,
    tags=["on-call"],
    responses={200: {"content": {"text/calendar": {}}}},
)
async def schedule_feed(secret: str, request: Request) -> Response:
    """The schedule's shifts as iCalendar; the secret in the address is the only credential."""
    async with app_db(request).read() as s:
        body = await service.ical_for_schedule(session=s, secret=secret, domain=_domain(request))
    return Response(body, media_type=CALENDAR, headers={"Cache-Control": "private, max-age=300"})


@router.get(
    "/ical/users/{secret}.ics",
    response_class=Response,
    tags=["on-call"],
    responses={200: {"content": {"text/calendar": {}}}},
)
async def user_feed(secret: str, request: Request) -> Response:
    """Your shifts on every schedule as iCalendar; the secret in the address is the only credential."""
    async with app_db(request).read() as s:
        body = await service.ical_for_user(session=s, secret=secret, domain=_domain(request))
    return Response(body, media_type=CALENDAR, headers={"Cache-Control": "private, max-age=300"})


router.include_router(escalation_api.router)
