"""REST routes for the notify domain: contact methods, notification rules, templates, throttles, outbox."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from tocsin.api_common import API
from tocsin.auth.deps import Ctx, ctx
from tocsin.notify import configuration, contacts, service
from tocsin.notify.models import ChannelKind, NotifyEvent, OutboxStatus
from tocsin.notify.schemas import (
    ContactMethodIn,
    ContactMethodOut,
    ContactMethodPatch,
    ContactMethodSecret,
    OutboxOut,
    RuleIn,
    RuleOut,
    RulePatch,
    TemplateIn,
    TemplateOut,
    ThrottleIn,
    ThrottleOut,
)

router = APIRouter(prefix=API)
METHODS = "/users/{user_id}/contact-methods"
RULES = "/users/{user_id}/notification-rules"


# --- contact methods -------------------------------------------------------------------------------


@router.get(METHODS, response_model=list[ContactMethodOut], tags=["notifications"])
async def list_contact_methods(user_id: int, c: Ctx = Depends(ctx)) -> list[ContactMethodOut]:
    async with c.db.read() as s:
        rows = await contacts.list_contact_methods(session=s, actor=c.actor, user_id=user_id)
    return [ContactMethodOut.model_validate(m) for m in rows]


@router.post(METHODS, response_model=ContactMethodSecret, status_code=201, tags=["notifications"])
async def create_contact_method(
    user_id: int, body: ContactMethodIn, c: Ctx = Depends(ctx)
) -> ContactMethodSecret:
    """Add a contact method; a webhook's signing secret is in this answer and never shown again."""
    async with c.db.write() as s:
        cm, secret = await contacts.create_contact_method(
            session=s, actor=c.actor, user_id=user_id, **body.model_dump()
        )
    return ContactMethodSecret(**ContactMethodOut.model_validate(cm).model_dump(), secret=secret)


@router.patch(METHODS + "/{method_id}", response_model=ContactMethodSecret, tags=["notifications"])
async def update_contact_method(
    user_id: int, method_id: int, body: ContactMethodPatch, c: Ctx = Depends(ctx)
) -> ContactMethodSecret:
    async with c.db.write() as s:
        cm, secret = await contacts.update_contact_method(
            session=s,
            actor=c.actor,
            user_id=user_id,
            method_id=method_id,
            **body.model_dump(exclude_unset=True),
        )
    return ContactMethodSecret(**ContactMethodOut.model_validate(cm).model_dump(), secret=secret)


@router.delete(METHODS + "/{method_id}", status_code=204, tags=["notifications"])
async def delete_contact_method(user_id: int, method_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await contacts.delete_contact_method(session=s, actor=c.actor, user_id=user_id, method_id=method_id)


@router.post(METHODS + "/{method_id}/test", response_model=OutboxOut, status_code=202, tags=["notifications"])
async def test_contact_method(user_id: int, method_id: int, c: Ctx = Depends(ctx)) -> OutboxOut:
    """Queue a test message; when it is delivered the contact method is marked verified."""
    async with c.db.write() as s:
        message = await contacts.send_test(
            session=s, actor=c.actor, user_id=user_id, method_id=method_id, base_url=c.settings.base_url
        )
    return OutboxOut.model_validate(message)


# --- rules -----------------------------------------------------------------------------------------


@router.get(RULES, response_model=list[RuleOut], tags=["notifications"])
async def list_rules(user_id: int, c: Ctx = Depends(ctx)) -> list[RuleOut]:
    async with c.db.read() as s:
        return [
            RuleOut.model_validate(r)
            for r in await contacts.list_rules(session=s, actor=c.actor, user_id=user_id)
        ]


@router.post(RULES, response_model=RuleOut, status_code=201, tags=["notifications"])
async def create_rule(user_id: int, body: RuleIn, c: Ctx = Depends(ctx)) -> RuleOut:
    async with c.db.write() as s:
        rule = await contacts.create_rule(session=s, actor=c.actor, user_id=user_id, **body.model_dump())
    return RuleOut.model_validate(rule)


@router.patch(RULES + "/{rule_id}", response_model=RuleOut, tags=["notifications"])
async def update_rule(user_id: int, rule_id: int, body: RulePatch, c: Ctx = Depends(ctx)) -> RuleOut:
    async with c.db.write() as s:
        rule = await contacts.update_rule(
            session=s, actor=c.actor, user_id=user_id, rule_id=rule_id, **body.model_dump(exclude_unset=True)
        )
    return RuleOut.model_validate(rule)


@router.delete(RULES + "/{rule_id}", status_code=204, tags=["notifications"])
async def delete_rule(user_id: int, rule_id: int, c: Ctx = Depends(ctx)) -> None:
    async with c.db.write() as s:
        await contacts.delete_rule(session=s, actor=c.actor, user_id=user_id, rule_id=rule_id)


# --- configuration ---------------------------------------------------------------------------------


@router.get("/notification-templates", response_model=list[TemplateOut], tags=["notifications"])
async def list_templates(c: Ctx = Depends(ctx)) -> list[TemplateOut]:
    """Every event x channel: the edited subject/body (null = the default) and the default itself."""
    async with c.db.read() as s:
        views = await configuration.list_templates(session=s, actor=c.actor)
    return [TemplateOut.model_validate(v) for v in views]


@router.put("/notification-templates/{event}/{channel}", response_model=TemplateOut, tags=["notifications"])
async def set_template(
    event: NotifyEvent, channel: ChannelKind, body: TemplateIn, c: Ctx = Depends(ctx)
) -> TemplateOut:
    """Edit a template (Jinja, sandboxed); it must render the sample context or the answer is 422."""
    async with c.db.write() as s:
        view = await configuration.set_template(
            session=s, actor=c.actor, event=event, channel=channel, subject=body.subject, body=body.body
        )
    return TemplateOut.model_validate(view)


@router.get("/notification-throttles", response_model=list[ThrottleOut], tags=["notifications"])
async def list_throttles(c: Ctx = Depends(ctx)) -> list[ThrottleOut]:
    async with c.db.read() as s:
        limits = await configuration.list_throttles(session=s)
    return [
        ThrottleOut(channel=k, max_messages=v.max_messages, window_seconds=v.window_seconds)
        for k, v in limits.items()
    ]


@router.put("/notification-throttles/{channel}", response_model=ThrottleOut, tags=["notifications"])
async def set_throttle(channel: ChannelKind, body: ThrottleIn, c: Ctx = Depends(ctx)) -> ThrottleOut:
    async with c.db.write() as s:
        limit = await configuration.set_throttle(
            session=s, actor=c.actor, channel=channel, **body.model_dump()
        )
    return ThrottleOut(channel=channel, max_messages=limit.max_messages, window_seconds=limit.window_seconds)


# --- outbox ----------------------------------------------------------------------------------------


@router.get("/outbox", response_model=list[OutboxOut], tags=["notifications"])
async def list_outbox(
    incident_id: int | None = None,
    status: OutboxStatus | None = None,
    user_id: int | None = None,
    before_id: int | None = None,
    limit: int = Query(default=100, ge=1, le=500),
    c: Ctx = Depends(ctx),
) -> list[OutboxOut]:
    """Delivery record, newest first (admins and managers); page with before_id = the last id seen."""
    async with c.db.read() as s:
        rows = await service.list_outbox(
            session=s,
            actor=c.actor,
            incident_id=incident_id,
            status=status,
            user_id=user_id,
            before_id=before_id,
            limit=limit,
        )
    return [OutboxOut.model_validate(m) for m in rows]
