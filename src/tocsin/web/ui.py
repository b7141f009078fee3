"""HTML routes of the web UI: every page area's router, gathered into the one the app mounts, and the static
files (our CSS and JS, and the vendored htmx, its SSE extension and Pico CSS)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from tocsin.web import (
    live,
    ui_actions,
    ui_admin,
    ui_alerts,
    ui_auth,
    ui_catalog,
    ui_config,
    ui_incidents,
    ui_oncall,
    ui_report,
    ui_routing,
)
from tocsin.web.render import STATIC

router = APIRouter(include_in_schema=False)
for area in (
    ui_auth,
    ui_incidents,
    ui_actions,
    ui_report,
    ui_oncall,
    ui_catalog,
    ui_alerts,
    ui_admin,
    ui_config,
    ui_routing,
    live,
):
    router.include_router(area.router)


def static_files() -> StaticFiles:
    """The /static mount (cache-busted by a content hash in the page's asset URLs)."""
    return StaticFiles(directory=STATIC)
