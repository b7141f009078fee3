"""Who may do what: a pure table from role to capabilities, and the Actor that carries them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from tocsin.auth.models import Role


class Can(StrEnum):
    manage_users = "manage_users"
    manage_teams = "manage_teams"
    manage_catalog = "manage_catalog"
    manage_config = "manage_config"  # incident types, priority matrix, SLA, routing
    report_incident = "report_incident"
    work_incidents = "work_incidents"  # acknowledge, assign, resolve... within team scope
    work_any_incident = "work_any_incident"  # regardless of team
    read_all = "read_all"  # every non-confidential record
    see_confidential = "see_confidential"
    read_audit = "read_audit"


GRANTS: dict[Role, frozenset[Can]] = {
    Role.admin: frozenset(Can),
    Role.manager: frozenset(
        {
            Can.manage_teams,
            Can.manage_catalog,
            Can.report_incident,
            Can.work_incidents,
            Can.work_any_incident,
            Can.read_all,
            Can.read_audit,
        }
    ),
    Role.responder: frozenset({Can.report_incident, Can.work_incidents, Can.read_all}),
    Role.reporter: frozenset({Can.report_incident}),
    Role.viewer: frozenset({Can.read_all}),
}


@dataclass(frozen=True)
class Actor:
    """The authenticated caller: a user (directly or through a token) or the system itself."""

    kind: str  # "user", "token", "system"
    user_id: int | None
    role: Role
    name: str
    team_ids: frozenset[int] = field(default_factory=frozenset)
    token_id: int | None = None
    via_session: bool = False

    def can(self, capability: Can) -> bool:
        return capability in GRANTS[self.role]

    @property
    def ref(self) -> str:
        """How the audit log and timelines name this actor."""
        if self.kind == "token":
            return f"token:{self.token_id}/user:{self.user_id}"
        if self.kind == "user":
            return f"user:{self.user_id}"
        return self.name

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin


SYSTEM = Actor(kind="system", user_id=None, role=Role.admin, name="system")
