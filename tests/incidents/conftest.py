"""Helpers for the incidents tests: open an incident and move it, as a persona, through the API."""

from __future__ import annotations

from typing import Any

from tests.conftest import Person

API = "/api/v1"


async def create(p: Person, title: str = "Checkout is down", **body: Any) -> dict[str, Any]:
    r = await p.client.post(f"{API}/incidents", json={"title": title, **body})
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def move(p: Person, ref: str, state: str, expect: int = 200, **body: Any) -> dict[str, Any]:
    r = await p.client.post(f"{API}/incidents/{ref}/state", json={"state": state, **body})
    assert r.status_code == expect, r.text
    result: dict[str, Any] = r.json()
    return result


async def timeline(p: Person, ref: str) -> list[dict[str, Any]]:
    r = await p.client.get(f"{API}/incidents/{ref}/timeline")
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


RESOLVE = {"resolution_code": "solution_provided", "resolution_summary": "Restarted the payment pool"}
