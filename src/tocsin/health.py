"""Unauthenticated probes for load balancers: /healthz (process up) and /readyz (database and schema).

The root, /, is the web UI's home (tocsin.web.ui_auth).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    db = request.app.state.db
    expected: str | None = request.app.state.schema_head
    try:
        async with db.read() as s:
            current = await s.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception as exc:  # any database failure means "not ready", with the reason
        return JSONResponse(
            {"status": "unavailable", "detail": f"database unreachable: {type(exc).__name__}"},
            status_code=503,
        )
    if current != expected:
        return JSONResponse(
            {
                "status": "unavailable",
                "detail": f"schema at {current}, code expects {expected}: run `tocsin migrate`",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ok", "schema": current})
