"""One-click actions on an incident: each a small form post (CSRF-checked) calling one service function.

Every action answers with a redirect back to the incident page (htmx follows it and swaps the page in place);
a refusal from the service (an illegal transition, a missing resolution summary, no permission) renders as a
message on the page instead.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Response

from tocsin.incidents import service as incidents
from tocsin.incidents.models import (
    HoldReason,
    IncidentRole,
    IncidentState,
    MajorStatus,
    ResolutionCode,
    Visibility,
)
from tocsin.oncall import service as oncall
from tocsin.web.routing import see_other, ui_router
from tocsin.web.session import Ui, ui

router = ui_router()
Id = Annotated[int | None, Form(ge=1, le=2**63 - 1)]
Level = Annotated[int, Form(ge=1, le=3)]
Note = Annotated[str | None, Form(max_length=20_000)]


def _back(ref: str, anchor: str = "") -> Response:
    return see_other(f"/incidents/INC-{incidents.parse_ref(ref)}{anchor}")


@router.post("/incidents/{ref}/state")
async def transition(
    ref: str,
    state: Annotated[IncidentState, Form()],
    reason: Note = None,
    hold_reason: Annotated[HoldReason | None, Form()] = None,
    resolution_code: Annotated[ResolutionCode | None, Form()] = None,
    resolution_summary: Note = None,
    duplicate_of: Annotated[str | None, Form(max_length=40)] = None,
    known_error_ref: Annotated[str | None, Form(max_length=60)] = None,
    c: Ui = Depends(ui),
) -> Response:
    """Acknowledge, start, hold (with a reason), resolve (code + summary), close, reopen or cancel."""
    async with c.db.write() as s:
        await incidents.transition(
            session=s,
            actor=c.actor,
            ref=ref,
            target=state,
            reason=reason or None,
            hold_reason=hold_reason,
            resolution_code=resolution_code,
            resolution_summary=resolution_summary or None,
            duplicate_of=duplicate_of or None,
            known_error_ref=known_error_ref or None,
        )
    return _back(ref)


@router.post("/incidents/{ref}/escalate")
async def escalate(ref: str, c: Ui = Depends(ui)) -> Response:
    """Page the next escalation step now instead of waiting out the current one's delay."""
    async with c.db.write() as s:
        await oncall.escalate_now(session=s, actor=c.actor, ref=ref)
    return _back(ref)


@router.post("/incidents/{ref}/take")
async def take(ref: str, c: Ui = Depends(ui)) -> Response:
    """Assign the incident to yourself."""
    async with c.db.write() as s:
        await incidents.assign(session=s, actor=c.actor, ref=ref, assignee_id=c.actor.user_id)
    return _back(ref)


@router.post("/incidents/{ref}/assign")
async def assign(ref: str, team_id: Id = None, assignee_id: Id = None, c: Ui = Depends(ui)) -> Response:
    """Route to a team and a person (an empty choice clears it)."""
    async with c.db.write() as s:
        await incidents.assign(session=s, actor=c.actor, ref=ref, team_id=team_id, assignee_id=assignee_id)
    return _back(ref)


@router.post("/incidents/{ref}/priority")
async def priority(ref: str, impact: Level, urgency: Level, c: Ui = Depends(ui)) -> Response:
    """Change impact and urgency; the priority is derived again from the matrix."""
    async with c.db.write() as s:
        await incidents.update_incident(session=s, actor=c.actor, ref=ref, impact=impact, urgency=urgency)
    return _back(ref)


@router.post("/incidents/{ref}/roles")
async def set_role(
    ref: str,
    role: Annotated[IncidentRole, Form()],
    user_id: Annotated[int, Form(ge=1, le=2**63 - 1)],
    c: Ui = Depends(ui),
) -> Response:
    """Give an incident-command role (commander, comms lead, resolver, scribe) to someone."""
    async with c.db.write() as s:
        await incidents.set_role(session=s, actor=c.actor, ref=ref, role=role, user_id=user_id)
    return _back(ref)


@router.post("/incidents/{ref}/roles/{role}/clear")
async def clear_role(ref: str, role: IncidentRole, c: Ui = Depends(ui)) -> Response:
    async with c.db.write() as s:
        await incidents.clear_role(session=s, actor=c.actor, ref=ref, role=role)
    return _back(ref)


@router.post("/incidents/{ref}/major")
async def major(
    ref: str,
    status: Annotated[MajorStatus, Form()],
    reason: Note = None,
    c: Ui = Depends(ui),
) -> Response:
    """Propose, declare (accept) or reject the incident as a major incident."""
    async with c.db.write() as s:
        await incidents.set_major(session=s, actor=c.actor, ref=ref, status=status, reason=reason or None)
    return _back(ref)


@router.post("/incidents/{ref}/notes")
async def add_note(
    ref: str,
    text: Annotated[str, Form(max_length=20_000)],
    visibility: Annotated[Visibility, Form()] = Visibility.internal,
    c: Ui = Depends(ui),
) -> Response:
    """An internal work note, or a stakeholder update the reporter reads too."""
    async with c.db.write() as s:
        await incidents.add_note(session=s, actor=c.actor, ref=ref, text=text, visibility=visibility)
    return _back(ref, "#timeline")
