"""Users, teams, roles, API tokens, sessions and permissions."""
