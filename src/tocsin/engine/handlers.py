"""The contract between the engine and the domains whose timers it fires.

A handler is registered per timer kind. The engine has already leased the timer; the handler does its
work in as many short units of work as it needs (never holding a write transaction across network I/O)
and returns what should happen to the timer: done (delete it), or run again at a given time. A raised
exception is retried with backoff; the lease makes a crashed worker's timers fire again elsewhere.

A handler runs within a budget of 80% of the worker's lease (24 s by default) and is cancelled past it,
which counts as a failure: work that takes longer should return Again and continue in steps. Firing is
at least once (a crash after the work but before the outcome is written fires again), so handlers make
their effects idempotent, e.g. with the outbox's idempotency keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tocsin.config import Settings
from tocsin.db import Database


@dataclass(frozen=True)
class Fired:
    """A due timer as the handler sees it."""

    id: int
    kind: str
    subject: str
    due_at: datetime
    payload: Any
    attempts: int  # including this one; failures keep counting, a Done/Again or a schedule() resets it
    lease_owner: str  # unique to this claim: `<worker owner>/<claim number>`


@dataclass(frozen=True)
class Done:
    """Delete the timer (unless it was moved meanwhile)."""


@dataclass(frozen=True)
class Again:
    """Keep the timer and fire it again at `at` (e.g. the next escalation repeat, a retry).

    A None payload keeps the stored one; anything else replaces it.
    """

    at: datetime
    payload: Any = None


Outcome = Done | Again


@dataclass(frozen=True)
class EngineContext:
    """What every handler gets: the database (open units of work with `db.write()`) and the settings."""

    db: Database
    settings: Settings


Handler = Callable[[EngineContext, Fired], Awaitable[Outcome]]
