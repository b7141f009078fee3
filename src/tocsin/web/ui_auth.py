"""Signing in and out, and the home page that sends each person to where they work."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response

from tocsin.auth import service as auth
from tocsin.auth.deps import SESSION_COOKIE, app_db
from tocsin.errors import Unauthorized
from tocsin.web.render import html
from tocsin.web.routing import safe_next, see_other, ui_router
from tocsin.web.session import (
    RateLimit,
    anonymous_csrf,
    check_anonymous_csrf,
    client_address,
    set_anon_cookie,
    signed_in,
)

router = ui_router()
# Failed logins per client address: password guessing is cut off after 20 tries in 5 minutes.
LOGIN_LIMIT = RateLimit(limit=20, window=300.0)


@router.get("/")
async def home(request: Request) -> Response:
    """Signed-in people land on the incident queue; others on the login page."""
    found = await signed_in(request)
    return see_other("/incidents" if found else "/login")


def _login_page(request: Request, *, next_url: str, email: str = "", error: str | None = None) -> Response:
    token, fresh = anonymous_csrf(request)
    status = 401 if error else 200
    response = html(
        request,
        "login.html",
        {"csrf": token, "next": next_url, "email": email, "error": error},
        status=status,
    )
    set_anon_cookie(request, response, fresh)
    return response


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    if await signed_in(request):
        return see_other(safe_next(next, "/incidents"))
    return _login_page(request, next_url=safe_next(next, "/incidents"))


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "/incidents",
) -> Response:
    """Check the password and open a session: an HttpOnly, SameSite=Lax cookie."""
    await check_anonymous_csrf(request)
    LOGIN_LIMIT.refuse(client_address(request))
    settings = request.app.state.settings
    try:
        async with app_db(request).write() as s:
            _, _, raw = await auth.login(
                session=s, email=email, password=password, hours=settings.session_hours
            )
    except Unauthorized as exc:
        LOGIN_LIMIT.hit(client_address(request))
        return _login_page(request, next_url=safe_next(next, "/incidents"), email=email, error=exc.detail)
    response = see_other(safe_next(next, "/incidents"))
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        max_age=settings.session_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=settings.base_url.startswith("https://"),
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session (the CSRF token is checked like any other write) and forget the cookie."""
    found = await signed_in(request)
    raw = request.cookies.get(SESSION_COOKIE)
    if found is not None and raw:
        async with found.db.write() as s:
            await auth.logout(session=s, raw=raw)
    response = see_other("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
