"""Message templates: sandboxed Jinja, a default per event, edited overrides that can never break sending.

Templates see one context (`context()` builds it, filling every documented key so templates may rely on it):
  event, urgency, base_url, url (the incident's page), incident (id, ref, title, priority, state, service,
  summary), user (id, name: the recipient), actor (who acted, e.g. acknowledged), step (escalation step),
  sla (target, due_at), extra (anything else the caller passed).
Undefined names are errors (StrictUndefined), so a typo is refused when a template is saved rather than
rendered as an empty string in a page at 3 a.m.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2 import Template as JinjaTemplate
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from tocsin.notify.models import NotifyEvent

MAX_SUBJECT = 300
MAX_BODY = 20_000
_MAX_PRODUCT = 100_000  # longest string or list a template may build with * (a cheap memory bomb otherwise)


class _Sandbox(SandboxedEnvironment):
    """The Jinja sandbox plus a bound on `*` and `**`, which could otherwise exhaust memory or CPU."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            if isinstance(right, int) and abs(right) > 64:
                raise TemplateError(f"exponent {right} is too large (limit 64)")
            return operator.pow(left, right)
        result_size = _repeat_size(left, right)
        if result_size is not None and result_size > _MAX_PRODUCT:
            raise TemplateError(
                f"a repeated string or list would be {result_size} long (limit {_MAX_PRODUCT})"
            )
        return operator.mul(left, right)


def _repeat_size(left: Any, right: Any) -> int | None:
    if isinstance(left, str | list | tuple) and isinstance(right, int):
        return len(left) * right
    if isinstance(right, str | list | tuple) and isinstance(left, int):
        return len(right) * left
    return None


_TEXT = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_HTML = _Sandbox(undefined=StrictUndefined, autoescape=True)


@dataclass(frozen=True)
class Template:
    subject: str
    body: str


_LINK = "\n\nOpen the incident: {{ url }}"
_HEAD = "{{ incident.ref }}: {{ incident.title }}"
_FACTS = (
    "{% if incident.priority %}\nPriority: {{ incident.priority }}{% endif %}"
    "{% if incident.service %}\nService: {{ incident.service }}{% endif %}"
)

DEFAULTS: dict[NotifyEvent, Template] = {
    NotifyEvent.paged: Template(
        "[{{ incident.priority or 'Page' }}] " + _HEAD,
        "You are paged for "
        + _HEAD
        + _FACTS
        + "{% if incident.summary %}\n\n{{ incident.summary }}{% endif %}"
        + "\n\nAcknowledge it or hand it on: {{ url }}",
    ),
    NotifyEvent.acknowledged: Template(
        "Acknowledged: " + _HEAD,
        _HEAD + "\nwas acknowledged{% if actor %} by {{ actor }}{% endif %}." + _LINK,
    ),
    NotifyEvent.escalated: Template(
        "[{{ incident.priority or 'Page' }}] Escalated: " + _HEAD,
        _HEAD + "\nwas not acknowledged in time and is escalated to you"
        "{% if step %} (escalation step {{ step }}){% endif %}."
        + _FACTS
        + "\n\nAcknowledge it or hand it on: {{ url }}",
    ),
    NotifyEvent.sla_warning: Template(
        "SLA at risk: " + _HEAD,
        "The {{ sla.target or 'SLA' }} target of "
        + _HEAD
        + "\nis due {{ sla.due_at or 'soon' }}."
        + _FACTS
        + _LINK,
    ),
    NotifyEvent.sla_breached: Template(
        "SLA breached: " + _HEAD,
        "The {{ sla.target or 'SLA' }} target of "
        + _HEAD
        + "\nwas missed{% if sla.due_at %} (due {{ sla.due_at }}){% endif %}."
        + _FACTS
        + _LINK,
    ),
    NotifyEvent.resolved: Template(
        "Resolved: " + _HEAD,
        _HEAD + "\nwas resolved{% if actor %} by {{ actor }}{% endif %}." + _LINK,
    ),
    NotifyEvent.reminder: Template(
        "Reminder: " + _HEAD,
        "A status update for " + _HEAD + " is due." + _FACTS + _LINK,
    ),
    NotifyEvent.test: Template(
        "Tocsin test notification",
        "Hello {{ user.name or '' }},\n\nthis is a test from Tocsin. If you can read it, this contact method "
        "works and is now marked as verified.\n\n{{ base_url }}",
    ),
}

_HTML_LAYOUT = _HTML.from_string(
    '<!doctype html><html><body style="font-family:sans-serif">'
    '<h2>{{ subject }}</h2><pre style="white-space:pre-wrap;font-family:inherit">{{ body }}</pre>'
    '{% if link %}<p><a href="{{ link }}">Open in Tocsin</a></p>{% endif %}</body></html>'
)

_INCIDENT_KEYS = ("id", "ref", "title", "priority", "state", "service", "summary")


def context(values: Mapping[str, Any], *, event: NotifyEvent, base_url: str) -> dict[str, Any]:
    """The full template context from what a caller knows; the incident link is derived from its ref."""
    incident = {k: None for k in _INCIDENT_KEYS} | dict(values.get("incident") or {})
    if incident["ref"] is None and incident["id"] is not None:
        incident["ref"] = f"INC-{incident['id']}"
    base = base_url.rstrip("/")
    url = values.get("url") or (f"{base}/incidents/{incident['ref']}" if incident["ref"] else base)
    known = {"incident", "url", "user", "actor", "step", "sla", "urgency"}
    return {
        "event": str(event),
        "urgency": values.get("urgency"),
        "base_url": base,
        "url": url,
        "incident": incident,
        "user": {"id": None, "name": None} | dict(values.get("user") or {}),
        "actor": values.get("actor"),
        "step": values.get("step"),
        "sla": {"target": None, "due_at": None} | dict(values.get("sla") or {}),
        "extra": {k: v for k, v in values.items() if k not in known},
    }


SAMPLE = context(
    {
        "incident": {
            "id": 42,
            "title": "Checkout API returns 502",
            "priority": "P1",
            "state": "new",
            "service": "checkout",
            "summary": "Error rate above 20 %",
        },
        "user": {"id": 7, "name": "Ada Lovelace"},
        "actor": "Grace Hopper",
        "step": 2,
        "sla": {"target": "resolution", "due_at": "2030-01-01 12:00 UTC"},
        "urgency": "high",
    },
    event=NotifyEvent.paged,
    base_url="https://tocsin.example.com",
)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    error: str | None = None  # set when an edited template failed and the default was used instead


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> JinjaTemplate:
    """Compiling costs milliseconds, rendering microseconds: each distinct source is compiled once."""
    return _TEXT.from_string(source)


def _render(source: str, ctx: Mapping[str, Any]) -> str:
    return _compiled(source).render(ctx)


def one_line(text: str) -> str:
    """A subject as one line of bounded length (a newline in a mail header would be an injection)."""
    return " ".join(text.split())[:MAX_SUBJECT]


def render(
    event: NotifyEvent, ctx: Mapping[str, Any], *, subject: str | None = None, body: str | None = None
) -> Rendered:
    """Render an event's message; `subject`/`body` are edited overrides (None = default).

    An override that fails to render falls back to the default for that part and says why in `error`.
    The defaults only use keys `context()` always provides, so they do not fail.
    """
    default = DEFAULTS[event]
    errors: list[str] = []
    parts: list[str] = []
    for name, override, fallback in (("subject", subject, default.subject), ("body", body, default.body)):
        text = None
        if override is not None:
            try:
                text = _render(override, ctx)
            except Exception as exc:  # any failure of an edited template, never of the send
                errors.append(
                    f"custom {event} {name} template failed ({type(exc).__name__}: {exc}); "
                    "the built-in default was used"
                )
        parts.append(text if text is not None else _render(fallback, ctx))
    return Rendered(one_line(parts[0]), parts[1][:MAX_BODY], "; ".join(errors) or None)


def check(source: str) -> str | None:
    """Why an edited template is not acceptable (syntax, or rendering the sample context), or None."""
    try:
        _render(source, SAMPLE)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        return f"{type(exc).__name__}{where}: {exc}"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def html(subject: str, body: str, link: str | None) -> str:
    """The HTML alternative of an email: the text, escaped, with the link as a button."""
    safe_link = link if link and link.startswith(("https://", "http://")) else None
    return _HTML_LAYOUT.render(subject=subject, body=body, link=safe_link)


def default(event: NotifyEvent) -> Template:
    return DEFAULTS[event]
