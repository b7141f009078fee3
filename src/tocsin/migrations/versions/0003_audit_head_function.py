"""the audit chain's lock and head in one fair round trip (PostgreSQL)

Every audited write extends the chain under one lock. Writers used to lock the `audit_head` row itself, which
each of them updates; PostgreSQL does not queue waiters for such a row in order, and with 16 concurrent
creates a few writers waited 150 ms or more while the median waited 20. `tocsin_audit_head()` takes an
advisory lock first (waiters are served in the order they asked), then reads the head with a fresh snapshot
and locks its row too, so processes of the previous version, which lock only the row, are still kept out.

The text is a copy of `tocsin.audit.models._CREATE_HEAD_FUNCTION` as of this revision: a later change
to the function needs a revision of its own. SQLite has nothing to do.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION tocsin_audit_head() "
        "RETURNS TABLE (seq bigint, hash text, last_seq bigint) LANGUAGE plpgsql VOLATILE AS $$ "
        "BEGIN PERFORM pg_advisory_xact_lock(7270001); "
        "RETURN QUERY SELECT h.seq::bigint, h.hash::text, (SELECT max(l.seq) FROM audit_log l)::bigint "
        "FROM audit_head h WHERE h.id = 1 FOR UPDATE OF h; END $$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS tocsin_audit_head()")
