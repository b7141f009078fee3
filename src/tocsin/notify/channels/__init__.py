"""Channel plugins, registered by kind: copy the closest sibling to add one (SMS and voice come later)."""

from __future__ import annotations

from collections.abc import Callable

from tocsin.config import Settings
from tocsin.notify.channels.base import Channel, DeliveryError, Message
from tocsin.notify.channels.email import EmailChannel
from tocsin.notify.channels.slack import SlackChannel
from tocsin.notify.channels.teams import TeamsChannel
from tocsin.notify.channels.webhook import WebhookChannel
from tocsin.notify.models import ChannelKind

REGISTRY: dict[ChannelKind, Callable[[Settings], Channel]] = {
    ChannelKind.email: EmailChannel,
    ChannelKind.slack: SlackChannel,
    ChannelKind.teams: TeamsChannel,
    ChannelKind.webhook: WebhookChannel,
}


def for_kind(kind: ChannelKind, settings: Settings) -> Channel:
    return REGISTRY[ChannelKind(kind)](settings)


__all__ = ["REGISTRY", "Channel", "DeliveryError", "Message", "for_kind"]
