"""Comms operations: the stakeholder-update cadence per priority (configuration as data) and its defaults."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from types import MappingProxyType

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin import config_cache
from tocsin.audit import service as audit
from tocsin.auth.permissions import Actor, Can
from tocsin.comms.models import CadenceRule
from tocsin.db import utcnow
from tocsin.errors import Forbidden, Invalid

SEED_ACTOR = "system:seed"
# reference/domain.md: "updates every 30 min for P1, every hour for P2, until resolved".
DEFAULT_CADENCE = {1: 30, 2: 60}
MAX_INTERVAL_MINUTES = 7 * 24 * 60
PRIORITIES = (1, 2, 3, 4)


async def list_cadence(*, session: AsyncSession) -> list[CadenceRule]:
    """The priorities with reminders, by priority."""
    return list(
        await session.scalars(
            select(CadenceRule)
            .where(CadenceRule.interval_minutes.is_not(None))
            .order_by(CadenceRule.priority)
        )
    )


async def _load_intervals(session: AsyncSession) -> MappingProxyType[int, int | None]:
    rows = await session.execute(select(CadenceRule.priority, CadenceRule.interval_minutes))
    return MappingProxyType({int(p): m for p, m in rows})


async def interval_for(*, session: AsyncSession, priority: int) -> timedelta | None:
    """How long stakeholders may go without an update on an open incident of `priority` (None: no cadence)."""
    minutes = (await config_cache.cached(session, "comms_cadence", _load_intervals)).get(priority)
    return None if minutes is None else timedelta(minutes=minutes)


def _checked(rules: Iterable[tuple[int, int]]) -> dict[int, int]:
    out: dict[int, int] = {}
    for priority, minutes in rules:
        if priority not in PRIORITIES:
            raise Invalid(f"priority {priority}: priorities are 1 (critical) to 4 (low)")
        if priority in out:
            raise Invalid(f"priority {priority} is given twice; give each priority at most once")
        if not 1 <= minutes <= MAX_INTERVAL_MINUTES:
            raise Invalid(f"interval_minutes for P{priority} is 1 to {MAX_INTERVAL_MINUTES} (a week)")
        out[priority] = minutes
    return out


async def replace_cadence(
    *, session: AsyncSession, actor: Actor, rules: Iterable[tuple[int, int]]
) -> list[CadenceRule]:
    """Replace every rule at once with (priority, interval_minutes) pairs; priorities left out get none.

    Open incidents follow a changed interval from their next reminder or stakeholder update.
    """
    if not actor.can(Can.manage_config):
        raise Forbidden(f"your role ({actor.role}) may not change the comms cadence; an admin can")
    new = _checked(rules)
    old = {r.priority: r.interval_minutes for r in await list_cadence(session=session)}
    if new != old:
        config_cache.changed(session)
        now = utcnow()
        await session.execute(delete(CadenceRule))
        session.add_all(
            CadenceRule(priority=p, interval_minutes=new.get(p), updated_at=now) for p in PRIORITIES
        )
        await session.flush()
        audit.record(
            session=session,
            actor=actor.ref,
            action="comms_cadence.replace",
            entity_type="comms_cadence",
            entity_id="default",
            before=old,
            after=new,
        )
    return await list_cadence(session=session)


async def seed_comms(session: AsyncSession) -> None:
    """Add the default cadence of each priority that has no row yet (a removed one keeps its null row)."""
    known = set(await session.scalars(select(CadenceRule.priority)))
    missing = {p: m for p, m in DEFAULT_CADENCE.items() if p not in known}
    if not missing:
        return
    now = utcnow()
    session.add_all(
        CadenceRule(priority=p, interval_minutes=m, updated_at=now) for p, m in sorted(missing.items())
    )
    audit.record(
        session=session,
        actor=SEED_ACTOR,
        action="comms_cadence.seed",
        entity_type="comms_cadence",
        entity_id="default",
        after=missing,
    )
    await session.flush()


__all__ = ["DEFAULT_CADENCE", "interval_for", "list_cadence", "replace_cadence", "seed_comms"]
