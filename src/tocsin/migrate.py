"""Alembic driven from code: upgrade, downgrade and the head revision, on SQLite or PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def missing_optional_indexes(database_url: str) -> set[str]:
    """The optional indexes (tables.OPTIONAL_INDEXES) a migrated PostgreSQL database lacks, e.g. because
    pg_trgm could not be created; always empty on SQLite, which has none."""
    from sqlalchemy import inspect

    from tocsin.db import make_sync_engine
    from tocsin.tables import OPTIONAL_INDEXES

    engine = make_sync_engine(database_url)
    try:
        if engine.dialect.name != "postgresql":
            return set()
        with engine.connect() as conn:
            present = {i["name"] for i in inspect(conn).get_indexes("incidents")}
        return set(OPTIONAL_INDEXES) - present
    finally:
        engine.dispose()


def has_sqlite_search(database_url: str) -> bool:
    """Whether a migrated SQLite database has its FTS5 search table (migration 0004 creates it where SQLite
    can); always true on PostgreSQL, which searches with trigram indexes instead."""
    from sqlalchemy import inspect

    from tocsin.db import make_sync_engine
    from tocsin.incidents.models import SEARCH_TABLE

    engine = make_sync_engine(database_url)
    try:
        if engine.dialect.name != "sqlite":
            return True
        with engine.connect() as conn:
            return SEARCH_TABLE in inspect(conn).get_table_names()
    finally:
        engine.dispose()
