"""Firing one escalation step: whom its targets name at that moment, paging them, and what comes next.

`prepare` reads whom a due step pages (outside any write transaction); `fire_step` is the handler's unit of
work. It trusts the run row, not the timer's payload: a timer fired twice (a crash after the commit), or moved
meanwhile (escalate now, a reassignment), finds the run already elsewhere and only realigns the timer, so
nobody is paged twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth import service as auth
from tocsin.auth.permissions import SYSTEM
from tocsin.catalog import service as catalog
from tocsin.engine.handlers import Again, Done, Outcome
from tocsin.errors import NotFound
from tocsin.incidents import service as incidents
from tocsin.incidents.models import Incident, IncidentState
from tocsin.notify import service as notify
from tocsin.notify.models import NotifyEvent, Urgency
from tocsin.oncall import progression, runs
from tocsin.oncall.models import EscalationPolicy, EscalationRun, RunStatus, TargetKind
from tocsin.oncall.policies import Target
from tocsin.oncall.progression import Position
from tocsin.oncall.queries import who_is_on_call
from tocsin.oncall.schedules import load_schedule

# A direct page (reassigned to a person or a schedule) is one step; unanswered this long, the run is over.
DIRECT_STEP_MINUTES = 15
MAX_PAGED = 200  # entries of `escalation_runs.paged` kept; the timeline keeps them all
SUMMARY_LENGTH = 500


@dataclass(frozen=True)
class Step:
    delay_minutes: int
    targets: Sequence[Target]


@dataclass(frozen=True)
class Course:
    """What a run walks: a policy's steps and rounds, or the single step of a direct page."""

    label: str  # "'Platform escalation'", or "the direct page"
    steps: Sequence[Step]
    repeat_count: int


@dataclass(frozen=True)
class Page:
    user_id: int
    name: str
    reason: str | None  # "on call for Primary", "member of Team A"; None for a user named outright
    target: str  # "schedule:3"


async def course_of(session: AsyncSession, run: EscalationRun) -> Course | None:
    """The run's policy (as stored now: edits apply to the next step) or direct target; None if deleted."""
    if run.policy_id is not None:
        policy = await session.get(EscalationPolicy, run.policy_id)
        if policy is None:
            return None
        steps = [
            Step(s.delay_minutes, [Target(TargetKind(t.kind), t.target_id) for t in s.targets])
            for s in policy.steps
        ]
        return Course(f"'{policy.name}'", steps, policy.repeat_count)
    if run.target_kind is not None and run.target_id is not None:
        direct = Step(DIRECT_STEP_MINUTES, [Target(TargetKind(run.target_kind), run.target_id)])
        return Course("the direct page", [direct], 0)
    return None


async def _user(session: AsyncSession, user_id: int, skipped: list[str], why: str | None) -> Page | None:
    try:
        user = await auth.get_user(session=session, user_id=user_id)
    except NotFound:
        skipped.append(f"user {user_id} no longer exists")
        return None
    if not user.active:
        skipped.append(f"{user.name}{f' ({why})' if why else ''} is deactivated")
        return None
    return Page(user.id, user.name, why, "")


async def _on_call(session: AsyncSession, schedule_id: int, at: datetime, skipped: list[str]) -> list[Page]:
    try:
        schedule = await load_schedule(session=session, schedule_id=schedule_id)
    except NotFound:
        skipped.append(f"schedule {schedule_id} no longer exists")
        return []
    answer = await who_is_on_call(session=session, schedule_id=schedule.id, at=at)
    if answer.user_id is None:
        skipped.append(f"nobody on call for {schedule.name}")
        return []
    page = await _user(session, answer.user_id, skipped, f"on call for {schedule.name}")
    return [] if page is None else [page]


async def _members(session: AsyncSession, team_id: int, skipped: list[str]) -> list[Page]:
    try:
        team = await auth.get_team(session=session, team_id=team_id)
    except NotFound:
        skipped.append(f"team {team_id} no longer exists")
        return []
    pages = []
    for user_id in await auth.team_members_of(session=session, team_id=team.id):
        page = await _user(session, user_id, [], f"member of {team.name}")  # inactive members: not news
        if page is not None:
            pages.append(page)
    if not pages:
        skipped.append(f"{team.name} has no active members")
    return pages


async def resolve(
    session: AsyncSession, targets: Sequence[Target], at: datetime
) -> tuple[list[Page], list[str]]:
    """The people the targets name at `at` (each once), and why anyone named could not be paged."""
    pages: dict[int, Page] = {}
    skipped: list[str] = []
    for target in targets:
        if target.kind == TargetKind.user:
            page = await _user(session, target.id, skipped, None)
            found = [] if page is None else [page]
        elif target.kind == TargetKind.schedule:
            found = await _on_call(session, target.id, at, skipped)
        else:
            found = await _members(session, target.id, skipped)
        for page in found:
            if page.user_id not in pages:
                pages[page.user_id] = Page(page.user_id, page.name, page.reason, f"{target.kind}:{target.id}")
    return list(pages.values()), skipped


async def _context(session: AsyncSession, incident: Incident, position: Position) -> dict[str, Any]:
    [view] = await incidents.views(session=session, incidents=[incident], roles={incident.id: []})
    services = await catalog.services_by_id(session=session, ids=view.service_ids)
    names = ", ".join(services[i].name for i in view.service_ids if i in services)
    summary = incident.description.strip()[:SUMMARY_LENGTH] or None
    return {
        "incident": {
            "id": incident.id,
            "ref": incident.ref,
            "title": incident.title,
            "priority": f"P{incident.priority}",
            "state": str(incident.state),
            "service": names or None,
            "summary": summary,
        },
        "step": position.step + 1,
    }


def _describe(label: str, pages: Sequence[Page], skipped: Sequence[str]) -> str:
    paged = [p.name + (f" ({p.reason})" if p.reason else "") for p in pages]
    text = f"{label}: paged {progression.people(paged)}" if paged else f"{label}: nobody paged"
    if skipped:
        text += ("; skipped: " if paged else " (") + "; ".join(skipped) + ("" if paged else ")")
    return text


@dataclass(frozen=True)
class Prepared:
    """A step worked out before its unit of work, from a snapshot of the run (its timer payload)."""

    plan: dict[str, Any]
    course: Course
    position: Position
    pages: Sequence[Page]
    skipped: Sequence[str]
    context: dict[str, Any] | None


async def prepare(*, session: AsyncSession, incident_id: int, payload: Any, now: datetime) -> Prepared | None:
    """Read-only: whom the run's due step pages and with what message, so that the unit of work that pages
    them holds its locks (and, on SQLite, the one writer) only for the writes. None when the step pages
    nobody (no run, a moved timer, an incident taken on, the end): `fire_step` then decides alone."""
    run = await session.get(EscalationRun, incident_id)
    if run is None or run.status != RunStatus.running or payload != runs.plan(run):
        return None
    try:
        incident = await incidents.get_incident(session=session, actor=SYSTEM, ref=incident_id)
    except NotFound:
        return None
    course = await course_of(session, run)
    if incident.state != IncidentState.new or course is None:
        return None
    position = progression.normalize(
        Position(run.round, run.step), steps=len(course.steps), repeat_count=course.repeat_count
    )
    if progression.is_end(position, repeat_count=course.repeat_count):
        return None
    pages, skipped = await resolve(session, course.steps[position.step].targets, now)
    context = await _context(session, incident, position) if pages else None
    return Prepared(runs.plan(run), course, position, pages, skipped, context)


async def fire_step(
    *,
    session: AsyncSession,
    incident_id: int,
    payload: Any,
    now: datetime,
    base_url: str,
    prepared: Prepared | None = None,
) -> Outcome:
    """Page the targets of the run's current step and move the run on; the timer's outcome is returned.

    `prepared` (from `prepare`) is used when the run is still where it was then; otherwise the step is
    worked out here, under the locks."""
    try:
        incident = await incidents.get_incident_to_work(session=session, actor=SYSTEM, ref=incident_id)
    except NotFound:
        return Done()
    run = await runs.locked_run(session, incident_id)
    if run is None or run.status != RunStatus.running:
        return Done()
    if payload != runs.plan(run):  # fired twice, or moved meanwhile: follow the run, page nobody
        return Again(at=run.due_at or now, payload=runs.plan(run))
    if incident.state != IncidentState.new:  # the listener stops runs; this is only a safety net
        await runs.halt(session=session, run=run, note=f"incident {incident.state}", now=now)
        return Done()
    if prepared is None or prepared.plan != runs.plan(run):
        prepared = await _work_out(session, incident, run, now)
        if prepared is None:
            return Done()
    return await _fire(session, incident, run, prepared, now=now, base_url=base_url)


async def _work_out(
    session: AsyncSession, incident: Incident, run: EscalationRun, now: datetime
) -> Prepared | None:
    """The step to fire; None after ending a run whose policy is gone or whose last step went unanswered."""
    course = await course_of(session, run)
    if course is None:
        run.status, run.due_at, run.note, run.updated_at = RunStatus.stopped, None, "policy deleted", now
        await runs.record(session, incident.id, "Escalation stopped: its policy was deleted", now=now)
        return None
    position = progression.normalize(
        Position(run.round, run.step), steps=len(course.steps), repeat_count=course.repeat_count
    )
    if progression.is_end(position, repeat_count=course.repeat_count):
        run.status, run.due_at, run.note, run.updated_at = (
            RunStatus.exhausted,
            None,
            "nobody acknowledged",
            now,
        )
        text = f"Escalation {course.label} exhausted, nobody acknowledged"
        await runs.record(session, incident.id, text, now=now, data={"generation": run.generation})
        return None
    pages, skipped = await resolve(session, course.steps[position.step].targets, now)
    return Prepared(runs.plan(run), course, position, pages, skipped, None)


async def _fire(
    session: AsyncSession,
    incident: Incident,
    run: EscalationRun,
    prepared: Prepared,
    *,
    now: datetime,
    base_url: str,
) -> Outcome:
    course, position, pages = prepared.course, prepared.position, prepared.pages
    context = prepared.context
    if pages and context is None:
        context = await _context(session, incident, position)
    queued = await _page(session, incident, run, position, pages, context=context, base_url=base_url, now=now)
    label = progression.step_label(position, policy=course.label, repeat_count=course.repeat_count)
    data = {
        "policy_id": run.policy_id,
        "generation": run.generation,
        "round": position.round,
        "step": position.step,
        "paged": [{"user_id": p.user_id, "name": p.name, "via": p.target} for p in pages],
        "skipped": list(prepared.skipped),
        "messages": queued,
    }
    await runs.record(session, incident.id, _describe(label, pages, prepared.skipped), now=now, data=data)
    following = progression.after(position, steps=len(course.steps), repeat_count=course.repeat_count)
    run.round, run.step = following.round, following.step
    run.due_at, run.updated_at = now + timedelta(minutes=course.steps[position.step].delay_minutes), now
    return Again(at=run.due_at, payload=runs.plan(run))


async def _page(
    session: AsyncSession,
    incident: Incident,
    run: EscalationRun,
    position: Position,
    pages: Sequence[Page],
    *,
    context: dict[str, Any] | None,
    base_url: str,
    now: datetime,
) -> int:
    """Queue each person's messages (by their own rules); returns how many were queued."""
    if not pages or context is None:
        return 0
    event = NotifyEvent.paged if position == progression.START else NotifyEvent.escalated
    urgency = Urgency(progression.urgency(run.urgency_mode, incident.priority))
    queued = 0
    for page in pages:
        where = f"g{run.generation}:r{position.round}:s{position.step}:u{page.user_id}"
        key = runs.key_prefix(incident.id) + where
        messages = await notify.notify_user(
            session=session,
            user_id=page.user_id,
            event=event,
            context=context,
            urgency=urgency,
            idempotency_prefix=key,
            base_url=base_url,
        )
        queued += len(messages)
        entry = {
            "generation": run.generation,
            "round": position.round,
            "step": position.step,
            "user_id": page.user_id,
            "name": page.name,
            "reason": page.reason,
            "at": now.isoformat(),
        }
        run.paged = [*run.paged, entry][-MAX_PAGED:]
    return queued
