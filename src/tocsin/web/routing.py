"""UI routes answer in HTML: refusals become a readable page (or an htmx fragment), never problem+json.

`UIRoute` wraps each UI endpoint: a page that needs a login redirects there, a DomainError (not found,
forbidden, invalid, conflict) renders its message with its status, and malformed form input reads as a 422
page. htmx requests get the message as a fragment swapped into the page's #flash area instead.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from tocsin.errors import DomainError
from tocsin.web.render import environment, html, is_htmx
from tocsin.web.session import LoginRequired

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to after logging in; anything else (another host) becomes `default`."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default


def login_redirect(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/login" if request.method != "GET" else f"/login?next={quote(here, safe='/')}"
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def error_response(request: Request, status: int, title: str, detail: str) -> Response:
    if is_htmx(request):
        fragment = environment().get_template("_flash.html").render(kind="error", title=title, text=detail)
        return Response(
            fragment,
            status_code=status,
            media_type="text/html",
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
        )
    return html(request, "error.html", {"title": title, "detail": detail, "status": status}, status=status)


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "form"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "the form was not filled in correctly"


class UIRoute(APIRoute):
    """An APIRoute whose errors render as HTML for people (see the module docstring)."""

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except LoginRequired:
                return login_redirect(request)
            except DomainError as exc:
                return error_response(request, exc.status, exc.title, exc.detail)
            except RequestValidationError as exc:
                return error_response(request, 422, "Invalid input", _describe(exc))

        return handler


def ui_router(**kwargs: Any) -> APIRouter:
    """A router for HTML routes: errors as pages, left out of the OpenAPI schema."""
    return APIRouter(route_class=UIRoute, include_in_schema=False, **kwargs)


def see_other(url: str) -> RedirectResponse:
    """After a successful form post, go to the page that shows the result (POST-redirect-GET)."""
    return RedirectResponse(url, status_code=303)
