"""Slack: an incoming-webhook POST of {"text": ..., "blocks"?: ...}."""

from __future__ import annotations

from typing import Any

from tocsin.config import Settings
from tocsin.notify.channels.base import Message, post_json


def escape(text: str) -> str:
    """Slack's three control characters; everything else in mrkdwn is literal enough."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def document(message: Message) -> dict[str, Any]:
    """The caller's payload (e.g. Block Kit blocks) if it gave one, with a `text` fallback for alerts."""
    text = f"*{escape(message.subject)}*\n{escape(message.body)}"
    if isinstance(message.payload, dict):
        return {"text": text} | message.payload
    return {"text": text}


class SlackChannel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def deliver(self, message: Message) -> None:
        await post_json(self.settings, message.target, document(message))
