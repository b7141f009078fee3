"""Moving incidents through their lifecycle, resolving children with their parent, and parent links."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tocsin.auth.permissions import Actor
from tocsin.db import utcnow
from tocsin.errors import Conflict, Invalid, NotFound
from tocsin.incidents import lifecycle
from tocsin.incidents.lifecycle import Lifecycle, Move
from tocsin.incidents.models import (
    EntryKind,
    HoldReason,
    Incident,
    IncidentState,
    ResolutionCode,
    Visibility,
)
from tocsin.incidents.store import load, load_to_act, parse_ref, record

MAX_DEPTH = 100  # parent chains deeper than this are refused rather than walked forever


def lifecycle_of(incident: Incident) -> Lifecycle:
    return Lifecycle(
        state=IncidentState(incident.state),
        hold_reason=incident.hold_reason,
        hold_note=incident.hold_note,
        resolution_code=incident.resolution_code,
        resolution_summary=incident.resolution_summary,
        duplicate_of=incident.duplicate_of_id,
        known_error_ref=incident.known_error_ref,
        cancel_reason=incident.cancel_reason,
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
        closed_at=incident.closed_at,
        cancelled_at=incident.cancelled_at,
        reopen_count=incident.reopen_count,
    )


def _store(incident: Incident, lc: Lifecycle) -> None:
    incident.state = lc.state
    incident.hold_reason, incident.hold_note = lc.hold_reason, lc.hold_note
    incident.resolution_code, incident.resolution_summary = lc.resolution_code, lc.resolution_summary
    incident.duplicate_of_id, incident.known_error_ref = lc.duplicate_of, lc.known_error_ref
    incident.cancel_reason = lc.cancel_reason
    incident.acknowledged_at, incident.resolved_at = lc.acknowledged_at, lc.resolved_at
    incident.closed_at, incident.cancelled_at = lc.closed_at, lc.cancelled_at
    incident.reopen_count = lc.reopen_count


def _describe(before: Lifecycle, after: Lifecycle, reason: str | None) -> tuple[EntryKind, str]:
    state = after.state
    if lifecycle.is_reopen(before.state, state):
        return EntryKind.reopened, f"Reopened (reopen {after.reopen_count})" + (
            f": {reason}" if reason else ""
        )
    if state == IncidentState.on_hold:
        why = str(after.hold_reason).replace("_", " ")
        return EntryKind.state_changed, f"On hold, {why}" + (
            f": {after.hold_note}" if after.hold_note else ""
        )
    if state == IncidentState.resolved:
        code = str(after.resolution_code).replace("_", " ")
        return EntryKind.state_changed, f"Resolved ({code}): {after.resolution_summary}"
    if state == IncidentState.cancelled:
        return EntryKind.state_changed, f"Cancelled: {after.cancel_reason}"
    if state == IncidentState.new and before.state == IncidentState.acknowledged:
        return EntryKind.state_changed, "Acknowledgement withdrawn" + (f": {reason}" if reason else "")
    return EntryKind.state_changed, f"State {before.state} -> {state}" + (f": {reason}" if reason else "")


def _apply(
    session: AsyncSession,
    actor: Actor,
    incident: Incident,
    move: Move,
    now: datetime,
    text: str | None = None,
) -> None:
    before = lifecycle_of(incident)
    after = lifecycle.apply(before, move, now=now)
    _store(incident, after)
    kind, described = _describe(before, after, move.reason)
    record(
        session,
        incident,
        actor,
        kind,
        text or described,
        now=now,
        action=f"transition.{move.target}",
        before=asdict(before),
        after=asdict(after),
        visibility=Visibility.stakeholder,
    )


async def transition(
    *,
    session: AsyncSession,
    actor: Actor,
    ref: str | int,
    target: IncidentState,
    reason: str | None = None,
    hold_reason: HoldReason | None = None,
    resolution_code: ResolutionCode | None = None,
    resolution_summary: str | None = None,
    duplicate_of: str | int | None = None,
    known_error_ref: str | None = None,
    now: datetime | None = None,
) -> Incident:
    """Move an incident to `target` (see lifecycle.TRANSITIONS); resolving it resolves its open children.

    Raises IllegalTransition (409, with the allowed targets) or Invalid naming what the target needs.
    Reusable by other domains with actor=SYSTEM (e.g. escalation acknowledging, alerts resolving).
    """
    now = now or utcnow()
    incident = (await load_to_act(session, actor, ref)).incident
    move = Move(
        target=IncidentState(target),
        reason=reason,
        hold_reason=hold_reason,
        resolution_code=resolution_code,
        resolution_summary=resolution_summary,
        duplicate_of=None if duplicate_of is None else _ref_id(duplicate_of, "duplicate_of"),
        known_error_ref=known_error_ref,
    )
    lifecycle.check(IncidentState(incident.state), move)
    if move.duplicate_of is not None:
        await _check_original(session, actor, incident, move.duplicate_of)
    _apply(session, actor, incident, move, now)
    if move.target == IncidentState.resolved:
        await _resolve_children(session, actor, incident, now)
    return incident


def _ref_id(ref: str | int, what: str) -> int:
    try:
        return parse_ref(ref)
    except NotFound as exc:
        raise Invalid(f"{what}: {exc.detail}") from None


async def _check_original(session: AsyncSession, actor: Actor, incident: Incident, original_id: int) -> None:
    if original_id == incident.id:
        raise Invalid("duplicate_of: an incident cannot duplicate itself; name the original incident")
    try:
        original = (await load(session, actor, original_id)).incident
    except NotFound as exc:
        raise Invalid(f"duplicate_of: {exc.detail}") from None
    if original.duplicate_of_id == incident.id:
        raise Conflict(
            f"{original.ref} is already marked a duplicate of {incident.ref}; one of them is the original"
        )


async def _resolve_children(session: AsyncSession, actor: Actor, parent: Incident, now: datetime) -> None:
    """Resolve every open descendant with the parent's resolution, one timeline entry on each."""
    queue = [parent]
    while queue:
        p = queue.pop()
        children = list(
            await session.scalars(
                select(Incident)
                .where(Incident.parent_id == p.id, Incident.state.in_(sorted(lifecycle.OPEN_STATES)))
                .order_by(Incident.id)
                .with_for_update()
            )
        )
        for child in children:
            code = p.resolution_code or ResolutionCode.solution_provided
            original = p.duplicate_of_id if p.duplicate_of_id != child.id else p.id
            move = Move(
                target=IncidentState.resolved,
                resolution_code=code,
                resolution_summary=f"Resolved with its parent {p.ref}: {p.resolution_summary}",
                duplicate_of=original if code == ResolutionCode.duplicate else None,
                known_error_ref=p.known_error_ref if code == ResolutionCode.known_error else None,
            )
            _apply(session, actor, child, move, now, text=f"Resolved with its parent {p.ref}")
            queue.append(child)
        if children:
            refs = ", ".join(c.ref for c in children)
            record(
                session,
                p,
                actor,
                EntryKind.state_changed,
                f"Resolved its open children: {refs}",
                now=now,
                action="children_resolved",
                after={"children": [c.id for c in children]},
            )


async def link_parent(
    session: AsyncSession, actor: Actor, incident: Incident, parent: str | int | None, now: datetime
) -> bool:
    """Make `parent` the incident's parent (None unlinks); refuses cycles. Returns whether it changed."""
    old = incident.parent_id
    parent_id = None if parent is None else _ref_id(parent, "parent")
    if parent_id == old:
        return False
    if parent_id is not None:
        if parent_id == incident.id:
            raise Invalid("parent: an incident cannot be its own parent")
        try:
            target = (await load(session, actor, parent_id)).incident
        except NotFound as exc:
            raise Invalid(f"parent: {exc.detail}") from None
        await _refuse_cycle(session, incident, target)
    incident.parent_id = parent_id
    text = f"Linked as a child of INC-{parent_id}" if parent_id else f"Unlinked from its parent INC-{old}"
    record(
        session,
        incident,
        actor,
        EntryKind.linked,
        text,
        now=now,
        action="parent",
        before={"parent_id": old},
        after={"parent_id": parent_id},
    )
    for other, verb in ((old, "no longer a child"), (parent_id, "linked as a child")):
        if other is not None:
            neighbour = await session.get(Incident, other)
            if neighbour is not None:
                record(
                    session,
                    neighbour,
                    actor,
                    EntryKind.linked,
                    f"{incident.ref} {verb} of this incident",
                    now=now,
                    action="child",
                    after={"child_id": incident.id, "linked": other == parent_id},
                )
    return True


async def _refuse_cycle(session: AsyncSession, child: Incident, parent: Incident) -> None:
    current: int | None = parent.parent_id
    for _ in range(MAX_DEPTH):
        if current is None:
            return
        if current == child.id:
            raise Conflict(
                f"linking {child.ref} under {parent.ref} would make a cycle: {parent.ref} already "
                f"descends from {child.ref}"
            )
        current = await session.scalar(select(Incident.parent_id).where(Incident.id == current))
    raise Conflict(f"{parent.ref} sits more than {MAX_DEPTH} levels deep; link to an incident higher up")


__all__ = ["lifecycle_of", "link_parent", "transition"]
