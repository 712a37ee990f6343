"""What a channel sender is: ``send`` one message (synchronous, called in a worker thread) and,
after a crash between sending and recording, ``find_sent`` the provider's record of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    channel: str
    address: str
    body: str
    subject: str | None
    idempotency_key: str
    status_callback: str | None


@dataclass(frozen=True)
class SendReceipt:
    provider_message_id: str | None
    state: str


class SendError(Exception):
    """The message was not sent."""


class TransientSendError(SendError):
    """Try again later."""


class PermanentSendError(SendError):
    """Never try again."""


class CannotReconcile(Exception):
    """The channel cannot tell whether a message went out."""


class Channel(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> SendReceipt: ...

    def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None: ...
