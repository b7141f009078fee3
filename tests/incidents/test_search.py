"""Text search (`q`): a case-insensitive substring of title or description, the same on both databases.

On SQLite it is answered from an FTS5 trigram index (models.SQLITE_SEARCH, migration 0004) kept in step by
triggers; text shorter than a trigram, and SQLites without the tokenizer, fall back to LIKE.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
from typing import Any

import pytest
from sqlalchemy import select, text

from tests.conftest import People
from tests.incidents.conftest import API, create
from tocsin import migrate
from tocsin.auth.permissions import SYSTEM
from tocsin.db import Database, make_sync_engine
from tocsin.incidents import queries, service
from tocsin.incidents.models import Incident

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


async def test_on_sqlite_the_index_answers_exactly_what_like_does(db: Database, database_url: str) -> None:
    """The FTS5 path against the LIKE it replaces, for many random substrings of random texts (and some
    texts that occur nowhere), with the index checked against the table afterwards."""
    if not database_url.startswith("sqlite"):
        pytest.skip("only SQLite has the FTS5 search table; PostgreSQL runs LIKE on trigram indexes")
    rng = random.Random(7)
    words = [
        "disk",
        "Full",
        "db-7",
        "ÉTÉ",
        "café",
        "50%",
        "a_b",
        'q"t',
        "slow",
        "SLOW",
        "x",
        "host-12",
        "host-123",
    ]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 5))) for _ in range(60)]
    async with db.write() as s:
        for i, words_ in enumerate(texts):
            await service.create_incident(
                session=s, actor=SYSTEM, title=f"T{i} {words_}", description=words_[::-1]
            )
    probes = {t[a : a + n] for t in texts for a, n in [(rng.randrange(len(t)), rng.randint(1, 8))]}
    probes |= {"zzz", "no such", '"', '""', "%", "a_b", "sl"}
    async with db.read() as s:
        assert await queries.searchable(s)
        for q in sorted(probes):
            found = {}
            for indexed in (True, False):
                where = queries.conditions(queries.IncidentFilter(q=q), SYSTEM, indexed_search=indexed)
                found[indexed] = set(await s.scalars(select(Incident.id).where(*where)))
            assert found[True] == found[False], q
        await s.execute(text("INSERT INTO incidents_search (incidents_search) VALUES ('integrity-check')"))


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
        found = conn.execute(
            text("SELECT rowid FROM incidents_search WHERE incidents_search MATCH '\"in berl\"'")
        ).all()
    migrate.downgrade(url, "0003")
    with engine.connect() as conn:
        left = conn.execute(text("SELECT name FROM sqlite_master WHERE name LIKE 'incidents_search%'")).all()
    engine.dispose()
    assert found == [(1,)]
    assert left == []
