"""The incident queue and the incident page (read side); the actions on an incident live in ui_actions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response

from tocsin.auth.permissions import Can
from tocsin.db import utcnow
from tocsin.incidents.lifecycle import OPEN_STATES
from tocsin.incidents.models import (
    HoldReason,
    IncidentRole,
    IncidentState,
    MajorStatus,
    ResolutionCode,
    Visibility,
)
from tocsin.incidents.service import IncidentFilter, SortKey
from tocsin.web import incident_views
from tocsin.web.live import current_seq
from tocsin.web.render import html
from tocsin.web.routing import ui_router
from tocsin.web.session import Ui, ui

router = ui_router()
PAGE = 50
BACK_MAX = 50  # previous-page cursors a queue URL remembers
FIRST = "-"  # stands for "the first page" in the back stack
Text = Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")]


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filters as the form sends them; `f=1` marks a submitted form (else: open incidents)."""

    state: list[IncidentState]
    priority: list[int]
    type: str | None
    team: int | None
    service: int | None
    mine: bool
    major: bool
    q: str | None
    sort: SortKey
    submitted: bool

    def filters(self) -> IncidentFilter:
        states = tuple(self.state) if self.submitted else tuple(sorted(OPEN_STATES))
        return IncidentFilter(
            states=states,
            priorities=tuple(self.priority),
            type_keys=(self.type,) if self.type else (),
            team_id=self.team,
            service_id=self.service,
            assignee="me" if self.mine else None,
            major=(MajorStatus.proposed, MajorStatus.accepted) if self.major else (),
            q=self.q.strip() if self.q and self.q.strip() else None,
        )

    def params(self) -> list[tuple[str, str]]:
        """The filters as query parameters, for links that keep them (paging, sorting)."""
        states = self.state if self.submitted else sorted(OPEN_STATES)
        out: list[tuple[str, str]] = [("f", "1")]
        out += [("state", str(s)) for s in states]
        out += [("priority", str(p)) for p in self.priority]
        for name, value in (("type", self.type), ("team", self.team), ("service", self.service)):
            if value:
                out.append((name, str(value)))
        out += [("mine", "1")] if self.mine else []
        out += [("major", "1")] if self.major else []
        out += [("q", self.q)] if self.q else []
        out.append(("sort", str(self.sort)))
        return out


def queue_query(
    state: Annotated[list[IncidentState], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    priority: Annotated[list[Annotated[int, Query(ge=1, le=4)]], Query()] = [],  # noqa: B006
    type: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z0-9_]*$")] = None,
    team: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    service: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    mine: bool = False,
    major: bool = False,
    q: Text = None,
    sort: SortKey = SortKey.created_at,
    f: bool = False,
) -> QueueQuery:
    return QueueQuery(state, priority, type or None, team, service, mine, major, q, sort, f)


def _pager(
    query: QueueQuery, cursor: str | None, back: str | None, next_cursor: str | None
) -> dict[str, str]:
    """Links to the next and previous pages: keyset cursors only go forward, so the URL keeps the way back."""
    stack = [c for c in (back or "").split(".") if c][-BACK_MAX:]
    links: dict[str, str] = {}
    if next_cursor:
        forward = [*stack, cursor or FIRST][-BACK_MAX:]
        links["next"] = "?" + urlencode(
            [*query.params(), ("cursor", next_cursor), ("back", ".".join(forward))]
        )
    if cursor:
        previous = stack[-1] if stack else FIRST
        params = query.params() + ([] if previous == FIRST else [("cursor", previous)])
        if stack[:-1]:
            params.append(("back", ".".join(stack[:-1])))
        links["prev"] = "?" + urlencode(params)
    return links


@router.get("/incidents")
async def queue(
    request: Request,
    query: QueueQuery = Depends(queue_query),
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    back: Annotated[str | None, Query(max_length=BACK_MAX * 210)] = None,
    c: Ui = Depends(ui),
) -> Response:
    """The queue: filters, search, sort, keyset pages; the rows refresh when an incident changes."""
    async with c.db.read() as s:
        page = await incident_views.queue_page(
            session=s,
            actor=c.actor,
            filters=query.filters(),
            sort=query.sort,
            cursor=cursor if cursor != FIRST else None,
            limit=PAGE,
        )
    context = {
        "page": page,
        "query": query,
        "states": list(IncidentState),
        "open_states": OPEN_STATES,
        "sorts": list(SortKey),
        "links": _pager(query, cursor, back, page.next_cursor),
        "refresh_url": request.url.path + ("?" + request.url.query if request.url.query else ""),
        "live": cursor is None,
        "seq": current_seq(request),
        "now": utcnow(),
    }
    if request.headers.get("hx-target") == "queue-rows":
        return html(request, "incidents/_rows.html", context)
    return html(request, "incidents/queue.html", context)


async def _detail(c: Ui, ref: str) -> incident_views.DetailPage:
    async with c.db.read() as s:
        return await incident_views.detail_page(session=s, actor=c.actor, ref=ref, now=utcnow())


def _detail_context(request: Request, c: Ui, page: incident_views.DetailPage) -> dict[str, object]:
    return {
        "page": page,
        "i": page.view.incident,
        "now": utcnow(),
        "seq": current_seq(request),
        "roles": list(IncidentRole),
        "hold_reasons": list(HoldReason),
        "resolution_codes": list(ResolutionCode),
        "visibilities": list(Visibility),
        "majors": MajorStatus,
        "can_work": c.actor.can(Can.work_incidents),
        "can_decide_major": c.actor.can(Can.work_any_incident),
    }


@router.get("/incidents/{ref}")
async def incident(request: Request, ref: str, c: Ui = Depends(ui)) -> Response:
    """One incident: header, SLA clocks, roles, one-click actions, the live timeline."""
    page = await _detail(c, ref)
    return html(request, "incidents/detail.html", _detail_context(request, c, page))


@router.get("/incidents/{ref}/live")
async def incident_live(request: Request, ref: str, c: Ui = Depends(ui)) -> Response:
    """The header and the timeline again (for the live refresh); the forms are left as they are."""
    page = await _detail(c, ref)
    return html(request, "incidents/_live.html", _detail_context(request, c, page))


@router.get("/incidents/{ref}/timeline")
async def incident_timeline(
    request: Request,
    ref: str,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    c: Ui = Depends(ui),
) -> Response:
    """Later timeline entries, a page at a time (for long incidents)."""
    async with c.db.read() as s:
        entries, more = await incident_views.timeline_page(session=s, actor=c.actor, ref=ref, cursor=cursor)
    return html(request, "incidents/_entries.html", {"entries": entries, "more_cursor": more, "ref": ref})
