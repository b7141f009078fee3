"""The alert list: state, count, last seen, integration and incident, filters, the raw payload on demand."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Query, Request, Response

from tocsin.alerts import service as alerts
from tocsin.alerts.models import AlertStatus, Severity
from tocsin.alerts.service import AlertFilter
from tocsin.web.render import html
from tocsin.web.routing import ui_router
from tocsin.web.session import Ui, ui

router = ui_router()
PAGE = 50


@router.get("/alerts")
async def alert_list(
    request: Request,
    status: Annotated[list[AlertStatus], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    severity: Annotated[list[Severity], Query()] = [],  # noqa: B006
    integration: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    incident: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    q: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    c: Ui = Depends(ui),
) -> Response:
    """Newest alerts first; the first page refreshes itself every few seconds."""
    where = AlertFilter(
        status=list(status) or None,
        severity=list(severity) or None,
        integration_id=integration,
        incident_id=incident,
        q=q.strip() if q and q.strip() else None,
    )
    async with c.db.read() as s:
        rows, next_cursor = await alerts.list_alerts(
            session=s, actor=c.actor, where=where, limit=PAGE, cursor=cursor
        )
        integrations = {i.id: i for i in await alerts.list_integrations(session=s, actor=c.actor)}
    params = [("status", str(x)) for x in status] + [("severity", str(x)) for x in severity]
    params += [("integration", str(integration))] if integration else []
    params += [("incident", str(incident))] if incident else []
    params += [("q", q)] if q else []
    context = {
        "rows": rows,
        "integrations": integrations,
        "statuses": list(AlertStatus),
        "severities": list(Severity),
        "chosen": {"status": status, "severity": severity, "integration": integration, "q": q or ""},
        "params": params,
        "next_cursor": next_cursor,
        "live": cursor is None,
        "refresh_url": request.url.path + ("?" + request.url.query if request.url.query else ""),
    }
    if request.headers.get("hx-target") == "alert-rows":
        return html(request, "alerts/_rows.html", context)
    return html(request, "alerts/list.html", context)


@router.get("/alerts/{alert_id}/raw")
async def raw_payload(request: Request, alert_id: int, c: Ui = Depends(ui)) -> Response:
    """The latest payload the sender posted for this alert, pretty-printed."""
    async with c.db.read() as s:
        alert, _ = await alerts.get_alert(session=s, actor=c.actor, alert_id=alert_id)
    text = json.dumps(alert.raw, indent=2, sort_keys=True, default=str) if alert.raw is not None else None
    return html(request, "alerts/_raw.html", {"text": text})
