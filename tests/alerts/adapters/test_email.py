"""Mail as alerts: subject, body, +tag keys and status prefixes."""

from __future__ import annotations

from email.message import EmailMessage

from tests.alerts.adapters.helpers import request
from tocsin.alerts.adapters.base import Action
from tocsin.alerts.adapters.email import EmailAdapter, plus_tag, split_subject
from tocsin.alerts.models import Severity
from tocsin.alerts.options import Options

adapter = EmailAdapter(Options(default_severity=Severity.error))


def mail(subject: str, body: str = "Disk /var is 99% full.") -> bytes:
    message = EmailMessage()
    message["From"] = "nagios@example.com"
    message["To"] = "key@tocsin.example"
    message["Subject"] = subject
    message["Date"] = "Fri, 01 Mar 2024 10:00:00 +0100"
    message.set_content(body)
    return message.as_bytes()


def test_subject_is_summary_body_is_details() -> None:
    [event] = adapter.parse(request(mail("PROBLEM: disk full on db1"), recipient="abc@tocsin.example"))
    assert event.summary == "disk full on db1"
    assert event.action is Action.trigger
    assert event.severity is Severity.error
    assert event.details["body"] == "Disk /var is 99% full."
    assert event.details["from"] == "nagios@example.com"
    assert event.source == "nagios@example.com"
    assert event.occurred_at is not None and event.occurred_at.hour == 9
    assert "Subject: PROBLEM" in event.raw["message"]


def test_the_recovery_mail_finds_the_problem_mails_alert_by_subject() -> None:
    [problem] = adapter.parse(request(mail("PROBLEM: Disk full on db1")))
    [recovery] = adapter.parse(request(mail("Re: [RESOLVED] disk full on  db1")))
    assert recovery.action is Action.resolve
    assert recovery.dedup_key == problem.dedup_key


def test_a_plus_tag_in_the_address_is_the_key() -> None:
    [event] = adapter.parse(request(mail("anything"), recipient="<abc+db1-disk@tocsin.example>"))
    assert event.dedup_key == "db1-disk"
    assert plus_tag("abc@x") == ""


def test_subject_prefixes() -> None:
    assert split_subject("ACK: load high") == (Action.acknowledge, "load high")
    assert split_subject("[OK] load high") == (Action.resolve, "load high")
    assert split_subject("Fwd: Re: load high") == (Action.trigger, "load high")
    assert split_subject("Server: load high") == (Action.trigger, "Server: load high")


def test_a_mail_without_subject_or_body_still_makes_an_alert() -> None:
    [event] = adapter.parse(request(b"From: x@example.com\r\n\r\n"))
    assert event.summary == "(no subject)"
    assert event.details["body"] == ""
