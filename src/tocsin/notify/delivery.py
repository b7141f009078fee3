"""The engine handler that delivers an outbox message: claim, send outside any transaction, record.

Each message has its own `notify.deliver` timer, so one channel failing never holds up another. Delivery is
at least once: a crash between a successful send and its record makes the engine fire the timer again, and
the message goes out a second time under the same idempotency key (webhook receivers dedupe on it; the
email Message-ID is derived from it).
"""

from __future__ import annotations

import structlog

from tocsin.config import Settings
from tocsin.db import utcnow
from tocsin.engine.handlers import Again, Done, EngineContext, Fired, Handler, Outcome
from tocsin.notify import channels, retry, service
from tocsin.notify.channels.base import DeliveryError, Message
from tocsin.notify.claim import Claimed, Deferred, claim

log = structlog.get_logger(__name__)


async def send(settings: Settings, message: Message) -> DeliveryError | None:
    """Deliver through the message's channel; the failure, if any, as a value."""
    try:
        await channels.for_kind(message.channel, settings).deliver(message)
    except DeliveryError as exc:
        return exc
    except (
        Exception
    ) as exc:  # a bug in a channel must not lose the message: retry it, with the reason on record
        log.exception("notify.channel_crashed", outbox_id=message.id, channel=str(message.channel))
        return DeliveryError(f"unexpected error: {type(exc).__name__}: {exc}", permanent=False)
    return None


async def record(ctx: EngineContext, claimed: Claimed, error: DeliveryError | None) -> Outcome:
    """Write the result in a short transaction and tell the engine whether to fire the timer again."""
    now = utcnow()
    async with ctx.db.write() as session:
        if error is None:
            await service.mark_sent(
                session=session, leader_id=claimed.leader_id, member_ids=claimed.member_ids, now=now
            )
            return Done()
        at = (
            None
            if error.permanent
            else retry.next_attempt(
                attempts=claimed.attempts,
                created_at=claimed.created_at,
                now=now,
                retry_after=error.retry_after,
            )
        )
        if at is None:
            reason = (
                error.reason
                if error.permanent
                else f"gave up after {claimed.attempts} attempts: {error.reason}"
            )
            await service.mark_failed(
                session=session, leader_id=claimed.leader_id, member_ids=claimed.member_ids, error=reason
            )
            return Done()
        await service.mark_retry(session=session, leader_id=claimed.leader_id, error=error.reason, at=at)
        return Again(at=at)


async def deliver_handler(ctx: EngineContext, fired: Fired) -> Outcome:
    """Handler for `notify.deliver` timers (subject: the outbox id)."""
    if not fired.subject.isdigit():
        log.error("notify.bad_timer_subject", subject=fired.subject)
        return Done()
    async with ctx.db.write() as session:
        claimed = await claim(session=session, outbox_id=int(fired.subject), now=utcnow())
    if claimed is None:
        return Done()
    if isinstance(claimed, Deferred):
        return Again(at=claimed.at)
    error = await send(ctx.settings, claimed.message)  # no transaction is open here
    if error is not None:
        log.info(
            "notify.delivery_failed",
            outbox_id=claimed.leader_id,
            permanent=error.permanent,
            reason=error.reason,
            attempts=claimed.attempts,
        )
    return await record(ctx, claimed, error)


HANDLERS: dict[str, Handler] = {service.DELIVER: deliver_handler}
