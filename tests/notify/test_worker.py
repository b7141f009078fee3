"""End to end with the engine's own workers: two of them drain a storm, each message delivered once."""

from __future__ import annotations

import asyncio
import re

import anyio
import pytest

from tests.notify.conftest import MakeContact, page
from tests.notify.receivers import HttpReceiver
from tocsin.auth.permissions import SYSTEM
from tocsin.engine.handlers import EngineContext
from tocsin.notify.delivery import HANDLERS
from tocsin.notify.models import ChannelKind, OutboxStatus
from tocsin.notify.service import list_outbox

pytestmark = pytest.mark.anyio
worker_module = pytest.importorskip("tocsin.engine.worker")


async def test_two_engine_workers_deliver_a_storm_exactly_once(
    ctx: EngineContext, receiver: HttpReceiver, make_contact: MakeContact
) -> None:
    hook = await make_contact(ChannelKind.webhook, receiver.url("/hook"))
    slack = await make_contact(ChannelKind.slack, receiver.url("/slack"))
    receiver.secrets["/hook"] = hook.secret or ""
    for n in range(30):
        incident = {"incident": {"id": n, "title": f"Incident {n}"}}
        await page(ctx.db, hook.user_id, f"inc:{n}", incident=incident)
        await page(ctx.db, slack.user_id, f"inc:{n}", incident=incident)
    workers = [worker_module.Worker(ctx, HANDLERS, listen=False, recheck_seconds=0.1) for _ in range(2)]
    stop = asyncio.Event()
    running = [asyncio.create_task(w.run_forever(stop)) for w in workers]
    try:
        with anyio.fail_after(20):
            while True:
                async with ctx.db.read() as s:
                    rows = await list_outbox(session=s, actor=SYSTEM, limit=500)
                if all(r.status != OutboxStatus.pending for r in rows):
                    break
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*running)
    assert {r.status for r in rows} <= {OutboxStatus.sent, OutboxStatus.bundled}
    keys = []
    for request in receiver.received:
        if request.path == "/hook":
            doc = request.json
            keys += (
                [m["idempotency_key"] for m in doc["messages"]]
                if doc["event"] == "bundle"
                else [doc["idempotency_key"]]
            )
    assert sorted(keys) == sorted(f"inc:{n}:cm{hook.method_id}:d0" for n in range(30))
    slack_text = "\n".join(r.json["text"] for r in receiver.received if r.path == "/slack")
    assert all(len(re.findall(rf"/incidents/INC-{n}\b", slack_text)) == 1 for n in range(30))
    assert len(receiver.received) < 60
