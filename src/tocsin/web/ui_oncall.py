"""On-call pages: who is on call now, a schedule as a week or month with its overrides, calendar links,
and escalation policies to read and edit."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Form, Query, Request, Response

from tocsin.db import utcnow
from tocsin.oncall import service as oncall
from tocsin.oncall.service import StepSpec
from tocsin.web import oncall_views
from tocsin.web.oncall_views import View
from tocsin.web.render import html
from tocsin.web.routing import see_other, ui_router
from tocsin.web.session import Ui, ui

router = ui_router()
Id = Annotated[int, Form(ge=1, le=2**63 - 1)]
Name = Annotated[str, Form(min_length=1, max_length=200)]


async def _overview(request: Request, c: Ui, feed_url: str | None = None) -> Response:
    async with c.db.read() as s:
        page = await oncall_views.overview(session=s, actor=c.actor)
    response = html(request, "oncall/index.html", {"page": page, "feed_url": feed_url, "now": utcnow()})
    response.headers["HX-Push-Url"] = "/oncall"  # also when answering the feed post
    return response


@router.get("/oncall")
async def index(request: Request, c: Ui = Depends(ui)) -> Response:
    """Who is on call now on every schedule; the schedules and escalation policies."""
    return await _overview(request, c)


@router.post("/oncall/my-feed")
async def my_feed(request: Request, c: Ui = Depends(ui)) -> Response:
    """A secret calendar address for your own shifts, shown once (asking again retires the old one)."""
    async with c.db.write() as s:
        _, raw = await oncall.issue_user_feed(session=s, actor=c.actor)
    return await _overview(request, c, feed_url=_feed_url(c, "user", raw))


def _feed_url(c: Ui, kind: str, raw: str) -> str:
    return f"{c.settings.base_url.rstrip('/')}/api/v1/ical/{kind}s/{raw}.ics"


async def _schedule(
    request: Request, c: Ui, schedule_id: int, view: View, anchor: date | None, feed_url: str | None = None
) -> Response:
    now = utcnow()
    async with c.db.read() as s:
        page = await oncall_views.schedule_page(
            session=s, actor=c.actor, schedule_id=schedule_id, view=view, anchor=anchor or now.date(), now=now
        )
    shown = anchor or now.astimezone(page.zone).date()
    context = {
        "page": page,
        "view": view,
        "anchor": shown,
        "prev": oncall_views.step(view, shown, forward=False),
        "next": oncall_views.step(view, shown, forward=True),
        "feed_url": feed_url,
        "now": now,
    }
    response = html(request, "oncall/schedule.html", context)
    if feed_url is not None:  # answering the feed post: the address bar shows the schedule
        response.headers["HX-Push-Url"] = f"/oncall/schedules/{schedule_id}"
    return response


@router.get("/oncall/schedules/{schedule_id}")
async def schedule(
    request: Request,
    schedule_id: int,
    view: View = View.week,
    start: Annotated[date | None, Query()] = None,
    c: Ui = Depends(ui),
) -> Response:
    """A schedule's shifts as a week or a month, its overrides, and its calendar link."""
    return await _schedule(request, c, schedule_id, view, start)


@router.post("/oncall/schedules/{schedule_id}/overrides")
async def add_override(
    schedule_id: int,
    starts: Annotated[str, Form(max_length=40)],
    ends: Annotated[str, Form(max_length=40)],
    user_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
    reason: Annotated[str, Form(max_length=2000)] = "",
    c: Ui = Depends(ui),
) -> Response:
    """Someone covers the schedule from `starts` to `ends` (wall-clock times in the schedule's zone)."""
    async with c.db.write() as s:
        await oncall_views.add_override(
            session=s,
            actor=c.actor,
            schedule_id=schedule_id,
            user_id=user_id,
            starts=starts,
            ends=ends,
            reason=reason,
        )
    return see_other(f"/oncall/schedules/{schedule_id}#overrides")


@router.post("/oncall/schedules/{schedule_id}/overrides/{override_id}/delete")
async def delete_override(schedule_id: int, override_id: int, c: Ui = Depends(ui)) -> Response:
    async with c.db.write() as s:
        await oncall.delete_override(
            session=s, actor=c.actor, schedule_id=schedule_id, override_id=override_id
        )
    return see_other(f"/oncall/schedules/{schedule_id}#overrides")


@router.post("/oncall/schedules/{schedule_id}/feed")
async def schedule_feed(request: Request, schedule_id: int, c: Ui = Depends(ui)) -> Response:
    """A secret calendar address for the schedule, shown once with a copy button."""
    async with c.db.write() as s:
        _, raw = await oncall.issue_schedule_feed(session=s, actor=c.actor, schedule_id=schedule_id)
    return await _schedule(request, c, schedule_id, View.week, None, feed_url=_feed_url(c, "schedule", raw))


# --- escalation policies --------------------------------------------------------------------------


@router.get("/oncall/policies/{policy_id}")
async def policy(request: Request, policy_id: int, c: Ui = Depends(ui)) -> Response:
    async with c.db.read() as s:
        found = await oncall.get_policy(session=s, actor=c.actor, policy_id=policy_id)
        page = await oncall_views.overview(session=s, actor=c.actor)
    return html(request, "oncall/policy.html", {"policy": found, "page": page})


@router.post("/oncall/policies")
async def create_policy(
    name: Name,
    delay_minutes: Annotated[int, Form(ge=0, le=7 * 24 * 60)],
    target: Annotated[list[str], Form(max_length=20)],
    team_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
    repeat_count: Annotated[int, Form(ge=0, le=9)] = 0,
    c: Ui = Depends(ui),
) -> Response:
    """A new policy with its first step (a policy that pages nobody is refused)."""
    first = StepSpec(delay_minutes, [oncall_views.parse_target(t) for t in target])
    async with c.db.write() as s:
        created = await oncall.create_policy(
            session=s, actor=c.actor, name=name, team_id=team_id, repeat_count=repeat_count, steps=[first]
        )
    return see_other(f"/oncall/policies/{created.id}")


@router.post("/oncall/policies/{policy_id}")
async def update_policy(
    policy_id: int,
    name: Name,
    repeat_count: Annotated[int, Form(ge=0, le=9)] = 0,
    description: Annotated[str, Form(max_length=5000)] = "",
    c: Ui = Depends(ui),
) -> Response:
    async with c.db.write() as s:
        await oncall.update_policy(
            session=s,
            actor=c.actor,
            policy_id=policy_id,
            name=name,
            repeat_count=repeat_count,
            description=description,
        )
    return see_other(f"/oncall/policies/{policy_id}")


@router.post("/oncall/policies/{policy_id}/steps")
async def add_step(
    policy_id: int,
    delay_minutes: Annotated[int, Form(ge=0, le=7 * 24 * 60)],
    target: Annotated[list[str], Form(max_length=20)],
    c: Ui = Depends(ui),
) -> Response:
    """Add a step paging the chosen users, schedules or teams, then waiting `delay_minutes`."""
    spec = StepSpec(delay_minutes, [oncall_views.parse_target(t) for t in target])
    async with c.db.write() as s:
        await oncall_views.edit_steps(session=s, actor=c.actor, policy_id=policy_id, add=spec)
    return see_other(f"/oncall/policies/{policy_id}")


@router.post("/oncall/policies/{policy_id}/steps/{index}/delete")
async def remove_step(policy_id: int, index: int, c: Ui = Depends(ui)) -> Response:
    async with c.db.write() as s:
        await oncall_views.edit_steps(session=s, actor=c.actor, policy_id=policy_id, remove=index)
    return see_other(f"/oncall/policies/{policy_id}")
