"""Which sender serves each channel (placeholder until the Twilio and SMTP senders land:
every channel records to the outbox)."""

from __future__ import annotations

import logging
from datetime import datetime

from fhir_server.messaging.channels.base import Channel, OutgoingMessage, SendReceipt
from fhir_server.settings import Settings
from terminology.messaging import CHANNELS

logger = logging.getLogger("fhir_server.messaging")


class _Outbox:
    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, message: OutgoingMessage) -> SendReceipt:
        logger.info("outbox %s message %s", self.name, message.idempotency_key)
        return SendReceipt(None, "sent")

    def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None:
        return None


def channels_from_settings(settings: Settings) -> dict[str, Channel]:
    return {name: _Outbox(name) for name in CHANNELS}
