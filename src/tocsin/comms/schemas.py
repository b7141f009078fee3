"""API shapes of the comms domain: the stakeholder-update cadence."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from tocsin.api_common import In, Out
from tocsin.comms.service import MAX_INTERVAL_MINUTES

Priority = Annotated[int, Field(ge=1, le=4, description="1 critical .. 4 low")]


class CadenceRuleIn(In):
    priority: Priority
    interval_minutes: int = Field(ge=1, le=MAX_INTERVAL_MINUTES, description="Longest silence allowed.")


class CadenceIn(In):
    rules: list[CadenceRuleIn] = Field(max_length=4, description="Priorities left out get no reminders.")


class CadenceRuleOut(Out):
    priority: int
    interval_minutes: int
    updated_at: datetime
