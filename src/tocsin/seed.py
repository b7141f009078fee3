"""Default configuration every installation starts with (idempotent; run by `tocsin migrate`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin import config_cache
from tocsin.comms.service import seed_comms
from tocsin.incidents.seed import seed_incidents
from tocsin.incidents.sla_config import seed_sla

Seeder = Callable[[AsyncSession], Awaitable[None]]

# Each domain that ships default data appends its seeder here (kept in import order).
SEEDERS: list[Seeder] = [seed_incidents, seed_sla, seed_comms]


async def seed_defaults(session: AsyncSession) -> None:
    config_cache.changed(session)
    for seeder in SEEDERS:
        await seeder(session)
