"""On-call operations: the one door the routes and other domains use.

Schedules and layers live in `schedules`, overrides in `overrides`, who-is-on-call queries in `queries`,
escalation policies in `policies`, which policy a service or team runs in `routing`, people an incident's
escalation acts on in `actions` (running it is `escalation`'s, on the timer engine), schedule warnings in
`reach`, calendar feeds in `feeds`; they are re-exported here. Every function takes keyword arguments with the
session as `session=`, never commits (the caller's unit of work does), and records each write in the audit
log. Writes need an admin, a manager or a manager of the owning team; a responder may add or remove overrides
for themselves on their own team's schedules (see `access`). For other domains: `who_is_on_call` (no
permission check, user None when nobody is on call), `get_policy` (pass SYSTEM) and `participants_of`.
"""

from __future__ import annotations

from tocsin.oncall.actions import EscalationState, escalate_now, escalation_state, reassign
from tocsin.oncall.checks import UNSET, Unset
from tocsin.oncall.feeds import (
    feed_window,
    ical_for_schedule,
    ical_for_user,
    issue_schedule_feed,
    issue_user_feed,
)
from tocsin.oncall.overrides import create_override, delete_override, list_overrides
from tocsin.oncall.policies import (
    StepSpec,
    Target,
    create_policy,
    delete_policy,
    get_policy,
    list_policies,
    update_policy,
)
from tocsin.oncall.queries import (
    LOOKAHEAD,
    MAX_SHIFT_SPAN,
    OnCall,
    Person,
    on_call,
    on_call_now,
    participants_of,
    shifts,
    who_is_on_call,
)
from tocsin.oncall.reach import ScheduleWarning, schedule_detail, schedule_warnings
from tocsin.oncall.routing import (
    Choice,
    choose,
    delete_service_escalation,
    delete_team_escalation,
    get_service_escalation,
    get_team_escalation,
    set_service_escalation,
    set_team_escalation,
)
from tocsin.oncall.schedules import (
    add_layer,
    create_schedule,
    delete_layer,
    delete_schedule,
    get_schedule,
    list_schedules,
    update_layer,
    update_schedule,
)

__all__ = [
    "LOOKAHEAD",
    "MAX_SHIFT_SPAN",
    "UNSET",
    "Choice",
    "EscalationState",
    "OnCall",
    "Person",
    "ScheduleWarning",
    "StepSpec",
    "Target",
    "Unset",
    "add_layer",
    "choose",
    "create_override",
    "create_policy",
    "create_schedule",
    "delete_layer",
    "delete_override",
    "delete_policy",
    "delete_schedule",
    "delete_service_escalation",
    "delete_team_escalation",
    "escalate_now",
    "escalation_state",
    "feed_window",
    "get_policy",
    "get_schedule",
    "get_service_escalation",
    "get_team_escalation",
    "ical_for_schedule",
    "ical_for_user",
    "issue_schedule_feed",
    "issue_user_feed",
    "list_overrides",
    "list_policies",
    "list_schedules",
    "on_call",
    "on_call_now",
    "participants_of",
    "reassign",
    "schedule_detail",
    "schedule_warnings",
    "set_service_escalation",
    "set_team_escalation",
    "shifts",
    "update_layer",
    "update_policy",
    "update_schedule",
    "who_is_on_call",
]
