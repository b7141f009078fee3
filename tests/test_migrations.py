"""Migrations: an empty database upgrades to head and back, on SQLite and PostgreSQL, with no drift."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, make_url

from tests.conftest import PG_ADMIN_URL, throwaway_pg
from tocsin import migrate
from tocsin.db import make_sync_engine
from tocsin.tables import OPTIONAL_INDEXES, Base, include_object


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with throwaway_pg("tocsin_mig") as url:
        yield url


def test_upgrade_to_head_matches_the_models_and_downgrades_to_nothing(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    engine = make_sync_engine(empty_url)
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_object": include_object}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    assert diff == [], f"models and migrations differ: {diff}"
    assert set(Base.metadata.tables) <= tables
    migrate.downgrade(empty_url, "base")
    with engine.connect() as conn:
        left = set(inspect(conn).get_table_names()) - {"alembic_version"}
    engine.dispose()
    assert left == set()
    migrate.upgrade(empty_url)  # and up again: downgrade left nothing behind that blocks it


def test_on_postgresql_text_search_has_trigram_indexes_and_uses_them() -> None:
    with throwaway_pg("tocsin_trgm") as url:
        migrate.upgrade(url)
        assert migrate.missing_optional_indexes(url) == set()
        engine = make_sync_engine(url)
        with engine.connect() as conn:
            # The list's q filter as SQLAlchemy renders `icontains` (queries.py), as a generic plan: what a
            # prepared statement gets once psycopg prepares it, whatever the text searched for.
            conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
            conn.exec_driver_sql(
                "PREPARE q(varchar) AS SELECT id FROM incidents "
                "WHERE title ILIKE '%%' || $1 || '%%' ESCAPE '/' "
                "OR description ILIKE '%%' || $1 || '%%' ESCAPE '/'"
            )
            conn.exec_driver_sql("SET enable_seqscan = off")  # an empty table: make the planner show its hand
            plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN EXECUTE q('disk full')"))
        engine.dispose()
        assert "ix_incidents_title_trgm" in plan and "ix_incidents_description_trgm" in plan, plan
        migrate.downgrade(url, "0001")
        assert migrate.missing_optional_indexes(url) == OPTIONAL_INDEXES


def test_without_pg_trgm_migrate_succeeds_and_says_how_to_get_fast_search() -> None:
    role = f"tocsin_noext_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"CREATE DATABASE {role} OWNER {role}")
    url = make_url(PG_ADMIN_URL).set(username=role, database=role).render_as_string(hide_password=False)
    try:
        admin_there = make_url(PG_ADMIN_URL).set(database=role).render_as_string(hide_password=False)
        with psycopg.connect(admin_there, autocommit=True) as owner_db:
            # Without superuser rights and with the extension's objects out of reach, CREATE EXTENSION fails.
            owner_db.execute("REVOKE CREATE ON DATABASE " + role + " FROM " + role)
        env = {**os.environ, "TOCSIN_DATABASE_URL": url}
        done = subprocess.run(
            [sys.executable, "-m", "tocsin", "migrate"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "database at 0004" in done.stdout
        assert "pg_trgm" in done.stderr and "CREATE EXTENSION pg_trgm" in done.stderr
        assert "FTS5" not in done.stderr  # SQLite's search table is no concern of PostgreSQL
        assert migrate.missing_optional_indexes(url) == OPTIONAL_INDEXES
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {role} WITH (FORCE)")
            admin.execute(f"DROP ROLE IF EXISTS {role}")
