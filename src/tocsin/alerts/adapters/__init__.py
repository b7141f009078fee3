"""Intake formats as plugins: one module per format, one class per module, registered here by kind.

Adding a format means copying the closest sibling and adding one line to ADAPTERS. Heartbeats have no
payload to parse: a check-in is handled by the intake service directly.
"""

from __future__ import annotations

from collections.abc import Callable

from tocsin.alerts.adapters.alertmanager import AlertmanagerAdapter
from tocsin.alerts.adapters.base import Action, Adapter, AlertEvent, IntakeRequest, PayloadError
from tocsin.alerts.adapters.cloudevents import CloudEventsAdapter
from tocsin.alerts.adapters.email import EmailAdapter
from tocsin.alerts.adapters.generic import GenericAdapter
from tocsin.alerts.adapters.grafana import GrafanaAdapter
from tocsin.alerts.adapters.pagerduty import PagerDutyAdapter
from tocsin.alerts.models import IntegrationKind
from tocsin.alerts.options import Options

ADAPTERS: dict[IntegrationKind, Callable[[Options], Adapter]] = {
    IntegrationKind.alertmanager: AlertmanagerAdapter,
    IntegrationKind.grafana: GrafanaAdapter,
    IntegrationKind.pagerduty: PagerDutyAdapter,
    IntegrationKind.cloudevents: CloudEventsAdapter,
    IntegrationKind.generic: GenericAdapter,
    IntegrationKind.email: EmailAdapter,
}


def adapter_for(kind: IntegrationKind | str, options: Options) -> Adapter:
    """The adapter for an integration kind, configured with that integration's options."""
    return ADAPTERS[IntegrationKind(kind)](options)


__all__ = ["ADAPTERS", "Action", "Adapter", "AlertEvent", "IntakeRequest", "PayloadError", "adapter_for"]
