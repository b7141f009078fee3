"""The incident lifecycle as pure functions: which moves are allowed and what each one changes.

`apply()` takes the lifecycle slice of an incident and a requested move and returns the new slice; it never
reads the clock (the caller passes `now`) and never touches a database, so it is property-tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from tocsin.errors import Conflict, Invalid
from tocsin.incidents.models import HoldReason, IncidentState, MajorStatus, ResolutionCode

S = IncidentState

TRANSITIONS: dict[IncidentState, tuple[IncidentState, ...]] = {
    S.new: (S.acknowledged, S.in_progress, S.on_hold, S.resolved, S.cancelled),
    # Back to new is an acknowledgement withdrawn (an acknowledgement timeout, or a hand-back): escalation
    # resumes; acknowledged_at keeps the first acknowledgement, which is what MTTA measures.
    S.acknowledged: (S.new, S.in_progress, S.on_hold, S.resolved, S.cancelled),
    S.in_progress: (S.on_hold, S.resolved, S.cancelled),
    # Waiting on a caller who then says "it was not an incident" is a cancellation, not a resolution.
    S.on_hold: (S.in_progress, S.resolved, S.cancelled),
    S.resolved: (S.closed, S.in_progress),  # back to in_progress is a reopen
    S.closed: (),
    S.cancelled: (),
}
OPEN_STATES = frozenset({S.new, S.acknowledged, S.in_progress, S.on_hold})
FINAL_STATES = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
# Entering one of these means a person has taken the incident on: the first time stamps acknowledged_at.
WORKING_STATES = frozenset({S.acknowledged, S.in_progress, S.on_hold})


class IllegalTransition(Conflict):
    """The move is not allowed from the current state; `allowed` lists the states that are."""

    def __init__(self, current: IncidentState, target: IncidentState) -> None:
        allowed = [str(s) for s in TRANSITIONS[current]]
        options = ", ".join(allowed) if allowed else f"none: {current} is final"
        super().__init__(
            f"an incident cannot go from {current} to {target}; allowed from {current}: {options}",
            current=str(current),
            allowed=allowed,
        )
        self.current = current
        self.target = target


@dataclass(frozen=True)
class Lifecycle:
    """The part of an incident the lifecycle owns."""

    state: IncidentState = S.new
    hold_reason: HoldReason | None = None
    hold_note: str | None = None
    resolution_code: ResolutionCode | None = None
    resolution_summary: str | None = None
    duplicate_of: int | None = None
    known_error_ref: str | None = None
    cancel_reason: str | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    cancelled_at: datetime | None = None
    reopen_count: int = 0


@dataclass(frozen=True)
class Move:
    """A requested transition and the details its target needs."""

    target: IncidentState
    reason: str | None = None  # hold note, cancellation or reopen reason
    hold_reason: HoldReason | None = None
    resolution_code: ResolutionCode | None = None
    resolution_summary: str | None = None
    duplicate_of: int | None = None
    known_error_ref: str | None = None


def allowed_targets(state: IncidentState) -> tuple[IncidentState, ...]:
    return TRANSITIONS[state]


def is_reopen(current: IncidentState, target: IncidentState) -> bool:
    return current == S.resolved and target == S.in_progress


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _missing(move: Move) -> list[str]:
    """What the target state needs that the move does not carry, each as an instruction."""
    needs: list[str] = []
    if move.target == S.on_hold:
        if move.hold_reason is None:
            needs.append("hold_reason: say what the incident waits for (" + ", ".join(HoldReason) + ")")
        elif move.hold_reason == HoldReason.other and _blank(move.reason):
            needs.append("reason: describe what the incident waits for when hold_reason is other")
    elif move.target == S.resolved:
        if move.resolution_code is None:
            needs.append("resolution_code: one of " + ", ".join(ResolutionCode))
        if _blank(move.resolution_summary):
            needs.append("resolution_summary: say what was done")
        if move.resolution_code == ResolutionCode.duplicate and move.duplicate_of is None:
            needs.append("duplicate_of: name the original incident this one duplicates")
        if move.resolution_code == ResolutionCode.known_error and _blank(move.known_error_ref):
            needs.append("known_error_ref: link the known error")
    elif move.target == S.cancelled and _blank(move.reason):
        needs.append("reason: say why the incident is cancelled (e.g. duplicate, not an incident)")
    return needs


def _stray(move: Move) -> list[str]:
    """Details given that the target does not take; refused rather than silently dropped."""
    stray: list[str] = []
    if move.target != S.on_hold and move.hold_reason is not None:
        stray.append("hold_reason only goes with state on_hold")
    if move.target != S.resolved:
        if move.resolution_code is not None or move.resolution_summary is not None:
            stray.append("resolution_code and resolution_summary only go with state resolved")
        if move.known_error_ref is not None:
            stray.append("known_error_ref only goes with state resolved")
    if move.duplicate_of is not None and not (
        move.target == S.cancelled
        or (move.target == S.resolved and move.resolution_code == ResolutionCode.duplicate)
    ):
        stray.append("duplicate_of only goes with resolution_code duplicate or state cancelled")
    if move.known_error_ref is not None and move.resolution_code not in (None, ResolutionCode.known_error):
        stray.append("known_error_ref only goes with resolution_code known_error")
    return stray


def check(current: IncidentState, move: Move) -> None:
    """Raise IllegalTransition or Invalid (naming every missing or stray detail) unless `move` may happen."""
    if move.target not in TRANSITIONS[current]:
        raise IllegalTransition(current, move.target)
    problems = _missing(move) + _stray(move)
    if problems:
        raise Invalid(f"to move to {move.target}: " + "; ".join(problems), problems=problems)


def apply(record: Lifecycle, move: Move, *, now: datetime) -> Lifecycle:
    """The record after `move`, with its timestamps set from `now`; raises when the move is not allowed."""
    check(record.state, move)
    target = move.target
    new = replace(record, state=target, hold_reason=None, hold_note=None)
    if target in WORKING_STATES and new.acknowledged_at is None:
        new = replace(new, acknowledged_at=now)
    if target == S.on_hold:
        new = replace(new, hold_reason=move.hold_reason, hold_note=_text(move.reason))
    elif target == S.resolved:
        new = replace(
            new,
            resolved_at=now,
            resolution_code=move.resolution_code,
            resolution_summary=_text(move.resolution_summary),
            duplicate_of=move.duplicate_of,
            known_error_ref=_text(move.known_error_ref),
        )
    elif target == S.closed:
        new = replace(new, closed_at=now)
    elif target == S.cancelled:
        new = replace(new, cancelled_at=now, cancel_reason=_text(move.reason), duplicate_of=move.duplicate_of)
    if is_reopen(record.state, target):
        new = replace(
            new,
            reopen_count=record.reopen_count + 1,
            resolved_at=None,
            resolution_code=None,
            resolution_summary=None,
            duplicate_of=None,
            known_error_ref=None,
        )
    return new


def _text(value: str | None) -> str | None:
    return None if value is None else value.strip() or None


def inconsistencies(record: Lifecycle) -> list[str]:
    """Every rule the record breaks (empty when consistent): what the property tests hold the lifecycle to."""
    found: list[str] = []
    done = record.state in (S.resolved, S.closed)
    if done and (
        record.resolution_code is None or not record.resolution_summary or record.resolved_at is None
    ):
        found.append("resolved without code, summary or resolved_at")
    if not done and (record.resolved_at is not None or record.resolution_code is not None):
        found.append(f"{record.state} carries resolution details")
    if record.resolution_code == ResolutionCode.duplicate and record.duplicate_of is None:
        found.append("duplicate without the original")
    if record.resolution_code == ResolutionCode.known_error and not record.known_error_ref:
        found.append("known error without its reference")
    if (record.state == S.closed) != (record.closed_at is not None):
        found.append("closed_at does not match the state")
    if (record.state == S.cancelled) != (record.cancelled_at is not None):
        found.append("cancelled_at does not match the state")
    if (record.state == S.cancelled) != (record.cancel_reason is not None):
        found.append("cancel_reason does not match the state")
    if (record.state == S.on_hold) != (record.hold_reason is not None):
        found.append("hold_reason does not match the state")
    if record.state in WORKING_STATES and record.acknowledged_at is None:
        found.append(f"{record.state} without acknowledged_at")
    if record.acknowledged_at and record.resolved_at and record.acknowledged_at > record.resolved_at:
        found.append("acknowledged after resolved")
    if record.closed_at and record.resolved_at and record.closed_at < record.resolved_at:
        found.append("closed before resolved")
    return found


# --- major incident flag ---------------------------------------------------------------------------

M = MajorStatus
MAJOR_MOVES: dict[MajorStatus, tuple[MajorStatus, ...]] = {
    M.none: (M.proposed, M.accepted),  # accepted straight away = declared major by a manager or commander
    M.proposed: (M.accepted, M.rejected),
    M.accepted: (M.rejected,),  # downgraded
    M.rejected: (M.proposed, M.accepted),
}


def check_major(current: MajorStatus, target: MajorStatus, reason: str | None) -> None:
    """Raise unless the major flag may move from `current` to `target` with this reason."""
    allowed = MAJOR_MOVES[current]
    if target not in allowed:
        names = ", ".join(allowed)
        raise Conflict(
            f"the major flag cannot go from {current} to {target}; allowed from {current}: {names}",
            current=str(current),
            allowed=[str(s) for s in allowed],
        )
    if target in (M.proposed, M.rejected) and _blank(reason):
        raise Invalid(
            f"reason: say why the incident is {'proposed as' if target == M.proposed else 'not'} major"
        )
