"""Intake routes: where monitoring tools send alerts, authenticated only by the integration key.

Each answers the way its sender expects: 202 once the events are committed, problem+json 4xx that says what
to change (PagerDuty's own body shape on its routes), 429 and 503 with Retry-After so senders back off and
retry. Bodies are read here, capped at 512 KB, never parsed by the framework.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tocsin.alerts.adapters.base import IntakeRequest, PayloadError
from tocsin.alerts.adapters.pagerduty import routing_key_of
from tocsin.alerts.intake import Intake, Refused
from tocsin.alerts.models import IntegrationKind
from tocsin.alerts.writer import DeliveryFailed, WriterClosed
from tocsin.errors import problem
from tocsin.middleware import SECURITY_HEADERS

router = APIRouter(tags=["intake"])

_TITLES = {
    400: "Bad request",
    404: "Not found",
    413: "Payload too large",
    429: "Too many requests",
    503: "Service unavailable",
}
_PD_INVALID = {"status": "invalid event", "message": "Event object is invalid"}


def intake_of(request: Request) -> Intake:
    intake: Intake = request.app.state.alert_intake
    return intake


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with a 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the body is over {limit // 1024} KB; send fewer alerts per request")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"the body is over {limit // 1024} KB; send fewer alerts per request")
        chunks.append(chunk)
    return b"".join(chunks)


def _refusal(exc: Exception) -> Refused:
    if isinstance(exc, PayloadError):
        return Refused(400, exc.message, errors=exc.errors)
    if isinstance(exc, DeliveryFailed | WriterClosed):
        return Refused(503, f"{exc}; retry shortly", retry_after=1)
    assert isinstance(exc, Refused)
    return exc


def _headers(refused: Refused) -> dict[str, str] | None:
    return {"Retry-After": str(refused.retry_after)} if refused.retry_after else None


def _problem(refused: Refused) -> Response:
    extra: dict[str, Any] = {"errors": refused.errors} if refused.errors else {}
    response = problem(refused.status, _TITLES.get(refused.status, "Error"), refused.detail, **extra)
    response.headers.update(_headers(refused) or {})
    return response


_FAILURES = (Refused, PayloadError, DeliveryFailed, WriterClosed)
_SECURITY = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}


def _webhook(kind: IntegrationKind) -> Callable[[str, Request], Awaitable[Response]]:
    async def receive(key: str, request: Request) -> Response:
        intake = intake_of(request)
        try:
            source = await intake.admit(kind, key)
            body = await read_body(request, intake.max_body)
            events = await intake.accept(source, IntakeRequest(body, dict(request.headers.items())))
        except _FAILURES as exc:
            return _problem(_refusal(exc))
        return JSONResponse({"status": "accepted", "alerts": len(events)}, status_code=202)

    receive.__name__ = f"intake_{kind.value}"
    receive.__doc__ = f"Receive a {kind.value} payload; 202 once its alerts are committed."
    return receive


_WEBHOOK_KINDS = (
    IntegrationKind.alertmanager,
    IntegrationKind.grafana,
    IntegrationKind.cloudevents,
    IntegrationKind.generic,
)
_HANDLERS = {kind: _webhook(kind) for kind in _WEBHOOK_KINDS}
for _kind, _handler in _HANDLERS.items():
    router.add_api_route(
        f"/intake/{_kind.value}/{{key}}",
        _handler,
        methods=["POST"],
        status_code=202,
        response_class=JSONResponse,
    )


def _pd_answer(refused: Refused) -> Response:
    if refused.status == 400:
        body: dict[str, Any] = {**_PD_INVALID, "errors": refused.errors or [refused.detail]}
    else:
        body = {
            "status": "error" if refused.status != 429 else "throttle event",
            "message": refused.detail,
            "errors": refused.errors or [refused.detail],
        }
    return JSONResponse(body, status_code=refused.status, headers=_headers(refused))


async def _pagerduty(request: Request, url_key: str | None) -> Response:
    intake = intake_of(request)
    try:
        body = await read_body(request, intake.max_body)
        incoming = IntakeRequest(body, dict(request.headers.items()))
        routing_key = routing_key_of(incoming.json())
        if url_key is not None and routing_key and routing_key != url_key:
            raise PayloadError("'routing_key' does not match the key in the URL")
        key = url_key or routing_key
        if not key:
            raise PayloadError("'routing_key' is missing or blank")
        try:
            source = await intake.admit(IntegrationKind.pagerduty, key)
        except Refused as exc:
            if exc.status == 404:
                raise PayloadError("'routing_key' is not a valid integration key") from exc
            raise
        events = await intake.accept(source, incoming)
    except _FAILURES as exc:
        return _pd_answer(_refusal(exc))
    return JSONResponse(
        {"status": "success", "message": "Event processed", "dedup_key": events[0].dedup_key}, status_code=202
    )


class FastPath:
    """The hot intake routes answered before FastAPI's routing and dependency machinery.

    A monitoring storm sends thousands of small webhooks a second; going through the router (a regular
    expression per route until one matches), the framework's request handling and the middleware stack cost
    about a quarter of the server's time per alert. The webhook and PagerDuty routes are matched here by
    their path and handled by the same functions the router would call, so answers are identical (the
    OpenAPI document still lists the routes). Anything else, and these paths with another method, goes on
    to the app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.webhooks = {f"/intake/{k.value}/": _HANDLERS[k] for k in _WEBHOOK_KINDS}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            response = await self._answer(scope, receive)
            if response is not None:
                response.headers.update(_SECURITY)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive) -> Response | None:
        path: str = scope["path"]
        if path == "/v2/enqueue":
            return await _pagerduty(Request(scope, receive), None)
        if not path.startswith("/intake/"):
            return None
        prefix, _, key = path.rpartition("/")
        if not key:
            return None
        if prefix == "/intake/pagerduty":
            return await _pagerduty(Request(scope, receive), key)
        handler = self.webhooks.get(prefix + "/")
        return None if handler is None else await handler(key, Request(scope, receive))


@router.post("/v2/enqueue", status_code=202)
async def pagerduty_enqueue(request: Request) -> Response:
    """PagerDuty Events API v2 compatible: the integration key is the body's routing_key."""
    return await _pagerduty(request, None)


@router.post("/intake/pagerduty/{key}", status_code=202)
async def pagerduty_with_key(key: str, request: Request) -> Response:
    """PagerDuty Events API v2 body with the key in the URL (a routing_key in the body must then match)."""
    return await _pagerduty(request, key)


async def heartbeat_checkin(key: str, request: Request) -> Response:
    """A heartbeat check-in: records the time, moves the deadline, resolves the missed-check-in alert."""
    try:
        await intake_of(request).checkin(key)
    except _FAILURES as exc:
        return _problem(_refusal(exc))
    return JSONResponse({"status": "ok"})


for _method in ("GET", "POST", "HEAD"):  # monitors check in with whichever their tool sends
    router.add_api_route(
        "/intake/heartbeat/{key}",
        heartbeat_checkin,
        methods=[_method],
        operation_id=f"heartbeat_checkin_{_method.lower()}",
    )
