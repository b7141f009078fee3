"""Notification configuration as data: edited message templates and channel throttles."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit import service as audit
from tocsin.auth.permissions import Actor, Can
from tocsin.db import utcnow
from tocsin.errors import Forbidden, Invalid
from tocsin.notify import templates, throttle
from tocsin.notify.models import ChannelKind, ChannelThrottle, NotificationTemplate, NotifyEvent


def _require_config(actor: Actor) -> None:
    if not actor.can(Can.manage_config):
        raise Forbidden(f"your role ({actor.role}) may not manage configuration")


# --- templates -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateView:
    event: NotifyEvent
    channel: ChannelKind
    subject: str | None  # the edited text, or None for the default
    body: str | None
    default_subject: str
    default_body: str


async def template_override(
    *, session: AsyncSession, event: NotifyEvent, channel: ChannelKind
) -> tuple[str | None, str | None]:
    """The edited (subject, body) for an event on a channel; None parts mean the default."""
    row = await session.scalar(
        select(NotificationTemplate).where(
            NotificationTemplate.event == event, NotificationTemplate.channel == channel
        )
    )
    return (row.subject, row.body) if row else (None, None)


async def list_templates(*, session: AsyncSession, actor: Actor) -> list[TemplateView]:
    """Every event x channel, with its edited text (if any) and the default it replaces."""
    _require_config(actor)
    rows = {(r.event, r.channel): r for r in await session.scalars(select(NotificationTemplate))}
    views = []
    for event in NotifyEvent:
        for channel in ChannelKind:
            row = rows.get((event, channel))
            default = templates.default(event)
            views.append(
                TemplateView(
                    event,
                    channel,
                    row.subject if row else None,
                    row.body if row else None,
                    default.subject,
                    default.body,
                )
            )
    return views


async def set_template(
    *,
    session: AsyncSession,
    actor: Actor,
    event: NotifyEvent,
    channel: ChannelKind,
    subject: str | None,
    body: str | None,
) -> TemplateView:
    """Store an edited template (None parts restore the default); each part must render the sample context."""
    _require_config(actor)
    for name, source in (("subject", subject), ("body", body)):
        problem = templates.check(source) if source is not None else None
        if problem is not None:
            raise Invalid(f"the {name} template does not render: {problem}", field=name)
    row = await session.scalar(
        select(NotificationTemplate).where(
            NotificationTemplate.event == event, NotificationTemplate.channel == channel
        )
    )
    before = {"subject": row.subject, "body": row.body} if row else None
    if subject is None and body is None:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(
            NotificationTemplate(
                event=event,
                channel=channel,
                subject=subject,
                body=body,
                updated_at=utcnow(),
                updated_by=actor.ref,
            )
        )
    else:
        row.subject, row.body, row.updated_at, row.updated_by = subject, body, utcnow(), actor.ref
    audit.record(
        session=session,
        actor=actor.ref,
        action="notification_template.set",
        entity_type="notification_template",
        entity_id=f"{event}/{channel}",
        before=before,
        after={"subject": subject, "body": body},
    )
    default = templates.default(event)
    return TemplateView(event, channel, subject, body, default.subject, default.body)


# --- throttles -------------------------------------------------------------------------------------


async def throttle_limit(*, session: AsyncSession, channel: ChannelKind) -> throttle.Limit:
    row = await session.get(ChannelThrottle, str(channel))
    return throttle.Limit(row.max_messages, row.window_seconds) if row else throttle.DEFAULTS[channel]


async def list_throttles(*, session: AsyncSession) -> dict[ChannelKind, throttle.Limit]:
    rows = {r.channel: r for r in await session.scalars(select(ChannelThrottle))}
    return {
        kind: throttle.Limit(rows[kind].max_messages, rows[kind].window_seconds)
        if kind in rows
        else throttle.DEFAULTS[kind]
        for kind in ChannelKind
    }


async def set_throttle(
    *, session: AsyncSession, actor: Actor, channel: ChannelKind, max_messages: int, window_seconds: int
) -> throttle.Limit:
    """Limit messages to any one destination of `channel` (max_messages 0 removes the limit)."""
    _require_config(actor)
    if max_messages < 0 or window_seconds < 1:
        raise Invalid("max_messages must be 0 (no limit) or more, and window_seconds at least 1")
    before = await throttle_limit(session=session, channel=channel)
    row = await session.get(ChannelThrottle, str(channel))
    if row is None:
        session.add(
            ChannelThrottle(
                channel=channel, max_messages=max_messages, window_seconds=window_seconds, updated_at=utcnow()
            )
        )
    else:
        row.max_messages, row.window_seconds, row.updated_at = max_messages, window_seconds, utcnow()
    audit.record(
        session=session,
        actor=actor.ref,
        action="channel_throttle.set",
        entity_type="channel_throttle",
        entity_id=str(channel),
        before=asdict(before),
        after={"max_messages": max_messages, "window_seconds": window_seconds},
    )
    return throttle.Limit(max_messages, window_seconds)
