"""The demo data set that `make run` loads: it must show Tocsin working, escalation included."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tocsin import demo
from tocsin.auth.models import Team
from tocsin.catalog.models import Service
from tocsin.db import Database
from tocsin.incidents.models import Incident, IncidentState
from tocsin.oncall.models import EscalationRun, RunStatus, ServiceEscalation, TeamEscalation

pytestmark = pytest.mark.anyio


async def test_the_demo_pages_platform_for_its_incidents_nobody_has_taken_on(db: Database) -> None:
    assert await demo.load(db)
    assert not await demo.load(db, if_empty=True)
    async with db.read() as s:
        platform = await s.scalar(select(Team.id).where(Team.slug == "platform"))
        incidents = list(await s.scalars(select(Incident)))
        runs = {r.incident_id: r for r in await s.scalars(select(EscalationRun))}
        by_service = {
            slug: timeout
            for slug, timeout in await s.execute(
                select(Service.slug, ServiceEscalation.ack_timeout_minutes).join(
                    ServiceEscalation, ServiceEscalation.service_id == Service.id
                )
            )
        }
        team_default = await s.get(TeamEscalation, platform)
    assert len(incidents) >= 12
    assert by_service == {"checkout-api": 30, "payments-db": None} and team_default is not None
    waiting = [i for i in incidents if i.team_id == platform and i.state == IncidentState.new]
    assert waiting and all(runs[i.id].status == RunStatus.running for i in waiting)
    taken_on = [i for i in incidents if i.team_id == platform and i.state != IncidentState.new]
    assert taken_on and all(runs[i.id].status != RunStatus.running for i in taken_on)
    others = [i for i in incidents if i.team_id != platform]
    assert others and not any(i.id in runs for i in others)
