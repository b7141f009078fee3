"""Building intake requests for adapter tests."""

from __future__ import annotations

import json
from typing import Any

from tocsin.alerts.adapters.base import IntakeRequest


def request(body: Any, headers: dict[str, str] | None = None, recipient: str = "") -> IntakeRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return IntakeRequest(raw, {k.lower(): v for k, v in (headers or {}).items()}, recipient)
