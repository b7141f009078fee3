"""Stakeholder communication: updates, cadence reminders, status page."""
