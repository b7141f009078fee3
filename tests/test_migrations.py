"""Migrations: an empty database upgrades to head and back, on SQLite and PostgreSQL, with no drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from tests.conftest import throwaway_pg
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
        engine = make_sync_engine(url)
        with engine.connect() as conn:
            indexes = {i["name"] for i in inspect(conn).get_indexes("incidents")}
            assert indexes >= OPTIONAL_INDEXES
            conn.exec_driver_sql("SET enable_seqscan = off")  # an empty table: make the planner show its hand
            plan = "\n".join(
                r[0]
                for r in conn.exec_driver_sql(
                    "EXPLAIN SELECT id FROM incidents WHERE title ILIKE '%%disk full%%' "
                    "OR description ILIKE '%%disk full%%'"
                )
            )
        engine.dispose()
        assert "ix_incidents_title_trgm" in plan and "ix_incidents_description_trgm" in plan, plan
        migrate.downgrade(url, "0001")
        engine = make_sync_engine(url)
        with engine.connect() as conn:
            assert not OPTIONAL_INDEXES & {i["name"] for i in inspect(conn).get_indexes("incidents")}
        engine.dispose()
