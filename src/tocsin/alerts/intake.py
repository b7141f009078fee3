"""The intake gate of one process: find the integration a key opens, apply its rate limit, parse the payload
with its adapter, and hand the events to the group-commit writer.

Key lookups are cached for a few seconds (a storm would otherwise read the integration once per request);
changes made through this process's API clear the cache at once, other processes see them within the TTL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from tocsin.alerts import service
from tocsin.alerts.adapters import adapter_for
from tocsin.alerts.adapters.base import Adapter, AlertEvent, IntakeRequest, PayloadError
from tocsin.alerts.ingest import Delivery
from tocsin.alerts.models import IntegrationKind
from tocsin.alerts.options import Options, options_for
from tocsin.alerts.ratelimit import RateLimiter
from tocsin.alerts.writer import IntakeWriter
from tocsin.db import Database

MAX_BODY = 512 * 1024
MAX_EVENTS = 10_000  # per request; Alertmanager storms send hundreds


@dataclass(frozen=True, slots=True)
class Source:
    """What intake needs to know of an active integration."""

    id: int
    kind: IntegrationKind
    options: Options
    adapter: Adapter | None  # heartbeats have none


class Refused(Exception):
    """Intake answers with `status` (404 unknown key, 413, 429 rate limited...); `retry_after` in seconds."""

    def __init__(
        self, status: int, detail: str, *, retry_after: int | None = None, errors: list[str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after
        self.errors = errors


class Intake:
    """Per-process intake state: the writer, the key cache and the rate limiter."""

    def __init__(
        self,
        db: Database,
        *,
        max_body: int = MAX_BODY,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.max_body = max_body
        self.writer = IntakeWriter(db)
        self.limiter = RateLimiter()
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._sources: dict[str, tuple[float, Source | None]] = {}

    async def start(self) -> None:
        self.writer.start()

    async def stop(self) -> None:
        await self.writer.stop()

    def forget(self) -> None:
        """Drop cached key lookups (an integration changed)."""
        self._sources.clear()

    async def source(self, key: str) -> Source | None:
        """The active integration `key` opens, or None; cached, misses included."""
        now = self.clock()
        cached = self._sources.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            async with self.db.read() as session:
                row = await service.integration_by_key(session=session, key=key)
        except SQLAlchemyError as exc:  # senders retry a 503 later; nothing was accepted
            raise Refused(503, "the database is unavailable; retry shortly", retry_after=5) from exc
        found = None
        if row is not None and row.active:
            kind = IntegrationKind(row.kind)
            options = options_for(kind, row.config)
            adapter = adapter_for(kind, options) if kind is not IntegrationKind.heartbeat else None
            found = Source(row.id, kind, options, adapter)
        if len(self._sources) > 10_000:
            self._sources.clear()  # bounds memory against a flood of made-up keys
        self._sources[key] = (now + self.cache_seconds, found)
        return found

    async def admit(self, kind: IntegrationKind, key: str) -> Source:
        """The integration for this key and kind, once its rate limit allows one more request."""
        found = await self.source(key)
        if found is None or found.kind != kind:
            raise Refused(404, f"no active {kind} integration has this key; check the URL, or create one")
        wait = self.limiter.take(
            found.id,
            per_minute=found.options.rate_limit_per_minute,
            burst=found.options.rate_limit_burst,
            now=self.clock(),
        )
        if wait > 0:
            raise Refused(
                429,
                "this integration is sending faster than its rate limit; retry later",
                retry_after=max(1, math.ceil(wait)),
            )
        return found

    def parse(self, source: Source, request: IntakeRequest) -> list[AlertEvent]:
        """The request's events, by the integration's adapter (raises PayloadError)."""
        assert source.adapter is not None
        events = source.adapter.parse(request)
        if len(events) > MAX_EVENTS:
            raise PayloadError(f"{len(events)} alerts in one request; send at most {MAX_EVENTS}")
        return events

    async def accept(self, source: Source, request: IntakeRequest) -> list[AlertEvent]:
        """Parse and store one request's events; returns them once committed. Raises PayloadError, or the
        writer's DeliveryFailed / WriterClosed."""
        events = self.parse(source, request)
        if events:
            await self.writer.submit(Delivery(source.id, events))
        return events

    async def checkin(self, key: str) -> None:
        """A heartbeat check-in, committed before this returns."""
        found = await self.admit(IntegrationKind.heartbeat, key)
        await self.writer.submit(Delivery(found.id, [service.checkin_event()], checkin=True))
