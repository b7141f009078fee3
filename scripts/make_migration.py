"""Autogenerate the next numbered migration from the models: `python scripts/make_migration.py "message"`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command

from tocsin import migrate


def main() -> None:
    message = sys.argv[1] if len(sys.argv) > 1 else "change"
    versions = Path(migrate.MIGRATIONS) / "versions"
    number = 1 + max((int(p.name[:4]) for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py")), default=0)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'autogen.db'}"
        migrate.upgrade(url)
        config = migrate.alembic_config(url)
        command.revision(config, message=message, autogenerate=True, rev_id=f"{number:04d}")
    # Alembic renders JSONB's text type unqualified and SQLite's boolean default as 1: make both portable.
    for path in versions.glob(f"{number:04d}_*.py"):
        text = path.read_text().replace("astext_type=Text()", "astext_type=sa.Text()")
        text = text.replace("server_default=sa.text('1')", "server_default=sa.true()")
        path.write_text(text.replace("server_default=sa.text('0')", "server_default=sa.false()"))


if __name__ == "__main__":
    main()
