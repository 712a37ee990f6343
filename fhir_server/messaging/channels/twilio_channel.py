"""SMS and WhatsApp through Twilio's Messages API, with the ``twilio`` library.
https://www.twilio.com/docs/messaging/api/message-resource

One ``twilio.rest.Client`` per channel, shared by the worker threads (its requests session is
safe for concurrent sends). ``FHIR_TWILIO_API_BASE`` points the client's ``api`` domain
elsewhere (tests use a local server speaking the same API).

Errors: 429 and 5xx, timeouts and refused connections are transient; every other 4xx
(21211 invalid number, 21610 unsubscribed recipient, 20003 authentication) is permanent.
A read timeout is ambiguous (Twilio may have taken the message) and is retried like any
transient error: the Messages API takes no idempotency key."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import requests
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioException,
    TwilioRestException,
)
from twilio.http.http_client import TwilioHttpClient  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from fhir_server.messaging.channels.base import (
    OutgoingMessage,
    PermanentSendError,
    SendReceipt,
    TransientSendError,
)

WHATSAPP_PREFIX = "whatsapp:"
DELIVERED = frozenset({"delivered", "read"})

_http_logger = logging.getLogger("fhir_server.messaging.twilio_http")
"""The twilio library logs every request (with phone numbers) at INFO: kept to warnings."""
_http_logger.setLevel(logging.WARNING)


class TwilioChannel:
    """``sms`` (from ``TWILIO_FROM_NUMBER``) or ``whatsapp`` (from ``TWILIO_WHATSAPP_FROM``,
    both addresses prefixed ``whatsapp:``)."""

    def __init__(self, name: str, *, account_sid: str, auth_token: str, sender: str,
                 api_base: str | None = None, timeout: float = 30.0) -> None:
        self.name = name
        self._client = Client(account_sid, auth_token,
                              http_client=TwilioHttpClient(timeout=timeout, logger=_http_logger))
        if api_base:
            self._client.api.base_url = api_base.rstrip("/")
        self._from = self._wire(sender)

    def send(self, message: OutgoingMessage) -> SendReceipt:
        """Create the Message; its SID is the provider id and Twilio's callbacks follow."""
        options: dict[str, str] = {}
        if message.status_callback:
            options["status_callback"] = message.status_callback
        try:
            created = self._client.messages.create(
                to=self._wire(message.address), from_=self._from, body=message.body, **options)
        except TwilioRestException as exc:
            raise _send_error(exc) from exc
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientSendError(f"Twilio unreachable: {type(exc).__name__}") from exc
        except (requests.RequestException, TwilioException) as exc:
            raise TransientSendError(f"Twilio request failed: {exc}") from exc
        return SendReceipt(created.sid, "sent")

    def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None:
        """The Message to this address from our sender, sent after ``since``, with this body
        (Twilio lists by DateSent: a message still queued at Twilio has none, so ask only once
        the lease has run out, as the dispatcher does)."""
        after = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
        try:
            listed = self._client.messages.list(to=self._wire(message.address),
                                                from_=self._from, date_sent_after=after)
        except TwilioRestException as exc:
            raise _send_error(exc) from exc
        except (requests.RequestException, TwilioException) as exc:
            raise TransientSendError(f"Twilio unreachable: {type(exc).__name__}") from exc
        for found in listed:
            if found.body == message.body:
                state = "delivered" if found.status in DELIVERED else "sent"
                return SendReceipt(found.sid, state)
        return None

    def _wire(self, address: str) -> str:
        if self.name == "whatsapp" and not address.startswith(WHATSAPP_PREFIX):
            return WHATSAPP_PREFIX + address
        return address


def _send_error(exc: TwilioRestException) -> TransientSendError | PermanentSendError:
    """Twilio's answer as a send error naming the HTTP status and Twilio's error code."""
    code = f" error {exc.code}" if exc.code is not None else ""
    text = f"Twilio {exc.status}{code}: {exc.msg}".rstrip(": ")
    if exc.status == 429 or exc.status >= 500:
        return TransientSendError(text)
    return PermanentSendError(text)
