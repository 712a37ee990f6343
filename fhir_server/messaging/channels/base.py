"""What a channel sender is: ``send`` one message (synchronous, called in a worker thread) and,
after a crash between sending and recording, ``find_sent`` the provider's record of it.

Errors::

    SendError                  the message was not sent
    +-- TransientSendError     try again later: 429, 5xx, SMTP 4xx, timeouts, refused connections
    +-- PermanentSendError     never try again: invalid address, other 4xx, SMTP 5xx, and
                               authentication failures (401/403, SMTP 535, a certificate that
                               does not verify): retrying cannot mend a configuration, and
                               failing at once puts the provider's code in front of the operator
    CannotReconcile            the channel cannot tell whether a message went out (SMTP)

Every error message names the provider's code (``Twilio 400 error 21211: ...``,
``SMTP 550: ...``) and never the message body."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to one address, as the dispatcher hands it to a channel."""

    channel: str
    """sms | whatsapp | email | voice | push"""
    address: str
    """E.164 phone number (sms, whatsapp, voice) or email address."""
    body: str
    subject: str | None
    idempotency_key: str
    """Stable per message (the email Message-ID's local part)."""
    status_callback: str | None
    """The URL Twilio posts delivery status to, or None."""


@dataclass(frozen=True)
class SendReceipt:
    """What the provider said: its id for the message, and ``sent`` (accepted by the
    provider, delivery to follow) or ``delivered`` (final)."""

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

    def send(self, message: OutgoingMessage) -> SendReceipt:
        """Hand ``message`` to the provider (blocking; thread-safe)."""
        ...

    def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None:
        """The provider's record of ``message`` sent after ``since``, None when it did not go
        out; raises CannotReconcile when the channel cannot know."""
        ...
