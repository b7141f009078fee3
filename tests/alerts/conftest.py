"""Alert fixtures: a service to attach integrations to, integrations made through the API, sample payloads."""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import People
from tocsin.catalog.models import Service
from tocsin.config import Settings
from tocsin.db import Database

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> dict[str, Any]:
    """A payload from reference/intake-formats.md, as the sending tool emits it (a fresh copy each time)."""
    return copy.deepcopy(json.loads((SAMPLES / name).read_text()))


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The app-wide body limit sits above intake's own 512 KB, as in production (1 MB by default).
    return Settings(
        database_url=database_url,
        demo=True,
        secret_key="test-secret-key-0123456789",
        max_body_bytes=1_048_576,
        base_url="https://tocsin.example",
        engine=False,  # tests fire timers themselves, with a Worker they drive
    )


@pytest.fixture
async def service_id(db: Database) -> int:
    async with db.write() as s:
        svc = Service(slug="checkout", name="Checkout", description="", tier=2)
        s.add(svc)
        await s.flush()
        return svc.id


Make = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def make_integration(people: People, service_id: int) -> Make:
    """Create an integration through the API as an admin; returns the answer (with `key`)."""

    async def make(
        kind: str, config: dict[str, Any] | None = None, name: str | None = None
    ) -> dict[str, Any]:
        r = await people.admin.client.post(
            "/api/v1/integrations",
            json={
                "service_id": service_id,
                "name": name or f"{kind} source",
                "kind": kind,
                "config": config or {},
            },
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    return make
