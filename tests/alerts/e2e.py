"""A database ready for a real `tocsin serve`: schema, seed data, one service and Alertmanager integrations.

The schema comes from the models (create_all) stamped at the migration head, so a subprocess server reports
ready whether or not a migration for the newest tables has been written yet. Shared by the slow end-to-end
tests and bench/ingest.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from alembic import command

from tocsin.alerts import service
from tocsin.alerts.models import IntegrationKind
from tocsin.auth.permissions import SYSTEM
from tocsin.catalog import service as catalog
from tocsin.db import make_sync_engine
from tocsin.migrate import alembic_config
from tocsin.seed import seed_defaults
from tocsin.tables import Base
from tocsin.wiring import open_database


async def _populate(url: str, names: Sequence[str], kind: IntegrationKind) -> dict[str, str]:
    db = open_database(url, pool_size=2)
    keys: dict[str, str] = {}
    try:
        async with db.write() as s:
            await seed_defaults(s)
            svc = await catalog.create_service(session=s, actor=SYSTEM, slug="bench", name="Bench", tier=2)
            for name in names:
                _, keys[name] = await service.create_integration(
                    session=s,
                    actor=SYSTEM,
                    service_id=svc.id,
                    name=name,
                    kind=kind,
                    config={"rate_limit_per_minute": None},
                )
    finally:
        await db.dispose()
    return keys


def prepare_database(
    url: str, names: Sequence[str], kind: IntegrationKind = IntegrationKind.alertmanager
) -> dict[str, str]:
    """Build the schema on an empty database and add one integration per name; their keys by name."""
    engine = make_sync_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    command.stamp(alembic_config(url), "head")
    return asyncio.run(_populate(url, names, kind))
