"""incident text search from an FTS5 trigram index (SQLite)

The incident list's `q` is a case-insensitive substring match on title and description. On SQLite it read
every incident (20-55 ms at 100,000 incidents, for each page). `incidents_search` is an FTS5 table with the
trigram tokenizer (SQLite 3.34 and later), which finds substrings of three characters or more from an index;
it is an external-content table (the text stays in `incidents`) kept in step by triggers, and is filled from
the incidents already there. Where SQLite lacks FTS5 or its trigram tokenizer, the migration goes on without
it, `tocsin migrate` says so, and search keeps working by scanning. PostgreSQL has trigram indexes since 0002.

The statements are a copy of `tocsin.incidents.models.SQLITE_SEARCH` as of this revision. A later migration
that rebuilds `incidents` on SQLite (Alembic's batch mode copies the table) drops the triggers with the old
table and must create them again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

from tocsin.incidents.models import sqlite_can_search

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = (
    "INSERT INTO incidents_search (incidents_search, rowid, title, description) "
    "VALUES ('delete', old.id, old.title, old.description);"
)
_NEW = "INSERT INTO incidents_search (rowid, title, description) VALUES (new.id, new.title, new.description);"
STATEMENTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS incidents_search USING fts5(title, description, "
    "content='incidents', content_rowid='id', tokenize='trigram')",
    f"CREATE TRIGGER IF NOT EXISTS incidents_search_insert AFTER INSERT ON incidents BEGIN {_NEW} END",
    f"CREATE TRIGGER IF NOT EXISTS incidents_search_delete AFTER DELETE ON incidents BEGIN {_OLD} END",
    "CREATE TRIGGER IF NOT EXISTS incidents_search_update AFTER UPDATE OF title, description ON incidents "
    f"BEGIN {_OLD} {_NEW} END",
    "INSERT INTO incidents_search (incidents_search) VALUES ('rebuild')",
)
TRIGGERS = ("incidents_search_insert", "incidents_search_delete", "incidents_search_update")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if not sqlite_can_search(bind):
        return  # `tocsin migrate` warns, and says how to add the table later
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS incidents_search")
