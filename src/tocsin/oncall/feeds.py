"""Secret iCalendar feed URLs: issuing and rotating their tokens, and rendering a user's or a schedule's
shifts.

A calendar client cannot send a bearer token, so the secret travels in the URL and is the only credential; it
is stored as a SHA-256 hash like API tokens, shown once, and rotating it kills the old URL. A feed covers from
PAST before to FUTURE after the start of the current UTC day, so every fetch within a day returns the same
events (and all fetches return the same UIDs for the same shifts).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.audit import service as audit
from tocsin.auth import service as auth
from tocsin.auth.permissions import Actor
from tocsin.auth.service import hash_secret
from tocsin.db import utcnow
from tocsin.errors import Invalid, NotFound
from tocsin.oncall import access, ical
from tocsin.oncall.models import FeedKind, FeedToken, Layer, LayerMember, Override
from tocsin.oncall.models import Schedule as ScheduleRow
from tocsin.oncall.queries import schedule_shifts
from tocsin.oncall.rotation import Shift
from tocsin.oncall.schedules import load_schedule

FEED_PREFIX = "tcf_"
PAST = timedelta(days=14)
FUTURE = timedelta(days=90)


def feed_window(now: datetime) -> tuple[datetime, datetime]:
    """The span a feed fetched at `now` covers, aligned to the UTC day so it is stable within a day."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - PAST, day + FUTURE


async def _issue(session: AsyncSession, actor: Actor, kind: FeedKind, owner_id: int) -> tuple[FeedToken, str]:
    owner = FeedToken.user_id if kind == FeedKind.user else FeedToken.schedule_id
    token = await session.scalar(select(FeedToken).where(owner == owner_id))
    raw = FEED_PREFIX + secrets.token_urlsafe(32)
    action = f"{kind}.feed_token.rotate" if token else f"{kind}.feed_token.create"
    if token is None:
        token = FeedToken(kind=kind, **{f"{kind}_id": owner_id})
        session.add(token)
    token.token_hash, token.prefix = hash_secret(raw), raw[:10]
    token.created_by, token.created_at = actor.user_id, utcnow()
    await session.flush()
    audit.record(
        session=session,
        actor=actor.ref,
        action=action,
        entity_type=str(kind),
        entity_id=owner_id,
        after={"feed_token_prefix": token.prefix},
    )
    return token, raw


async def issue_schedule_feed(
    *, session: AsyncSession, actor: Actor, schedule_id: int
) -> tuple[FeedToken, str]:
    """Create or rotate the schedule's feed secret (returned once); whoever holds it can read the schedule."""
    schedule = await load_schedule(session=session, schedule_id=schedule_id)
    await access.require_write(
        session=session, actor=actor, team_id=schedule.team_id, what="this schedule's calendar feed"
    )
    return await _issue(session, actor, FeedKind.schedule, schedule.id)


async def issue_user_feed(*, session: AsyncSession, actor: Actor) -> tuple[FeedToken, str]:
    """Create or rotate the caller's own feed secret (returned once): their shifts on every schedule."""
    if actor.user_id is None:
        raise Invalid("only a user has a personal on-call calendar")
    return await _issue(session, actor, FeedKind.user, actor.user_id)


async def _token(session: AsyncSession, secret: str, kind: FeedKind) -> FeedToken:
    token = await session.scalar(select(FeedToken).where(FeedToken.token_hash == hash_secret(secret)))
    if token is None or token.kind != kind:
        raise NotFound("no calendar feed at this address; it may have been rotated, ask for a new link")
    return token


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    default_start, default_end = feed_window(utcnow())
    return start or default_start, end or default_end


def _entry(schedule: ScheduleRow, shift: Shift, summary: str, domain: str) -> ical.Entry:
    assert shift.source is not None  # only segments with somebody on call reach a feed
    origin = "an override" if shift.source.kind == "override" else f"layer {shift.source.name!r}"
    return ical.Entry(
        uid=ical.shift_uid(schedule_id=schedule.id, source=shift.source, start=shift.start, domain=domain),
        start=shift.start,
        end=shift.end,
        summary=summary,
        description=f"On-call schedule {schedule.name!r}, from {origin}.",
    )


async def ical_for_schedule(
    *,
    session: AsyncSession,
    secret: str,
    domain: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> bytes:
    """The schedule's shifts (who, when) as iCalendar; the secret is the only credential."""
    token = await _token(session, secret, FeedKind.schedule)
    assert token.schedule_id is not None
    schedule = await load_schedule(session=session, schedule_id=token.schedule_id)
    start, end = _window(start, end)
    entries = []
    for shift in await schedule_shifts(session=session, schedule=schedule, start=start, end=end):
        if shift.user_id is not None:
            user = await auth.get_user(session=session, user_id=shift.user_id)
            entries.append(_entry(schedule, shift, f"On call: {schedule.name} ({user.name})", domain))
    return ical.render(entries, name=f"On call: {schedule.name}", stamp=utcnow())


async def ical_for_user(
    *,
    session: AsyncSession,
    secret: str,
    domain: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> bytes:
    """The token owner's shifts on every schedule as iCalendar; the secret is the only credential."""
    token = await _token(session, secret, FeedKind.user)
    assert token.user_id is not None
    user = await auth.get_user(session=session, user_id=token.user_id)
    if not user.active:
        raise NotFound("no calendar feed at this address; it may have been rotated, ask for a new link")
    start, end = _window(start, end)
    in_layers = select(Layer.schedule_id).join(LayerMember).where(LayerMember.user_id == user.id)
    by_override = select(Override.schedule_id).where(
        Override.user_id == user.id, Override.ends_at > start, Override.starts_at < end
    )
    schedules = await session.scalars(
        select(ScheduleRow).where(ScheduleRow.id.in_(in_layers.union(by_override))).order_by(ScheduleRow.name)
    )
    entries = [
        _entry(schedule, shift, f"On call: {schedule.name}", domain)
        for schedule in list(schedules)
        for shift in await schedule_shifts(session=session, schedule=schedule, start=start, end=end)
        if shift.user_id == user.id
    ]
    return ical.render(entries, name=f"On call: {user.name}", stamp=utcnow())
