"""Who is using the UI: the session cookie with its CSRF token, the anonymous form token, and the rate limit.

Signed-in pages resolve the caller through `tocsin.auth.deps.resolve_actor`, which also refuses a write whose
CSRF token (the X-CSRF-Token header htmx sends, or the form's hidden `csrf_token` field) does not match the
session's. Forms used before signing in (login, the public report portal) carry a double-submit token instead:
an HMAC, keyed by the server secret, of a random value in an HttpOnly cookie, which another site can neither
read nor forge.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from fastapi import Request, Response

from tocsin.auth import service as auth
from tocsin.auth.deps import CSRF_HEADER, SESSION_COOKIE, ActorCache, app_db, resolve_actor
from tocsin.auth.models import LoginSession
from tocsin.auth.permissions import Actor
from tocsin.config import Settings
from tocsin.db import Database
from tocsin.errors import DomainError, Forbidden, Unauthorized

ANON_COOKIE = "tocsin_anon"
FORM_FIELD = "csrf_token"
_SAFE = {"GET", "HEAD", "OPTIONS"}


class LoginRequired(Exception):
    """The page needs a signed-in user; the UI answers with a redirect to /login."""


@dataclass(frozen=True)
class Ui:
    """What a signed-in page needs: the database doors, the settings, the caller and their CSRF token."""

    db: Database
    settings: Settings
    actor: Actor
    csrf: str


async def _form_token(request: Request) -> None:
    """Hand a form's hidden CSRF field to the shared check (htmx sends the header instead)."""
    if request.method in _SAFE or request.headers.get(CSRF_HEADER):
        return
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        request.scope["tocsin_form_csrf"] = str(form.get(FORM_FIELD) or "")


async def _login_of(request: Request, raw: str) -> LoginSession:
    """The login session behind the cookie (cached like the actor, so a page costs no extra query)."""
    cache: ActorCache = request.app.state.actor_cache
    key = "ui" + auth.hash_secret(raw)
    hit = cache.get(key)
    if hit is not None and hit[1] is not None:
        return hit[1]
    async with app_db(request).read() as session:
        actor, login = await auth.actor_from_session(session=session, raw=raw)
    cache.put(key, actor, login)
    return login


async def signed_in(request: Request) -> Ui | None:
    """The signed-in caller, or None; a write with a missing or wrong CSRF token raises Forbidden."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    await _form_token(request)
    try:
        actor = await resolve_actor(request)
        login = await _login_of(request, raw)
    except Unauthorized:
        return None
    request.state.actor = actor
    request.state.csrf = login.csrf_token
    return Ui(app_db(request), request.app.state.settings, actor, login.csrf_token)


async def ui(request: Request) -> Ui:
    """Dependency of every signed-in page: the caller, or a redirect to the login page."""
    found = await signed_in(request)
    if found is None:
        raise LoginRequired
    return found


# --- forms filled in before signing in ---------------------------------------------------------------


def _anon_token(settings: Settings, nonce: str) -> str:
    key = settings.secret_key.get_secret_value().encode()
    return hmac.new(key, b"tocsin-anon-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def anonymous_csrf(request: Request, response: Response | None = None) -> tuple[str, str | None]:
    """The token for an anonymous form, and the new cookie value to set when the browser has none yet."""
    nonce = request.cookies.get(ANON_COOKIE)
    fresh = None
    if not nonce or len(nonce) > 100:
        nonce = fresh = secrets.token_urlsafe(24)
    token = _anon_token(request.app.state.settings, nonce)
    request.state.csrf = token
    return token, fresh


def set_anon_cookie(request: Request, response: Response, value: str | None) -> None:
    if value is not None:
        response.set_cookie(
            ANON_COOKIE,
            value,
            httponly=True,
            samesite="lax",
            secure=request.app.state.settings.base_url.startswith("https://"),
            path="/",
        )


async def check_anonymous_csrf(request: Request) -> None:
    """Refuse an anonymous form post whose token does not match the browser's cookie."""
    nonce = request.cookies.get(ANON_COOKIE, "")
    form = await request.form()
    sent = str(form.get(FORM_FIELD) or request.headers.get(CSRF_HEADER) or "")
    if not nonce or not secrets.compare_digest(sent, _anon_token(request.app.state.settings, nonce)):
        raise Forbidden("this form has expired or was sent from another site; reload the page and try again")


class TooMany(DomainError):
    status = 429
    title = "Too many requests"


@dataclass
class RateLimit:
    """At most `limit` hits per `window` seconds per key (a client address), in this process's memory."""

    limit: int
    window: float
    hits: dict[str, deque[float]] = field(default_factory=dict)

    def check(self, key: str, now: float | None = None) -> None:
        """Count a hit, refusing it when the key is already at its limit."""
        self.refuse(key, now)
        self.hit(key, now)

    def refuse(self, key: str, now: float | None = None) -> None:
        """Raise TooMany when the key is at its limit (without counting this call)."""
        now = time.monotonic() if now is None else now
        recent = self.hits.get(key)
        if not recent:
            return
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            wait = int(recent[0] + self.window - now) + 1
            raise TooMany(f"too many attempts from your address; try again in {wait} seconds")

    def hit(self, key: str, now: float | None = None) -> None:
        if len(self.hits) > 50_000:
            self.hits.clear()
        self.hits.setdefault(key, deque()).append(time.monotonic() if now is None else now)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
