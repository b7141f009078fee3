"""trigram indexes for incident text search (PostgreSQL, where pg_trgm can be had)

The incident list's `q` filter is a case-insensitive substring match on title and description (ILIKE). On
PostgreSQL, GIN trigram indexes let it find the matches without reading every incident. They need the pg_trgm
extension (in PostgreSQL's contrib, creatable by a database owner since PostgreSQL 13): where it cannot be
created (or its operator class cannot be found), the migration goes on without them, `tocsin migrate` warns,
and search keeps working by scanning. SQLite scans as before. The indexes are built without CONCURRENTLY:
on a large database, incident writes wait while they build.

The indexes live outside the models (`tocsin.tables.OPTIONAL_INDEXES`): schemas built from the models, as the
tests build theirs, simply do without them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {"ix_incidents_title_trgm": "title", "ix_incidents_description_trgm": "description"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    creates = " ".join(
        f"CREATE INDEX IF NOT EXISTS {name} ON incidents USING gin ({column} gin_trgm_ops);"
        for name, column in INDEXES.items()
    )
    op.execute(
        "DO $$ BEGIN "
        "CREATE EXTENSION IF NOT EXISTS pg_trgm; "
        "EXCEPTION WHEN OTHERS THEN "
        "RAISE WARNING 'pg_trgm is not available (%): incident text search will scan', SQLERRM; "
        "END $$"
    )
    op.execute(
        "DO $$ BEGIN "
        "IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN "
        f"{creates} "
        "END IF; "
        "EXCEPTION WHEN OTHERS THEN "
        "RAISE WARNING 'no trigram indexes (%): incident text search will scan', SQLERRM; "
        "END $$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
