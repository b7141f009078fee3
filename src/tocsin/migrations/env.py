"""Alembic environment: runs against the URL handed in by tocsin.migrate, batch mode on SQLite."""

from __future__ import annotations

from alembic import context

from tocsin.db import make_sync_engine
from tocsin.tables import Base, include_object

config = context.config
url: str = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url") or ""
if not url:
    raise SystemExit("no database URL: run migrations through `tocsin migrate` (TOCSIN_DATABASE_URL)")


def run() -> None:
    engine = make_sync_engine(url, migrations=True)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
