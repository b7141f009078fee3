"""REST routes for the comms domain: the stakeholder-update cadence per priority."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from tocsin.api_common import API
from tocsin.auth.deps import Ctx, ctx
from tocsin.comms import service
from tocsin.comms.schemas import CadenceIn, CadenceRuleOut

router = APIRouter(prefix=API)


@router.get("/comms/cadence", response_model=list[CadenceRuleOut], tags=["comms"])
async def get_cadence(c: Ctx = Depends(ctx)) -> list[CadenceRuleOut]:
    """How often stakeholders must hear about an open incident, per priority (others: no reminders)."""
    async with c.db.read() as s:
        return [CadenceRuleOut.model_validate(r) for r in await service.list_cadence(session=s)]


@router.put("/comms/cadence", response_model=list[CadenceRuleOut], tags=["comms"])
async def replace_cadence(body: CadenceIn, c: Ctx = Depends(ctx)) -> list[CadenceRuleOut]:
    """Replace the whole cadence; the comms lead is reminded once an interval passes without a
    stakeholder update."""
    rules = [(r.priority, r.interval_minutes) for r in body.rules]
    async with c.db.write() as s:
        return [
            CadenceRuleOut.model_validate(r)
            for r in await service.replace_cadence(session=s, actor=c.actor, rules=rules)
        ]
