"""The `tocsin` command as a user runs it: a real subprocess on a real SQLite file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def tocsin(db: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOCSIN_DATABASE_URL": f"sqlite:///{db}"}
    return subprocess.run(
        [sys.executable, "-m", "tocsin", *args],
        env=env,
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
    )


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    db = tmp_path / "cli.db"
    r = tocsin(db, "migrate")
    assert r.returncode == 0, r.stderr
    return db


def test_help_lists_the_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "tocsin", "--help"], capture_output=True, text=True).stdout
    for command in ("serve", "migrate", "demo", "user", "token", "audit", "incident"):
        assert command in out


def chain_length(db: Path) -> int:
    r = tocsin(db, "audit", "verify")
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split("intact: ")[1].split()[0])


def test_users_tokens_and_an_intact_audit_chain(migrated: Path) -> None:
    seeded = chain_length(migrated)
    r = tocsin(
        migrated,
        "user",
        "create",
        "--email",
        "ops@example.com",
        "--name",
        "Ops",
        "--role",
        "admin",
        "--password",
        "a very long password",
    )
    assert r.returncode == 0, r.stderr
    again = tocsin(
        migrated, "user", "create", "--email", "ops@example.com", "--name", "Ops", "--password", ""
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    listed = tocsin(migrated, "user", "list")
    assert "ops@example.com" in listed.stdout
    token = tocsin(migrated, "token", "create", "--user", "ops@example.com", "--name", "ci")
    assert token.returncode == 0 and token.stdout.strip().startswith("tcn_")
    assert tocsin(migrated, "token", "revoke", "1").returncode == 0
    assert chain_length(migrated) == seeded + 3


def test_audit_verify_names_the_row_edited_behind_tocsins_back(migrated: Path) -> None:
    seeded = chain_length(migrated)
    for i in range(4):
        tocsin(
            migrated, "user", "create", "--email", f"u{i}@example.com", "--name", f"U{i}", "--password", ""
        )
    with sqlite3.connect(migrated) as conn:
        conn.execute(
            'UPDATE audit_log SET after = \'{"email":"evil@example.com"}\' WHERE seq = ?', (seeded + 2,)
        )
    r = tocsin(migrated, "audit", "verify")
    assert r.returncode == 1
    assert f"sequence {seeded + 2}:" in r.stderr
