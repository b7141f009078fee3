"""How the domains are put together: the database's commit hooks and which domain handles which timer kind.

The one place that knows every domain, so that the domains themselves only know the ones below them.
"""

from __future__ import annotations

from tocsin.alerts import closing as alert_closing
from tocsin.alerts import timers as alert_timers
from tocsin.audit import service as audit
from tocsin.comms import cadence
from tocsin.db import Database
from tocsin.engine.handlers import Handler
from tocsin.incidents import events, sla
from tocsin.notify import delivery
from tocsin.oncall import escalation


def open_database(url: str, *, pool_size: int = 10) -> Database:
    """The Database every process uses: incident events are dispatched, then the audit chain is sealed,
    right before each unit of work commits."""
    install()
    return Database(url, pool_size=pool_size, before_commit=[events.dispatch, audit.seal])


def install() -> None:
    """Register the domains' incident-event listeners (idempotent)."""
    escalation.install()
    sla.install()
    cadence.install()
    alert_closing.install()


def timer_handlers() -> dict[str, Handler]:
    """Every timer kind with its handler; a kind missing here is parked by the engine with an error."""
    return {
        **delivery.HANDLERS,
        **escalation.HANDLERS,
        **sla.HANDLERS,
        **cadence.HANDLERS,
        **alert_timers.HANDLERS,
    }
