"""Rendering pages: the Jinja environment (autoescaped), its filters, and the context every page gets."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from tocsin.incidents import matrix
from tocsin.web.incident_views import sla_status

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

PRIORITY_WORDS = {1: "critical", 2: "high", 3: "moderate", 4: "low"}
LEVEL_WORDS = {1: "high", 2: "medium", 3: "low"}


def words(value: object) -> str:
    """An enum value as people read it: "in_progress" -> "in progress"."""
    return str(value).replace("_", " ")


def options(values: Iterable[object]) -> list[tuple[str, str]]:
    """Enum members as (value, words) pairs for a select."""
    return [(str(v), words(v)) for v in values]


def choices(rows: Iterable[Any]) -> list[tuple[int, str]]:
    """Records with an id and a name as (id, name) pairs for a select."""
    return [(r.id, r.name) for r in rows]


def when(value: datetime | None) -> Markup:
    """A <time> element: UTC text for people without JavaScript, localised and made relative by app.js."""
    if value is None:
        return Markup("<span class='muted'>—</span>")
    utc = value.astimezone(UTC)
    # Both parts are produced from a datetime here, never from input, so they need no escaping.
    iso, text = utc.isoformat(timespec="seconds"), utc.strftime("%Y-%m-%d %H:%M UTC")
    return Markup(f'<time datetime="{iso}" data-local>{text}</time>')


def priority_badge(priority: int) -> Markup:
    p = int(priority)
    return Markup(f'<span class="badge p{p}" title="{PRIORITY_WORDS.get(p, "")}">{matrix.label(p)}</span>')


def state_badge(state: object) -> Markup:
    s = escape(str(state))
    return Markup(f'<span class="state s-{s}">{escape(words(state))}</span>')


@cache
def asset_version() -> str:
    """A short hash of our own static files, appended to their URLs so a new release is never stale."""
    digest = hashlib.sha256()
    for path in sorted(p for p in STATIC.glob("*.*") if p.is_file()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        words=words, when=when, priority=priority_badge, state=state_badge, options=options, choices=choices
    )
    env.globals.update(
        asset_version=asset_version,
        priority_words=PRIORITY_WORDS,
        level_words=LEVEL_WORDS,
        label=matrix.label,
        sla_status=sla_status,
    )
    return env


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def html(request: Request, template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    """Render `template` with the request's page context (who is signed in, CSRF token, settings)."""
    base = {
        "request": request,
        "actor": getattr(request.state, "actor", None),
        "csrf": getattr(request.state, "csrf", ""),
        "portal_enabled": request.app.state.settings.portal_enabled,
        "path": request.url.path,
    }
    body = environment().get_template(template).render(base | context)
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
