"""The incident lifecycle: allowed moves, what each needs, and invariants no sequence of moves can break."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tocsin.errors import Conflict, Invalid
from tocsin.incidents import lifecycle
from tocsin.incidents.lifecycle import IllegalTransition, Lifecycle, Move
from tocsin.incidents.models import HoldReason, IncidentState, MajorStatus, ResolutionCode

S = IncidentState
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def complete(target: IncidentState, code: ResolutionCode = ResolutionCode.solution_provided) -> Move:
    """A move carrying exactly what `target` needs."""
    if target == S.on_hold:
        return Move(target, hold_reason=HoldReason.awaiting_vendor, reason="ticket 7 with the vendor")
    if target == S.resolved:
        return Move(
            target,
            resolution_code=code,
            resolution_summary="restarted the pool",
            duplicate_of=7 if code == ResolutionCode.duplicate else None,
            known_error_ref="KE-3" if code == ResolutionCode.known_error else None,
        )
    if target == S.cancelled:
        return Move(target, reason="not an incident")
    return Move(target)


def walk(*targets: IncidentState) -> Lifecycle:
    record = Lifecycle()
    for n, target in enumerate(targets):
        record = lifecycle.apply(record, complete(target), now=T0 + timedelta(minutes=n))
    return record


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_no_sequence_of_moves_reaches_an_inconsistent_record(data: st.DataObject) -> None:
    record, now, reopens = Lifecycle(), T0, 0
    for _ in range(data.draw(st.integers(0, 25), label="steps")):
        target = data.draw(st.sampled_from(list(S)), label="target")
        code = data.draw(st.sampled_from(list(ResolutionCode)), label="code")
        now += timedelta(seconds=data.draw(st.integers(0, 10_000), label="gap"))
        before = record
        if target not in lifecycle.allowed_targets(record.state):
            with pytest.raises(IllegalTransition) as refused:
                lifecycle.apply(record, complete(target, code), now=now)
            assert refused.value.extra["allowed"] == [str(s) for s in lifecycle.TRANSITIONS[record.state]]
            continue
        record = lifecycle.apply(record, complete(target, code), now=now)
        reopens += lifecycle.is_reopen(before.state, target)
        assert lifecycle.inconsistencies(record) == []
        assert record.reopen_count == reopens
        if target == S.closed:
            assert before.state == S.resolved
        if before.acknowledged_at is not None:
            assert record.acknowledged_at == before.acknowledged_at  # set once, never moved
        assert record.state not in lifecycle.FINAL_STATES or not lifecycle.allowed_targets(record.state)


def test_the_transition_table_matches_the_reference() -> None:
    assert set(lifecycle.allowed_targets(S.new)) == {
        S.acknowledged,
        S.in_progress,
        S.on_hold,
        S.resolved,
        S.cancelled,
    }
    assert set(lifecycle.allowed_targets(S.acknowledged)) == {
        S.new,  # acknowledgement withdrawn (timeout or hand-back)
        S.in_progress,
        S.on_hold,
        S.resolved,
        S.cancelled,
    }
    assert set(lifecycle.allowed_targets(S.in_progress)) == {S.on_hold, S.resolved, S.cancelled}
    assert set(lifecycle.allowed_targets(S.on_hold)) == {S.in_progress, S.resolved, S.cancelled}
    assert set(lifecycle.allowed_targets(S.resolved)) == {S.closed, S.in_progress}
    assert {S.closed, S.cancelled} == lifecycle.FINAL_STATES


def test_an_illegal_move_is_a_conflict_naming_the_allowed_targets() -> None:
    with pytest.raises(Conflict) as refused:
        lifecycle.apply(walk(S.in_progress), Move(S.acknowledged), now=T0)
    assert refused.value.extra["allowed"] == ["on_hold", "resolved", "cancelled"]
    assert "on_hold, resolved, cancelled" in refused.value.detail
    with pytest.raises(Conflict, match="closed is final"):
        lifecycle.apply(walk(S.resolved, S.closed), Move(S.in_progress), now=T0)


def test_moving_to_the_current_state_is_refused() -> None:
    with pytest.raises(IllegalTransition):
        lifecycle.apply(walk(S.in_progress), Move(S.in_progress), now=T0)


def test_resolving_needs_a_code_and_a_summary() -> None:
    with pytest.raises(Invalid) as refused:
        lifecycle.apply(walk(S.in_progress), Move(S.resolved), now=T0)
    assert "resolution_code" in refused.value.detail and "resolution_summary" in refused.value.detail
    with pytest.raises(Invalid, match="resolution_summary"):
        lifecycle.apply(
            walk(),
            Move(S.resolved, resolution_code=ResolutionCode.user_error, resolution_summary="   "),
            now=T0,
        )


def test_a_duplicate_names_its_original_and_a_known_error_its_reference() -> None:
    with pytest.raises(Invalid, match="duplicate_of"):
        lifecycle.apply(
            walk(),
            Move(
                S.resolved, resolution_code=ResolutionCode.duplicate, resolution_summary="same as the other"
            ),
            now=T0,
        )
    with pytest.raises(Invalid, match="known_error_ref"):
        lifecycle.apply(
            walk(),
            Move(S.resolved, resolution_code=ResolutionCode.known_error, resolution_summary="see KE"),
            now=T0,
        )
    done = lifecycle.apply(walk(), complete(S.resolved, ResolutionCode.duplicate), now=T0)
    assert done.duplicate_of == 7


def test_putting_on_hold_needs_a_reason_and_text_when_the_reason_is_other() -> None:
    with pytest.raises(Invalid, match="hold_reason"):
        lifecycle.apply(walk(S.in_progress), Move(S.on_hold), now=T0)
    with pytest.raises(Invalid, match="reason: describe"):
        lifecycle.apply(walk(S.in_progress), Move(S.on_hold, hold_reason=HoldReason.other), now=T0)
    held = lifecycle.apply(
        walk(S.in_progress), Move(S.on_hold, hold_reason=HoldReason.awaiting_caller), now=T0
    )
    assert held.hold_reason == HoldReason.awaiting_caller and held.hold_note is None
    resumed = lifecycle.apply(held, Move(S.in_progress), now=T0)
    assert resumed.hold_reason is None


def test_cancelling_needs_a_reason_and_may_name_the_original() -> None:
    with pytest.raises(Invalid, match="why the incident is cancelled"):
        lifecycle.apply(walk(), Move(S.cancelled), now=T0)
    cancelled = lifecycle.apply(walk(), Move(S.cancelled, reason="duplicate", duplicate_of=3), now=T0)
    assert cancelled.cancelled_at == T0 and cancelled.duplicate_of == 3


def test_details_the_target_does_not_take_are_refused() -> None:
    with pytest.raises(Invalid, match="hold_reason only goes with state on_hold"):
        lifecycle.apply(walk(), Move(S.acknowledged, hold_reason=HoldReason.other), now=T0)
    with pytest.raises(Invalid, match="duplicate_of only goes with"):
        lifecycle.apply(walk(), replace(complete(S.resolved), duplicate_of=4), now=T0)


def test_reopening_clears_the_resolution_and_counts() -> None:
    record = walk(S.in_progress, S.resolved)
    assert record.resolved_at is not None
    reopened = lifecycle.apply(record, Move(S.in_progress, reason="came back"), now=T0 + timedelta(hours=1))
    assert reopened.reopen_count == 1
    assert (
        reopened.resolved_at is None
        and reopened.resolution_code is None
        and reopened.resolution_summary is None
    )
    again = lifecycle.apply(
        lifecycle.apply(reopened, complete(S.resolved), now=T0 + timedelta(hours=2)),
        Move(S.in_progress),
        now=T0 + timedelta(hours=3),
    )
    assert again.reopen_count == 2


def test_acknowledged_at_is_stamped_by_the_first_working_state_only() -> None:
    acked = lifecycle.apply(Lifecycle(), Move(S.acknowledged), now=T0)
    assert acked.acknowledged_at == T0
    later = lifecycle.apply(acked, Move(S.in_progress), now=T0 + timedelta(minutes=5))
    assert later.acknowledged_at == T0
    # An alert that clears by itself was never acknowledged by anyone.
    auto = lifecycle.apply(Lifecycle(), complete(S.resolved), now=T0)
    assert auto.acknowledged_at is None and auto.resolved_at == T0


def test_the_major_flag_moves_propose_then_decide() -> None:
    lifecycle.check_major(MajorStatus.none, MajorStatus.proposed, "customers cannot pay")
    lifecycle.check_major(MajorStatus.proposed, MajorStatus.accepted, None)
    with pytest.raises(Invalid, match="reason"):
        lifecycle.check_major(MajorStatus.proposed, MajorStatus.rejected, " ")
    with pytest.raises(Conflict) as refused:
        lifecycle.check_major(MajorStatus.accepted, MajorStatus.proposed, "again")
    assert refused.value.extra["allowed"] == ["rejected"]


def test_withdrawing_an_acknowledgement_keeps_the_first_acknowledgement_time() -> None:
    t0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    acked = lifecycle.apply(lifecycle.Lifecycle(), lifecycle.Move(S.acknowledged), now=t0)
    back = lifecycle.apply(acked, lifecycle.Move(S.new), now=t0 + timedelta(minutes=30))
    assert back.state == S.new and back.acknowledged_at == t0
    assert lifecycle.inconsistencies(back) == []
