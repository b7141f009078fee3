"""The web UI: server-rendered pages (Jinja2 + htmx), login, forms with CSRF."""
