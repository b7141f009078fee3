"""Templates: defaults for every event with a link, the sandbox, fallback from broken edits, validation."""

from __future__ import annotations

import pytest

from tocsin.notify import templates
from tocsin.notify.models import NotifyEvent

CTX = templates.context(
    {"incident": {"id": 12, "title": "VPN down", "priority": "P2"}, "actor": "Sam"},
    event=NotifyEvent.paged,
    base_url="https://tocsin.example.com/",
)


@pytest.mark.parametrize("event", [e for e in NotifyEvent if e != NotifyEvent.test])
def test_every_default_names_the_incident_and_links_to_it(event: NotifyEvent) -> None:
    rendered = templates.render(event, CTX)
    assert "INC-12" in rendered.subject and "VPN down" in rendered.subject
    assert "https://tocsin.example.com/incidents/INC-12" in rendered.body
    assert rendered.error is None


def test_defaults_render_with_only_an_incident_id() -> None:
    ctx = templates.context({"incident": {"id": 3}}, event=NotifyEvent.escalated, base_url="http://t")
    for event in NotifyEvent:
        assert templates.render(event, ctx).error is None


def test_a_broken_custom_template_falls_back_to_the_default_and_says_why() -> None:
    rendered = templates.render(
        NotifyEvent.paged, CTX, subject="{{ incident.nope }}", body="Custom {{ url }}"
    )
    assert rendered.subject == "[P2] INC-12: VPN down"
    assert rendered.body == "Custom https://tocsin.example.com/incidents/INC-12"
    assert rendered.error and "subject" in rendered.error and "nope" in rendered.error


def test_the_sandbox_refuses_python_internals_and_memory_bombs() -> None:
    assert "unsafe" in (templates.check("{{ ''.__class__.__mro__[1].__subclasses__() }}") or "")
    assert "too large" in (templates.check("{{ 10 ** 100000 }}") or "")
    assert "limit" in (templates.check("{{ 'x' * 10000000 }}") or "")
    assert templates.check("{{ 'ab' * 3 }} {{ 2 ** 8 }}") is None


def test_validation_names_syntax_errors_and_unknown_names() -> None:
    assert "TemplateSyntaxError (line 2)" in (templates.check("ok\n{% if %}") or "")
    assert "'incidnet' is undefined" in (templates.check("{{ incidnet.ref }}") or "")
    assert templates.check("{{ incident.ref }} {{ user.name }} {{ sla.due_at }} {{ extra }}") is None


def test_a_subject_is_one_line_and_the_html_part_is_escaped() -> None:
    rendered = templates.render(NotifyEvent.paged, CTX, subject="a\r\nBcc: x@evil.test")
    assert rendered.subject == "a Bcc: x@evil.test"
    html = templates.html("<b>", "x < y & z", "javascript:alert(1)")
    assert "&lt;b&gt;" in html and "x &lt; y &amp; z" in html and "javascript" not in html
