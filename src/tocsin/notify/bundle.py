"""Bundling: many messages due to one destination at once become one message that lists them all.

The rules that keep this correct live in `claim.py`: a bundle forms only on a message's first attempt and
its membership is then fixed (members point at the leader through `bundled_into`), so a retry resends the
same content under the same idempotency key, and no message travels in two bundles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from tocsin.notify.channels import webhook
from tocsin.notify.channels.base import Message
from tocsin.notify.models import ChannelKind

WINDOW = timedelta(seconds=10)  # pending messages due this soon ride along with the one being sent
MAX_SIZE = 100  # per bundle; a bigger storm makes several bundles
_LINE = 200


def _line(message: Message) -> str:
    subject = message.subject if len(message.subject) <= _LINE else message.subject[: _LINE - 1] + "…"
    return f"• {subject}" + (f"\n  {message.link}" if message.link else "")


def compose(leader: Message, members: Sequence[Message]) -> Message:
    """The message to send for `leader` and the `members` bundled into it (the leader alone if none)."""
    if not members:
        return leader
    everything = [leader, *members]
    events = Counter(str(m.event) for m in everything)
    summary = ", ".join(f"{n} {event.replace('_', ' ')}" for event, n in events.most_common())
    subject = f"[Tocsin] {len(everything)} notifications ({summary})"
    body = f"{len(everything)} notifications arrived together:\n\n" + "\n".join(_line(m) for m in everything)
    payload = None
    if leader.channel == ChannelKind.webhook:
        payload = {
            "event": "bundle",
            "count": len(everything),
            "subject": subject,
            "messages": [webhook.document(m) for m in everything],
        }
    return replace(
        leader,
        idempotency_key=f"bundle:{leader.idempotency_key}",
        subject=subject,
        body=body,
        event="bundle",
        payload=payload,
        link=None,
        count=len(everything),
    )
