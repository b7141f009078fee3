"""A local webhook receiver for benchmarks, in its own process so it never competes for the bench's GIL.

    python bench/receiver.py PORT

POST anything: each message is noted with its arrival time (time.time()), by idempotency key; a bundle counts
once per message it carries. GET /count answers how many messages arrived, GET /arrivals the list of
[key, time] pairs. Nothing is verified: this measures Tocsin, not the receiver.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
arrivals: list[tuple[str, float]] = []


async def _reply(send: Send, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    if scope["method"] == "GET":
        if scope["path"] == "/count":
            await _reply(send, str(len(arrivals)).encode())
        else:
            await _reply(send, json.dumps(arrivals).encode(), b"application/json")
        return
    at = time.time()
    document = json.loads(body)
    for item in document["messages"] if document.get("event") == "bundle" else [document]:
        arrivals.append((str(item.get("idempotency_key")), at))
    await _reply(send, b"ok")


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False, lifespan="off"
    )
