"""Escalation on the timer engine: the handlers of its timer kinds and the hooks it installs.

- `escalation.step` (subject `inc:<id>`): page the current step's targets, move the run on (`steps`).
- `escalation.ack_timeout` (subject `inc:<id>`): withdraw an acknowledgement nobody followed up (`runs`).
- `escalation.result` (subject `out:<outbox id>:<result>`): put a delivery result on the timeline
  (`deliveries`).

Each handler is one short unit of work with no network I/O inside it. `install()` registers the incident
listener that starts and stops runs and notify's delivery-result hooks; `tocsin.wiring` calls it.
"""

from __future__ import annotations

from tocsin.db import utcnow
from tocsin.engine.handlers import Done, EngineContext, Fired, Handler, Outcome
from tocsin.incidents import events
from tocsin.oncall import deliveries, runs, steps


async def step_handler(ctx: EngineContext, fired: Fired) -> Outcome:
    """Fire the incident's current escalation step."""
    incident_id = runs.incident_of(fired.subject)
    if incident_id is None:
        return Done()
    now = utcnow()
    async with ctx.db.read() as session:
        prepared = await steps.prepare(
            session=session, incident_id=incident_id, payload=fired.payload, now=now
        )
    async with ctx.db.write() as session:
        return await steps.fire_step(
            session=session,
            incident_id=incident_id,
            payload=fired.payload,
            now=now,
            base_url=ctx.settings.base_url,
            prepared=prepared,
        )


async def ack_timeout_handler(ctx: EngineContext, fired: Fired) -> Outcome:
    """Withdraw an acknowledgement that was not followed by work in time."""
    incident_id = runs.incident_of(fired.subject)
    payload = fired.payload if isinstance(fired.payload, dict) else {}
    if incident_id is not None:
        async with ctx.db.write() as session:
            await runs.ack_timed_out(
                session=session, incident_id=incident_id, minutes=int(payload.get("minutes", 0)), now=utcnow()
            )
    return Done()


async def result_handler(ctx: EngineContext, fired: Fired) -> Outcome:
    """Write a delivery result onto its incident's timeline."""
    if isinstance(fired.payload, dict) and "incident_id" in fired.payload:
        async with ctx.db.write() as session:
            await deliveries.write_result(session=session, payload=fired.payload, now=utcnow())
    return Done()


HANDLERS: dict[str, Handler] = {
    runs.STEP: step_handler,
    runs.ACK_TIMEOUT: ack_timeout_handler,
    deliveries.RESULT: result_handler,
}


def install() -> None:
    """Register this module's incident-event listener and delivery-result hooks (idempotent)."""
    events.LISTENERS.add(runs.on_incident_event)
    deliveries.install()
