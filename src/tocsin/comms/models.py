"""Tables of the comms domain: how often stakeholders must hear about an open incident, per priority."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from tocsin.db import Base, UTCDateTime


class CadenceRule(Base):
    """While an incident of this priority is open, a stakeholder update is due every `interval_minutes`.

    A null interval means no reminders; the row stays so that seeding never brings back a removed default.
    """

    __tablename__ = "comms_cadence"
    __table_args__ = (
        CheckConstraint("priority BETWEEN 1 AND 4", name="priority_range"),
        CheckConstraint("interval_minutes > 0", name="interval_positive"),
    )

    priority: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    interval_minutes: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
