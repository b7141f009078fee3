"""Fixtures for escalation tests: a real webhook receiver, an engine worker driven step by step, and a
"Platform" world (schedule, two-step policy, service, people reachable by webhook)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import People
from tests.notify.receivers import HttpReceiver, serve
from tocsin.auth.permissions import SYSTEM, Actor
from tocsin.catalog import service as catalog
from tocsin.config import Settings
from tocsin.db import Database, utcnow
from tocsin.engine.handlers import EngineContext
from tocsin.engine.worker import Worker
from tocsin.incidents import service as incidents
from tocsin.incidents.models import EntryKind, TimelineEntry
from tocsin.notify import contacts
from tocsin.notify.models import ChannelKind, OutboxMessage, Urgency
from tocsin.oncall import service
from tocsin.oncall.models import TargetKind
from tocsin.wiring import timer_handlers


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    server = serve(r)
    yield r
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The suite's settings; webhook targets on 127.0.0.1 allowed (the receiver is local)."""
    return Settings(
        database_url=database_url,
        demo=True,
        secret_key="test-secret-key-0123456789",
        max_body_bytes=65_536,
        base_url="https://tocsin.example.com",
        allow_private_targets=True,
        http_timeout_seconds=5,
        engine=False,
    )


class Engine:
    """The real timer handlers on a worker the test drives: fire what is due at the (travelled) clock."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.worker = Worker(EngineContext(db=db, settings=settings), timer_handlers(), listen=False)

    async def run_due(self, max_rounds: int = 100) -> int:
        """Fire every timer due now, and those that firing makes due now, one at a time; returns how many."""
        fired = 0
        for _ in range(max_rounds):
            claimed = await self.worker.claim_due(utcnow())
            if not claimed:
                return fired
            for timer in claimed:
                await self.worker.fire(timer)
            fired += len(claimed)
        raise AssertionError(f"timers still due after {max_rounds} rounds")


@pytest.fixture
def engine(db: Database, settings: Settings) -> Engine:
    return Engine(db, settings)


def actor_of(people: People, who: str) -> Actor:
    """The service-layer actor of a persona (responder and other_responder belong to their teams)."""
    person = getattr(people, who)
    teams = {"responder": {people.team_a}, "other_responder": {people.team_b}}.get(who, set())
    return Actor(kind="user", user_id=person.user_id, role=person.role, name=who, team_ids=frozenset(teams))


@dataclass
class World:
    schedule_id: int
    policy_id: int
    service_id: int
    paths: dict[str, str]  # persona -> receiver path of their webhook


async def reachable(db: Database, user_id: int, url: str, *, delay: int = 0) -> int:
    """Give a person a webhook contact method with a high- and a low-urgency rule at `delay` minutes."""
    async with db.write() as s:
        method, _ = await contacts.create_contact_method(
            session=s, actor=SYSTEM, user_id=user_id, kind=ChannelKind.webhook, address=url
        )
        for urgency in Urgency:
            await contacts.create_rule(
                session=s,
                actor=SYSTEM,
                user_id=user_id,
                contact_method_id=method.id,
                urgency=urgency,
                delay_minutes=delay,
            )
    return method.id


@pytest.fixture
async def world(db: Database, people: People, receiver: HttpReceiver) -> World:
    """Team A's "Platform primary" schedule (the responder, around the clock), the "Platform escalation"
    policy (step 1: the schedule, 5 min; step 2: the manager, 5 min; run twice), the "platform" service
    running it; the responder and the manager each reachable on their own webhook."""
    async with db.write() as s:
        schedule = await service.create_schedule(
            session=s, actor=SYSTEM, name="Platform primary", time_zone="UTC", team_id=people.team_a
        )
        await service.add_layer(
            session=s,
            actor=SYSTEM,
            schedule_id=schedule.id,
            name="24x7",
            participants=[people.responder.user_id],
            rotation_start=datetime(2024, 1, 1),
        )
        policy = await service.create_policy(
            session=s,
            actor=SYSTEM,
            name="Platform escalation",
            team_id=people.team_a,
            repeat_count=1,
            steps=[
                service.StepSpec(5, [service.Target(TargetKind.schedule, schedule.id)]),
                service.StepSpec(5, [service.Target(TargetKind.user, people.manager.user_id)]),
            ],
        )
        platform = await catalog.create_service(
            session=s, actor=SYSTEM, slug="platform", name="Platform", owner_team_id=people.team_a
        )
        await service.set_service_escalation(
            session=s, actor=SYSTEM, service_key=platform.id, policy_id=policy.id
        )
        ids = (schedule.id, policy.id, platform.id)
    paths = {"responder": "/responder", "manager": "/manager"}
    for who, path in paths.items():
        await reachable(db, getattr(people, who).user_id, receiver.url(path))
    return World(*ids, paths)


async def open_incident(db: Database, world: World, *, priority_one: bool = True, **kw: Any) -> int:
    """A new incident on the Platform service (P1 unless told otherwise)."""
    level = 1 if priority_one else 3
    async with db.write() as s:
        incident = await incidents.create_incident(
            session=s,
            actor=SYSTEM,
            title="Checkout is down",
            impact=level,
            urgency=level,
            service_ids=kw.pop("service_ids", [world.service_id]),
            **kw,
        )
        incident_id: int = incident.id
    return incident_id


async def entries(db: Database, incident_id: int, kind: EntryKind = EntryKind.escalation) -> list[str]:
    async with db.read() as s:
        rows = await s.scalars(
            select(TimelineEntry.text)
            .where(TimelineEntry.incident_id == incident_id, TimelineEntry.kind == kind)
            .order_by(TimelineEntry.id)
        )
        return list(rows)


async def outbox(db: Database, incident_id: int) -> list[OutboxMessage]:
    async with db.read() as s:
        rows = await s.scalars(
            select(OutboxMessage).where(OutboxMessage.incident_id == incident_id).order_by(OutboxMessage.id)
        )
        return list(rows)


def keys(receiver: HttpReceiver) -> list[str]:
    return [r.headers["x-tocsin-idempotency-key"] for r in receiver.received]


def paths(receiver: HttpReceiver) -> list[str]:
    return [r.path for r in receiver.received]
