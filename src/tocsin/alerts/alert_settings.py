"""Per-service alert settings: grouping window and key, auto-resolve, flapping, default impact and urgency.

A service without a row has the defaults below. Reading needs Can.read_all, changing needs Can.manage_config
(these settings route alerts, like routing rules) and is audited.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.alerts import snapshot
from tocsin.alerts.flapping import DEFAULT_CYCLES, DEFAULT_WINDOW_MINUTES, FlapPolicy
from tocsin.alerts.models import ServiceAlertSettings, Severity
from tocsin.alerts.refs import SERVICES, check_service
from tocsin.audit import service as audit
from tocsin.auth.permissions import Actor, Can
from tocsin.auth.service import require
from tocsin.db import utcnow
from tocsin.errors import Invalid

DEFAULT_WINDOW = 60  # minutes: alerts of one key within an hour of the previous one share its incident


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """One service's settings, with the defaults filled in."""

    service_id: int
    grouping_window_minutes: int = DEFAULT_WINDOW
    group_by: tuple[str, ...] | None = None
    auto_resolve: bool = True
    flap_cycles: int = DEFAULT_CYCLES
    flap_window_minutes: int = DEFAULT_WINDOW_MINUTES
    default_impact: int | None = None
    severity_urgency: Mapping[str, int] | None = None
    customized: bool = False  # a row exists (else: all defaults)

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.grouping_window_minutes)

    @property
    def flap(self) -> FlapPolicy:
        return FlapPolicy(self.flap_cycles, timedelta(minutes=self.flap_window_minutes))

    def view(self) -> dict[str, Any]:
        data = asdict(self)
        data["group_by"] = list(self.group_by) if self.group_by is not None else None
        data["severity_urgency"] = dict(self.severity_urgency) if self.severity_urgency else None
        return data


def _of(row: ServiceAlertSettings) -> AlertSettings:
    return AlertSettings(
        service_id=row.service_id,
        grouping_window_minutes=row.grouping_window_minutes,
        group_by=tuple(row.group_by) if row.group_by is not None else None,
        auto_resolve=row.auto_resolve,
        flap_cycles=row.flap_cycles,
        flap_window_minutes=row.flap_window_minutes,
        default_impact=row.default_impact,
        severity_urgency=dict(row.severity_urgency) if row.severity_urgency else None,
        customized=True,
    )


async def settings_for(session: AsyncSession, service_ids: Collection[int]) -> dict[int, AlertSettings]:
    """The settings of each given service (defaults where none were saved); no permission check."""
    found = {
        row.service_id: _of(row)
        for row in await session.scalars(
            select(ServiceAlertSettings).where(ServiceAlertSettings.service_id.in_(sorted(service_ids)))
        )
    }
    return {sid: found.get(sid) or AlertSettings(sid) for sid in service_ids}


async def service_tiers(session: AsyncSession, service_ids: Collection[int]) -> dict[int, int]:
    rows = await session.execute(
        select(SERVICES.c.id, SERVICES.c.tier).where(SERVICES.c.id.in_(sorted(service_ids)))
    )
    return {int(r[0]): int(r[1]) for r in rows}


async def get_alert_settings(*, session: AsyncSession, actor: Actor, service_id: int) -> AlertSettings:
    require(actor, Can.read_all)
    await check_service(session, service_id)
    return (await settings_for(session, [service_id]))[service_id]


def _checked_urgency(table: Mapping[str, int] | None) -> dict[str, int] | None:
    if table is None:
        return None
    known = {s.value for s in Severity}
    wrong = sorted(set(table) - known)
    if wrong:
        raise Invalid(f"severity_urgency: {', '.join(wrong)} is not a severity ({', '.join(sorted(known))})")
    if any(not 1 <= v <= 3 for v in table.values()):
        raise Invalid("severity_urgency: each urgency is 1 (high) to 3 (low)")
    return dict(table)


async def put_alert_settings(
    *,
    session: AsyncSession,
    actor: Actor,
    service_id: int,
    grouping_window_minutes: int = DEFAULT_WINDOW,
    group_by: list[str] | None = None,
    auto_resolve: bool = True,
    flap_cycles: int = DEFAULT_CYCLES,
    flap_window_minutes: int = DEFAULT_WINDOW_MINUTES,
    default_impact: int | None = None,
    severity_urgency: Mapping[str, int] | None = None,
    now: datetime | None = None,
) -> AlertSettings:
    """Replace a service's alert settings (fields not given take their defaults)."""
    require(actor, Can.manage_config)
    await check_service(session, service_id)
    if default_impact is not None and not 1 <= default_impact <= 3:
        raise Invalid("default_impact is 1 (high) to 3 (low), or null to derive it from the service tier")
    urgency = _checked_urgency(severity_urgency)
    row = await session.get(ServiceAlertSettings, service_id)
    before = _of(row).view() if row is not None else None
    if row is None:
        row = ServiceAlertSettings(service_id=service_id)
        session.add(row)
    row.grouping_window_minutes = grouping_window_minutes
    row.group_by = list(group_by) if group_by else None
    row.auto_resolve = auto_resolve
    row.flap_cycles = flap_cycles
    row.flap_window_minutes = flap_window_minutes
    row.default_impact = default_impact
    row.severity_urgency = urgency
    row.updated_at = now or utcnow()
    await session.flush()
    snapshot.changed()
    after = _of(row)
    audit.record(
        session=session,
        actor=actor.ref,
        action="alert_settings.update",
        entity_type="service",
        entity_id=service_id,
        before=before,
        after=after.view(),
    )
    return after
