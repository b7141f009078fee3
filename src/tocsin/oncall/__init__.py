"""On-call: rotations, schedules, overrides, escalation policies, who is on call."""
