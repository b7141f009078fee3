"""Microsoft Teams: an Adaptive Card posted to a Teams incoming webhook or Workflows webhook URL."""

from __future__ import annotations

from typing import Any

from tocsin.config import Settings
from tocsin.notify.channels.base import DeliveryError, Message, post_json

CARD = "application/vnd.microsoft.card.adaptive"


def document(message: Message) -> dict[str, Any]:
    """The caller's payload if it gave a whole message; else a card with title, text and a link button."""
    if isinstance(message.payload, dict):
        return message.payload
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": message.subject,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            },
            {"type": "TextBlock", "text": message.body, "wrap": True},
        ],
    }
    if message.link and message.count == 1:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in Tocsin", "url": message.link}]
    return {"type": "message", "attachments": [{"contentType": CARD, "contentUrl": None, "content": card}]}


class TeamsChannel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def deliver(self, message: Message) -> None:
        reply = await post_json(self.settings, message.target, document(message))
        # Legacy Office 365 connectors answer 200 and put their own throttling error in the body.
        if "HTTP error 429" in reply.text:
            raise DeliveryError(f"Teams throttled the webhook: {reply.text[:200]}", permanent=False)
