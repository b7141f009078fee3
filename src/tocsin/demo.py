"""Demo data for `make run`: teams, people, services, on-call, and a dozen incidents in every state.

Everything goes through the domain services, so the demo has the same timelines and audit trail as real use.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth import service as auth
from tocsin.auth.models import Role, TeamRole
from tocsin.auth.permissions import SYSTEM, Actor
from tocsin.catalog import service as catalog
from tocsin.catalog.models import ItemKind
from tocsin.catalog.service import ItemRef
from tocsin.db import Database, utcnow
from tocsin.incidents import service as incidents
from tocsin.incidents.models import IncidentRole, IncidentState, MajorStatus, Visibility
from tocsin.oncall import service as oncall
from tocsin.oncall.models import TargetKind
from tocsin.oncall.rotation import ShiftUnit
from tocsin.oncall.service import StepSpec, Target

ADMIN_EMAIL = "admin@tocsin.example"
ADMIN_PASSWORD = "tocsin-demo-admin"
PEOPLE_PASSWORD = "tocsin-demo-user"

PEOPLE = [
    ("admin", "Ada Admin", Role.admin, None),
    ("maya", "Maya Manager", Role.manager, None),
    ("raj", "Raj Responder", Role.responder, "platform"),
    ("lena", "Lena Linux", Role.responder, "platform"),
    ("sam", "Sam Secure", Role.responder, "security"),
    ("fay", "Fay Facilities", Role.responder, "facilities"),
    ("rory", "Rory Reporter", Role.reporter, None),
    ("vic", "Vic Viewer", Role.viewer, None),
]


async def load(db: Database, *, if_empty: bool = False) -> bool:
    """Load the demo set (with if_empty: only into a database without users); returns whether it did."""
    async with db.write() as s:
        if if_empty and await auth.count_users(session=s) > 0:
            return False
        now = utcnow()
        users, teams = await _people(s)
        actor = Actor(kind="user", user_id=users["admin"], role=Role.admin, name="Ada Admin")
        services = await _catalog(s, actor, teams)
        await _oncall(s, actor, users, teams, services, now)
        await _incidents(s, users, teams, services, now)
    return True


async def _people(s: AsyncSession) -> tuple[dict[str, int], dict[str, int]]:
    teams = {}
    for slug, name in [
        ("platform", "Platform"),
        ("security", "Security"),
        ("facilities", "Facilities & Safety"),
    ]:
        teams[slug] = (await auth.create_team(session=s, actor=SYSTEM, slug=slug, name=name)).id
    users = {}
    for key, name, role, team in PEOPLE:
        email = ADMIN_EMAIL if key == "admin" else f"{key}@tocsin.example"
        password = ADMIN_PASSWORD if key == "admin" else PEOPLE_PASSWORD
        user = await auth.create_user(
            session=s,
            actor=SYSTEM,
            email=email,
            name=name,
            role=role,
            password=password,
            time_zone="Europe/London",
        )
        users[key] = user.id
        if team:
            await auth.set_member(
                session=s, actor=SYSTEM, team_id=teams[team], user_id=user.id, team_role=TeamRole.member
            )
    await auth.set_member(
        session=s, actor=SYSTEM, team_id=teams["platform"], user_id=users["maya"], team_role=TeamRole.manager
    )
    return users, teams


async def _catalog(s: AsyncSession, actor: Actor, teams: dict[str, int]) -> dict[str, int]:
    area = await catalog.create_business_area(
        session=s, actor=actor, name="Online sales", description="Everything a customer needs to buy from us."
    )
    specs: list[tuple[str, str, str, int, int | None]] = [
        ("checkout-api", "Checkout API", "platform", 1, area.id),
        ("payments-db", "Payments database", "platform", 1, area.id),
        ("web-frontend", "Web storefront", "platform", 2, area.id),
        ("vpn", "Corporate VPN", "security", 2, None),
        ("hq-building", "HQ building services", "facilities", 3, None),
    ]
    ids = {}
    for slug, name, team, tier, area_id in specs:
        svc = await catalog.create_service(
            session=s,
            actor=actor,
            slug=slug,
            name=name,
            owner_team_id=teams[team],
            tier=tier,
            business_area_id=area_id,
            runbook_url=f"https://runbooks.example.com/{slug}",
        )
        ids[slug] = svc.id
    await catalog.add_dependency(
        session=s,
        actor=actor,
        item=ItemRef(ItemKind.service, "checkout-api"),
        depends_on=ItemRef(ItemKind.service, "payments-db"),
    )
    await catalog.add_dependency(
        session=s,
        actor=actor,
        item=ItemRef(ItemKind.service, "web-frontend"),
        depends_on=ItemRef(ItemKind.service, "checkout-api"),
    )
    return ids


async def _oncall(
    s: AsyncSession,
    actor: Actor,
    users: dict[str, int],
    teams: dict[str, int],
    services: dict[str, int],
    now: datetime,
) -> None:
    """Platform's on-call: a weekly rotation of Raj and Lena, paged first, then Maya. The checkout services
    run the policy (the API with a 30-minute acknowledgement timeout; no demo incident there is merely
    acknowledged, so none flips back to new at start), and it is the team's default for the rest."""
    schedule = await oncall.create_schedule(
        session=s, actor=actor, name="Platform primary", time_zone="Europe/London", team_id=teams["platform"]
    )
    start = datetime(now.year, now.month, 1, 9, 0)
    await oncall.add_layer(
        session=s,
        actor=actor,
        schedule_id=schedule.id,
        name="Weekly rotation",
        participants=[users["raj"], users["lena"]],
        rotation_start=start,
        shift_length=1,
        shift_unit=ShiftUnit.weeks,
    )
    policy = await oncall.create_policy(
        session=s,
        actor=actor,
        name="Platform escalation",
        team_id=teams["platform"],
        repeat_count=2,
        steps=[
            StepSpec(5, [Target(TargetKind.schedule, schedule.id)]),
            StepSpec(10, [Target(TargetKind.user, users["maya"])]),
        ],
    )
    for slug, ack_timeout in (("checkout-api", 30), ("payments-db", None)):
        await oncall.set_service_escalation(
            session=s,
            actor=actor,
            service_key=services[slug],
            policy_id=policy.id,
            ack_timeout_minutes=ack_timeout,
        )
    await oncall.set_team_escalation(session=s, actor=actor, team_id=teams["platform"], policy_id=policy.id)


def _as(users: dict[str, int], key: str, role: Role) -> Actor:
    return Actor(kind="user", user_id=users[key], role=role, name=key)


async def _incidents(
    s: AsyncSession, users: dict[str, int], teams: dict[str, int], services: dict[str, int], now: datetime
) -> None:
    admin = _as(users, "admin", Role.admin)

    async def new(title: str, ago: timedelta, **kw: Any) -> str:
        inc = await incidents.create_incident(
            session=s, actor=admin, title=title, now=now - ago, reported_at=now - ago, **kw
        )
        return inc.ref

    async def move(ref: str, target: IncidentState, ago: timedelta, **kw: Any) -> None:
        await incidents.transition(session=s, actor=admin, ref=ref, target=target, now=now - ago, **kw)

    p1 = await new(
        "Checkout API returning 502 for 30% of requests",
        timedelta(minutes=25),
        description="Spike of 502s from the load balancer since the 14:05 deploy.",
        impact=1,
        urgency=1,
        team_id=teams["platform"],
        service_ids=[services["checkout-api"]],
        detected_at=now - timedelta(minutes=27),
        impact_started_at=now - timedelta(minutes=31),
    )
    early = now - timedelta(minutes=21)
    await incidents.assign(session=s, actor=admin, ref=p1, assignee_id=users["raj"], now=early)
    await move(p1, IncidentState.in_progress, timedelta(minutes=20))
    await incidents.set_role(
        session=s, actor=admin, ref=p1, role=IncidentRole.commander, user_id=users["maya"], now=early
    )
    await incidents.set_role(
        session=s, actor=admin, ref=p1, role=IncidentRole.resolver, user_id=users["raj"], now=early
    )
    await incidents.set_major(session=s, actor=admin, ref=p1, status=MajorStatus.accepted, now=early)
    await incidents.add_note(
        session=s, actor=admin, ref=p1, text="Rolling back the 14:05 deploy.", now=now - timedelta(minutes=12)
    )
    await incidents.add_note(
        session=s,
        actor=admin,
        ref=p1,
        visibility=Visibility.stakeholder,
        text="We are investigating failed checkouts; next update in 30 minutes.",
        now=now - timedelta(minutes=10),
    )

    child = await new(
        "Payment confirmations delayed",
        timedelta(minutes=18),
        impact=2,
        urgency=1,
        team_id=teams["platform"],
        service_ids=[services["payments-db"]],
        parent=p1,
    )
    await move(child, IncidentState.acknowledged, timedelta(minutes=15))

    await new(
        "Storefront images load slowly in EU",
        timedelta(hours=2),
        impact=2,
        urgency=2,
        team_id=teams["platform"],
        service_ids=[services["web-frontend"]],
    )
    ack = await new(
        "Disk 85% full on payments replica",
        timedelta(hours=5),
        impact=3,
        urgency=2,
        team_id=teams["platform"],
        service_ids=[services["payments-db"]],
    )
    await move(ack, IncidentState.acknowledged, timedelta(hours=4, minutes=50))

    hold = await new(
        "VPN drops every 20 minutes for the Lyon office",
        timedelta(days=1),
        impact=2,
        urgency=2,
        team_id=teams["security"],
        service_ids=[services["vpn"]],
        reporter_id=users["rory"],
    )
    await move(hold, IncidentState.in_progress, timedelta(hours=23))
    await move(
        hold,
        IncidentState.on_hold,
        timedelta(hours=20),
        hold_reason="awaiting_vendor",
        reason="ISP ticket 55123 open",
    )

    resolved = await new(
        "Checkout latency above SLO",
        timedelta(days=2),
        impact=2,
        urgency=1,
        team_id=teams["platform"],
        service_ids=[services["checkout-api"]],
    )
    await move(resolved, IncidentState.in_progress, timedelta(days=2) - timedelta(minutes=6))
    await move(
        resolved,
        IncidentState.resolved,
        timedelta(days=1, hours=22),
        resolution_code="solution_provided",
        resolution_summary="Connection pool raised from 20 to 50; latency back to normal.",
    )

    closed = await new(
        "Password reset emails not sent", timedelta(days=9), impact=3, urgency=1, team_id=teams["platform"]
    )
    await move(closed, IncidentState.in_progress, timedelta(days=9) - timedelta(minutes=12))
    await move(
        closed,
        IncidentState.resolved,
        timedelta(days=8),
        resolution_code="workaround_provided",
        resolution_summary="Mail relay credentials renewed; permanent fix tracked separately.",
    )
    await move(closed, IncidentState.closed, timedelta(days=1))

    dup = await new(
        "Checkout broken",
        timedelta(minutes=22),
        impact=1,
        urgency=1,
        team_id=teams["platform"],
        reporter_id=users["rory"],
    )
    await move(
        dup,
        IncidentState.cancelled,
        timedelta(minutes=21),
        reason="Same as the open checkout outage",
        duplicate_of=p1,
    )

    await new(
        "Phishing campaign targeting finance staff",
        timedelta(hours=3),
        type_key="security",
        impact=2,
        urgency=1,
        team_id=teams["security"],
        extra={
            "indicators": [
                {"type": "domain", "value": "invoices-example.co"},
                {"type": "email", "value": "billing@invoices-example.co"},
            ]
        },
    )
    await new(
        "Customer list e-mailed to the wrong recipient",
        timedelta(hours=6),
        type_key="data_protection",
        impact=2,
        urgency=1,
        team_id=teams["security"],
    )
    await new(
        "Near miss: pallet fell from racking in warehouse B",
        timedelta(hours=30),
        type_key="safety",
        impact=3,
        urgency=2,
        team_id=teams["facilities"],
        reporter_id=users["rory"],
        extra={
            "event_date": (now - timedelta(hours=30)).date().isoformat(),
            "location": "Warehouse B, aisle 4",
            "what_happened": "A pallet slid off the top shelf while a forklift passed; nobody was hurt.",
            "actual_severity": "near_miss",
            "potential_severity": "lost_time",
        },
    )
    await new(
        "Batch 2211 tablets below hardness spec",
        timedelta(days=3),
        type_key="quality",
        impact=2,
        urgency=3,
        team_id=teams["facilities"],
    )
    await new(
        "Air conditioning failed in server room 2",
        timedelta(minutes=50),
        type_key="facility",
        impact=1,
        urgency=2,
        team_id=teams["facilities"],
        service_ids=[services["hq-building"]],
    )
