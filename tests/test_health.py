"""Load-balancer probes: /healthz says the process is up, /readyz that the database and schema are ready."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import PG_ADMIN_URL
from tocsin import migrate
from tocsin.app import create_app
from tocsin.config import Settings
from tocsin.db import Database

pytestmark = pytest.mark.anyio


async def _set_schema_version(db: Database, version: str) -> None:
    async with db.write() as s:
        await s.execute(text("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL)"))
        await s.execute(text("DELETE FROM alembic_version"))
        await s.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": version})


async def test_ready_when_the_schema_is_at_the_code_head_and_not_when_behind(
    app: object, db: Database
) -> None:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")  # type: ignore[arg-type]
    async with client:
        await _set_schema_version(db, migrate.head() or "")
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["schema"] == migrate.head()
        await _set_schema_version(db, "0000_older")
        behind = await client.get("/readyz")
        assert behind.status_code == 503 and "tocsin migrate" in behind.json()["detail"]
        assert (await client.get("/healthz")).status_code == 200


async def test_not_ready_when_the_database_is_unreachable() -> None:
    settings = Settings(
        database_url=PG_ADMIN_URL.rsplit("/", 1)[0] + "/tocsin_no_such_database", demo=True, engine=False
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        async with client:
            r = await client.get("/readyz")
    assert r.status_code == 503 and "database unreachable" in r.json()["detail"]
