"""Notifications: outbox, channels (email, Slack, Teams, webhook), contact rules, templates."""
