"""FastAPI dependencies: resolve the caller from a bearer token or a session cookie (with CSRF)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from tocsin.auth import service
from tocsin.auth.models import LoginSession
from tocsin.auth.permissions import Actor
from tocsin.config import Settings
from tocsin.db import Database
from tocsin.errors import Forbidden, Unauthorized

SESSION_COOKIE = "tocsin_session"
CSRF_HEADER = "x-csrf-token"
_SAFE = {"GET", "HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Ctx:
    """What a route needs: the database doors, the settings, and who is asking."""

    db: Database
    settings: Settings
    actor: Actor


@dataclass
class ActorCache:
    """Credentials resolved in the last few seconds, so a busy client costs no auth queries per request.

    Any committed change to users, tokens, sessions or team membership in this process clears it at once
    (see `service.AUTH_CHANGED`); other processes sharing the database see such a change within `ttl` seconds.
    """

    ttl: float = 2.0
    entries: dict[str, tuple[float, Actor, LoginSession | None]] = field(default_factory=dict)

    def get(self, key: str) -> tuple[Actor, LoginSession | None] | None:
        hit = self.entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1], hit[2]

    def put(self, key: str, actor: Actor, login: LoginSession | None = None) -> None:
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[key] = (time.monotonic() + self.ttl, actor, login)

    def after_commit(self, info: dict[str, Any]) -> None:
        if info.get(service.AUTH_CHANGED):
            self.entries.clear()


def app_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _from_token(request: Request, raw: str) -> Actor:
    cache: ActorCache = request.app.state.actor_cache
    key = "t" + service.hash_secret(raw)
    hit = cache.get(key)
    if hit is not None:
        return hit[0]
    async with app_db(request).read() as session:
        actor = await service.actor_from_token(session=session, raw=raw)
    cache.put(key, actor)
    return actor


async def _from_cookie(request: Request, raw: str) -> tuple[Actor, LoginSession]:
    cache: ActorCache = request.app.state.actor_cache
    key = "s" + service.hash_secret(raw)
    hit = cache.get(key)
    if hit is not None and hit[1] is not None:
        return hit[0], hit[1]
    async with app_db(request).read() as session:
        actor, login = await service.actor_from_session(session=session, raw=raw)
    cache.put(key, actor, login)
    return actor, login


async def resolve_actor(request: Request) -> Actor:
    """Bearer token first, then the session cookie; cookie-authenticated writes must carry the CSRF token."""
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        return await _from_token(request, credential.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        actor, login = await _from_cookie(request, cookie)
        if request.method not in _SAFE:
            sent = request.headers.get(CSRF_HEADER) or request.scope.get("tocsin_form_csrf") or ""
            if not secrets.compare_digest(str(sent), login.csrf_token):
                raise Forbidden(
                    "missing or wrong CSRF token: send the X-CSRF-Token header from the login answer"
                )
        return actor
    raise Unauthorized("authenticate with an `Authorization: Bearer <token>` header or a session cookie")


async def ctx(request: Request) -> Ctx:
    actor = await resolve_actor(request)
    request.state.actor = actor
    return Ctx(db=app_db(request), settings=request.app.state.settings, actor=actor)
