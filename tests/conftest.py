"""Shared fixtures: a real database per test (SQLite file and PostgreSQL), the app, personas."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text

from tocsin.app import create_app
from tocsin.auth import service as auth
from tocsin.auth.models import Role, TeamRole
from tocsin.auth.permissions import SYSTEM
from tocsin.config import Settings
from tocsin.db import Database, make_sync_engine
from tocsin.seed import seed_defaults
from tocsin.tables import Base
from tocsin.wiring import open_database

PG_ADMIN_URL = os.environ.get("TOCSIN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("TOCSIN_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


async def _seed(url: str) -> None:
    db = open_database(url)
    async with db.write() as s:
        await seed_defaults(s)
    await db.dispose()


def _build_schema(url: str) -> None:
    engine = make_sync_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()
    import asyncio

    asyncio.run(_seed(url))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    _build_schema(f"sqlite:///{path}")
    return path


def _pg_reachable() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


@contextmanager
def throwaway_pg(prefix: str = "tocsin_test") -> Iterator[str]:
    """Create an empty PostgreSQL database and drop it afterwards; skip (or fail in CI) when unreachable."""
    problem = _pg_reachable()
    if problem is not None:
        message = f"PostgreSQL at {PG_ADMIN_URL} is unreachable ({problem}); PostgreSQL runs skipped"
        if REQUIRE_PG:
            pytest.fail(message + " and TOCSIN_REQUIRE_POSTGRES=1 makes that a failure")
        pytest.skip(message)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PgResetter:
    """Puts a PostgreSQL test database back to its freshly seeded state in one short transaction.

    TRUNCATE of every table plus re-seeding costs ~0.5 s a test; deleting rows, re-inserting a snapshot of
    the seeded rows and resetting the id sequences costs a few milliseconds.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_sync_engine(url)
        with self.engine.connect() as conn:
            self.snapshot = {
                t.name: [dict(r._mapping) for r in conn.execute(t.select())]
                for t in Base.metadata.sorted_tables
            }
            self.sequences = [
                (name, column, seq)
                for name, column, seq in conn.execute(
                    text(
                        "SELECT table_name, column_name, "
                        "pg_get_serial_sequence(quote_ident(table_name), column_name) "
                        "FROM information_schema.columns WHERE table_schema = 'public' AND "
                        "(column_default LIKE 'nextval%' OR is_identity = 'YES')"
                    )
                )
                if seq is not None
            ]

    def reset(self) -> None:
        tables = Base.metadata.sorted_tables
        with self.engine.begin() as conn:
            for table in reversed(tables):
                conn.execute(table.delete())
            for table in tables:
                if self.snapshot[table.name]:
                    conn.execute(table.insert(), self.snapshot[table.name])
            for name, column, seq in self.sequences:
                conn.execute(
                    text(
                        f'SELECT setval(\'{seq}\', COALESCE((SELECT max("{column}") FROM "{name}"), 0)'
                        " + 1, false)"
                    )
                )

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[PgResetter]:
    """A throwaway PostgreSQL database for the whole run: schema and seed built once, reset per test."""
    with throwaway_pg() as url:
        _build_schema(url)
        resetter = PgResetter(url)
        yield resetter
        resetter.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "tocsin.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    resetter: PgResetter = request.getfixturevalue("pg_database")
    resetter.reset()
    return resetter.url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = open_database(database_url, pool_size=5)
    yield database
    await database.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Test settings; the engine does not run inside the app unless a test starts it itself."""
    return Settings(
        database_url=database_url,
        demo=True,
        secret_key="test-secret-key-0123456789",
        max_body_bytes=65_536,
        engine=False,
    )


@pytest.fixture
async def app(settings: Settings, db: Database) -> AsyncIterator[Any]:
    application = create_app(settings, database=db)
    async with application.router.lifespan_context(application):
        yield application


@dataclass
class Person:
    user_id: int
    email: str
    token: str
    role: Role
    client: httpx.AsyncClient = field(repr=False)


@dataclass
class People:
    """Personas that make permission tests read as sentences."""

    admin: Person
    manager: Person
    responder: Person  # member of team A
    other_responder: Person  # member of team B
    reporter: Person
    viewer: Person
    team_a: int
    team_b: int
    anonymous: httpx.AsyncClient


@pytest.fixture
async def people(app: Any, db: Database) -> AsyncIterator[People]:
    transport = httpx.ASGITransport(app=app)
    clients: list[httpx.AsyncClient] = []

    def client(token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c = httpx.AsyncClient(transport=transport, base_url="http://tocsin.test", headers=headers)
        clients.append(c)
        return c

    made: dict[str, Person] = {}
    async with db.write() as s:
        team_a = await auth.create_team(session=s, actor=SYSTEM, slug="team-a", name="Team A")
        team_b = await auth.create_team(session=s, actor=SYSTEM, slug="team-b", name="Team B")
        for key, role, team in [
            ("admin", Role.admin, None),
            ("manager", Role.manager, None),
            ("responder", Role.responder, team_a.id),
            ("other_responder", Role.responder, team_b.id),
            ("reporter", Role.reporter, None),
            ("viewer", Role.viewer, None),
        ]:
            user = await auth.create_user(
                session=s,
                actor=SYSTEM,
                email=f"{key}@example.com",
                name=key.replace("_", " ").title(),
                role=role,
                password="correct horse battery",
            )
            if team is not None:
                await auth.set_member(
                    session=s, actor=SYSTEM, team_id=team, user_id=user.id, team_role=TeamRole.member
                )
            _, raw = await auth.create_token(session=s, actor=SYSTEM, name="test", user_id=user.id)
            made[key] = Person(user.id, user.email, raw, role, client(raw))
    yield People(**made, team_a=team_a.id, team_b=team_b.id, anonymous=client(None))
    for c in clients:
        await c.aclose()
