"""Text search (`q`): a case-insensitive substring of title or description, the same on both databases.

On SQLite it is answered from an FTS5 trigram index (models.SQLITE_SEARCH, migration 0004) kept in step by
triggers; text shorter than a trigram, and SQLites without the tokenizer or the triggers, fall back to LIKE
(which folds the case of ASCII letters only).
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from tests.conftest import People
from tests.incidents.conftest import API, create
from tocsin import cli, migrate
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database, make_sync_engine
from tocsin.incidents import models, queries, service
from tocsin.incidents.models import SEARCH_REBUILD, SEARCH_TRIGGERS, SQLITE_SEARCH_TRIGGERS, Incident

pytestmark = pytest.mark.anyio

TEXTS = [
    ("Disk full on db-7", "Checkout SLOW since 10:00"),
    ("Café menu outage", "the Kitchen's printer"),
    ('Quote "x" in title', "100% of requests fail"),
    ("Payments timeouts", "upstream 504 from acquirer; retry storm"),
    ("Fire alarm in building B", ""),
]


async def _refs(people: People, q: str) -> set[str]:
    r = await people.viewer.client.get(f"{API}/incidents", params={"q": q, "limit": 100})
    assert r.status_code == 200, r.text
    return {i["title"] for i in r.json()["items"]}


async def test_search_finds_substrings_case_insensitively_and_takes_its_text_literally(
    people: People, db: Database
) -> None:
    for title, description in TEXTS:
        await create(people.responder, title, description=description)
    assert await _refs(people, "disk FULL") == {"Disk full on db-7"}
    assert await _refs(people, "low sin") == {"Disk full on db-7"}  # inside and across words
    assert await _refs(people, "db") == {"Disk full on db-7"}  # two characters: no trigram, LIKE
    assert await _refs(people, '"x"') == {'Quote "x" in title'}  # FTS5 quotes are literal
    assert await _refs(people, "100%") == {'Quote "x" in title'}  # LIKE wildcards are literal
    assert await _refs(people, "0% of") == {'Quote "x" in title'}
    assert await _refs(people, "_") == set()
    assert await _refs(people, "504 from acq") == {"Payments timeouts"}
    assert await _refs(people, "kitchen's") == {"Café menu outage"}
    assert await _refs(people, "CAFÉ") == {"Café menu outage"}  # as PostgreSQL's ILIKE
    assert await _refs(people, "no such words anywhere") == set()


async def test_an_edited_title_is_found_by_its_new_text_only(people: People, db: Database) -> None:
    made = await create(people.responder, "Router flapping", description="core switch")
    r = await people.responder.client.patch(
        f"{API}/incidents/{made['ref']}", json={"title": "Firewall dropping packets"}
    )
    assert r.status_code == 200, r.text
    assert await _refs(people, "flapping") == set()
    assert await _refs(people, "dropping pack") == {"Firewall dropping packets"}
    assert await _refs(people, "core sw") == {"Firewall dropping packets"}  # description unchanged


async def test_on_sqlite_the_index_answers_what_like_does(db: Database, database_url: str) -> None:
    """The FTS5 path against the LIKE it replaces, for many random substrings of random texts (and some
    texts that occur nowhere): the same incidents for ASCII text; for other text, those and the ones that
    differ only in the case of non-ASCII letters, which LIKE on SQLite does not fold. The index is then
    checked against the table."""
    if not database_url.startswith("sqlite"):
        pytest.skip("only SQLite has the FTS5 search table; PostgreSQL runs ILIKE on trigram indexes")
    rng = random.Random(7)
    words = [
        "disk",
        "Full",
        "db-7",
        "ÉTÉ",
        "été",
        "café",
        "50%",
        "a_b",
        'q"t',
        "slow",
        "SLOW",
        "x",
        "host-123",
    ]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 5))) for _ in range(60)]
    async with db.write() as s:
        for i, words_ in enumerate(texts):
            await service.create_incident(
                session=s, actor=SYSTEM, title=f"T{i} {words_}", description=words_[::-1]
            )
    probes = {t[a : a + n] for t in texts for a, n in [(rng.randrange(len(t)), rng.randint(1, 8))]}
    probes |= {
        "zzz",
        "no such",
        '"',
        '""',
        "%",
        "a_b",
        "sl",
        "été",
        "ÉTÉ",
        "dis\x00k",
    }  # NUL: FTS5 can't quote it
    async with db.read() as s:
        assert await queries.searchable(s)
        for q in sorted(probes):
            found = {}
            for indexed in (True, False):
                where = queries.conditions(queries.IncidentFilter(q=q), SYSTEM, indexed_search=indexed)
                found[indexed] = set(await s.scalars(select(Incident.id).where(*where)))
            if q.isascii():
                assert found[True] == found[False], q
            else:
                assert found[True] >= found[False], q
        unfolded = queries.conditions(queries.IncidentFilter(q="ÉTÉ"), SYSTEM, indexed_search=False)
        folded = queries.conditions(queries.IncidentFilter(q="ÉTÉ"), SYSTEM, indexed_search=True)
        assert set(await s.scalars(select(Incident.id).where(*folded))) > set(
            await s.scalars(select(Incident.id).where(*unfolded))
        )
        # 'integrity-check' with rank 1 compares the index with the incidents' text (without, only itself).
        await s.execute(
            text("INSERT INTO incidents_search (incidents_search, rank) VALUES ('integrity-check', 1)")
        )


async def test_on_sqlite_search_without_its_triggers_falls_back_to_like(
    people: People, db: Database, database_url: str
) -> None:
    """A migration that rebuilt `incidents` drops the triggers with the old table: the index goes stale, and
    search must not answer from it (nor fail) until they are back."""
    if not database_url.startswith("sqlite"):
        pytest.skip("only SQLite has the FTS5 search table")
    made = await create(people.responder, "Printer jammed", description="floor 3")
    async with db.write() as s:
        await s.execute(text("DROP TRIGGER incidents_search_update"))
    r = await people.responder.client.patch(
        f"{API}/incidents/{made['ref']}", json={"title": "Scanner offline"}
    )
    assert r.status_code == 200, r.text
    async with db.read() as s:
        assert not await queries.searchable(s)
    assert await _refs(people, "jammed") == set()  # the stale index still holds it
    assert await _refs(people, "scanner off") == {"Scanner offline"}
    async with db.write() as s:
        for statement in SQLITE_SEARCH_TRIGGERS:
            await s.execute(text(statement))
        await s.execute(text(SEARCH_REBUILD))
    async with db.read() as s:
        assert await queries.searchable(s)
    assert await _refs(people, "jammed") == set()
    assert await _refs(people, "scanner off") == {"Scanner offline"}


def test_migrating_an_sqlite_database_indexes_the_incidents_already_there(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0003")
    with contextlib.closing(sqlite3.connect(tmp_path / "old.db")) as raw:  # foreign keys off: no types yet
        raw.execute(
            "INSERT INTO incidents (id, title, description, type_key, impact, urgency, priority, "
            "priority_overridden, state, major_status, confidential, source_channel, extra, "
            "reported_at, created_at, updated_at, reassignment_count, reopen_count, sla_status) "
            "VALUES (1, 'Legacy outage in Berlin', 'from before search', 'it_service', 2, 2, 2, 0, "
            "'new', 'none', 0, 'web', '{}', '2024-01-01', '2024-01-01', '2024-01-01', 0, 0, 'none')"
        )
        raw.commit()
    engine = make_sync_engine(url)
    migrate.upgrade(url)
    with engine.connect() as conn:
        parts = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))}
        found = conn.execute(
            text("SELECT rowid FROM incidents_search WHERE incidents_search MATCH '\"in berl\"'")
        ).all()
    migrate.downgrade(url, "0003")
    with engine.connect() as conn:
        left = conn.execute(text("SELECT name FROM sqlite_master WHERE name LIKE 'incidents_search%'")).all()
    engine.dispose()
    assert found == [(1,)]
    assert parts >= set(SEARCH_TRIGGERS)
    assert left == []


def test_migrate_without_the_trigram_tokenizer_succeeds_warns_and_search_still_works(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SQLite without FTS5's trigram tokenizer: the migration goes on without the table, `tocsin migrate`
    says so and how to add it later, and search reads every incident (LIKE)."""
    monkeypatch.setattr(models, "sqlite_can_search", lambda connection: False)
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    monkeypatch.setenv("TOCSIN_DATABASE_URL", url)
    done = CliRunner().invoke(cli.app, ["migrate"])
    assert done.exit_code == 0, done.output
    assert "no FTS5 trigram tokenizer" in done.output and "--revision 0003" in done.output
    assert not migrate.has_sqlite_search(url)
    engine = make_sync_engine(url)
    with engine.connect() as conn:
        tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
    engine.dispose()
    assert "incidents" in tables  # migrated, this very database
    assert not any(name.startswith("incidents_search") for name in tables)
