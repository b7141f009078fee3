"""Incident records: types, priority matrix, lifecycle, roles, notes and timeline."""
