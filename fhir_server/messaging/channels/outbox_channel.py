"""The embedded default for every channel not listed in ``FHIR_MESSAGING_CHANNELS``: the
message is recorded (its row in ``message_deliveries`` and its Communication) and one log line
says so; nothing leaves the server, so the quick start needs no credentials.

``send`` answers ``sent`` with no provider id: the outbox accepted the message and nobody
will ever report it delivered (``delivered`` would be a claim about a recipient, and would
count in the delivery rate of ``$stats``). A status callback may still move it on, as for a
real provider. ``find_sent`` answers None: nothing went out, so sending again after a crash
cannot reach anyone twice; its only effect is the log line, written once more."""

from __future__ import annotations

import logging
from datetime import datetime

from fhir_server.messaging.channels.base import OutgoingMessage, SendReceipt

logger = logging.getLogger("fhir_server.messaging")


class OutboxChannel:
    """Records and logs (message key, channel, masked address; never the body)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, message: OutgoingMessage) -> SendReceipt:
        logger.info("outbox: %s message %s to %s recorded, not sent", self.name,
                    message.idempotency_key, mask_address(message.address))
        return SendReceipt(None, "sent")

    def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None:
        return None


def mask_address(address: str) -> str:
    """Enough of an address to tell messages apart in a log, not enough to reach anyone:
    ``+1617*****00``, ``a***@example.org``."""
    if "@" in address:
        local, domain = address.rsplit("@", 1)
        return f"{local[:1]}***@{domain}"
    if len(address) <= 6:
        return "*" * len(address)
    return address[:5] + "*" * (len(address) - 7) + address[-2:]
