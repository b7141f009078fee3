"""The demo data set that `make run` loads: it must show Tocsin working, escalation included."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tocsin import demo
from tocsin.db import Database
from tocsin.incidents.models import Incident, IncidentState
from tocsin.oncall.models import EscalationRun, RunStatus

pytestmark = pytest.mark.anyio


async def test_the_demo_pages_platform_for_its_incidents_nobody_has_taken_on(db: Database) -> None:
    assert await demo.load(db)
    assert not await demo.load(db, if_empty=True)
    async with db.read() as s:
        incidents = {i.id: i for i in await s.scalars(select(Incident))}
        runs = {r.incident_id: r for r in await s.scalars(select(EscalationRun))}
    assert len(incidents) >= 12
    new_on_platform = {
        i.id
        for i in incidents.values()
        if i.state == IncidentState.new and i.team_id is not None and i.id in runs
    }
    assert new_on_platform, "a new Platform incident should be escalating"
    assert all(runs[i].status == RunStatus.running for i in new_on_platform)
    taken_on = [i for i in incidents.values() if i.id in runs and i.state != IncidentState.new]
    assert taken_on and all(runs[i.id].status != RunStatus.running for i in taken_on)
