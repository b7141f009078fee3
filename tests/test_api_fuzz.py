"""Schemathesis fuzzes every documented operation of a real server: bad input gets a 4xx, never a 5xx."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.server import running_server, tocsin
from tocsin.app import create_app
from tocsin.auth import service as auth
from tocsin.auth.models import Role
from tocsin.auth.permissions import SYSTEM
from tocsin.config import Settings
from tocsin.wiring import open_database

pytestmark = pytest.mark.slow

# The schema comes from the app object itself (no server needed to know the operations).
schema = schemathesis.openapi.from_dict(create_app(Settings(demo=True)).openapi())


async def _accounts(url: str) -> str:
    """Decoy accounts and tokens first, so the small ids a fuzzer favours rarely hit the fuzzer's own token
    (revoking it or deactivating its user would only turn the rest of the run into 401s, not hide a 500)."""
    db = open_database(url, pool_size=1)
    async with db.write() as s:
        for i in range(30):
            user = await auth.create_user(
                session=s, actor=SYSTEM, email=f"decoy{i}@example.com", name=f"Decoy {i}", role=Role.viewer
            )
            await auth.create_token(session=s, actor=SYSTEM, name="decoy", user_id=user.id)
        fuzz = await auth.create_user(
            session=s, actor=SYSTEM, email="fuzz@example.com", name="Fuzz", role=Role.admin
        )
        _, token = await auth.create_token(session=s, actor=SYSTEM, name="fuzz", user_id=fuzz.id)
    await db.dispose()
    return token


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    tocsin(url, "migrate")
    tocsin(url, "demo")
    token = asyncio.run(_accounts(url))
    with running_server(url, "--no-engine") as running:
        yield running.base_url, token
        assert running.process.poll() is None, "the server died during the fuzz run"


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_makes_the_server_fail(case: schemathesis.Case, server: tuple[str, str]) -> None:
    base_url, token = server
    case.call_and_validate(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        checks=[not_a_server_error],
        timeout=30,
    )


def test_the_server_is_healthy_after_the_fuzz_run(server: tuple[str, str]) -> None:
    base_url, _ = server
    assert httpx.get(f"{base_url}/healthz", timeout=5).json() == {"status": "ok"}
