"""Alert intake: adapters, de-duplication, routing, grouping, noise control, heartbeats."""
