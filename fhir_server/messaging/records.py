"""The Communication that records one message (pure): built at fan-out from the request and
the planned message, then moved on as the message is sent and delivered.

Delivery states and the Communication they give: queued -> preparation; sending ->
in-progress; sent -> completed (``sent`` set); delivered -> completed (``received`` set);
failed, undelivered, unsubscribed, cancelled -> not-done with a statusReason. The PRM state
itself is kept in the ``delivery-status`` extension."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_server.messaging.message_plan import PlannedMessage
from mappings.fhir_dates import format_instant
from mappings.search_rows import listed
from terminology.messaging import (
    DELIVERY_STATUS_EXTENSION,
    DELIVERY_TO_EVENT_STATUS,
    MESSAGE_KEY,
    MESSAGE_STATUS_REASON,
    MESSAGE_TEMPLATE_USED_EXTENSION,
    PROVIDER_MESSAGE_ID,
    STATUS_REASONS,
    channel_medium,
)

FHIR_STATUS = DELIVERY_TO_EVENT_STATUS
REASON_OF_STATE = {"failed": "failed", "undelivered": "undelivered",
                   "unsubscribed": "unsubscribed", "cancelled": "revoked"}
COPIED = ("category", "priority", "about", "encounter", "sender", "reasonCode",
          "reasonReference")


def new_communication(request: dict[str, Any], message: PlannedMessage, *, key: str,
                      template_name: str | None) -> dict[str, Any]:
    """The Communication of one recipient's message, as queued (or not-done when it cannot
    be sent)."""
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "identifier": [{"system": MESSAGE_KEY, "value": key}],
        "basedOn": [{"reference": f"CommunicationRequest/{request['id']}"}],
        "status": "preparation",
        **{name: request[name] for name in COPIED if name in request},
        "medium": [channel_medium(message.channel)],
        "recipient": [{key: value for key, value in message.recipient.reference.items()
                       if key != "extension"}],
    }
    if message.patient_id is not None:
        resource["subject"] = {"reference": f"Patient/{message.patient_id}"}
    elif "subject" in request:
        resource["subject"] = request["subject"]
    if message.recipient.contained is not None:
        resource["contained"] = [message.recipient.contained]
    if message.subject:
        resource["topic"] = {"text": message.subject}
    if message.body is not None:
        resource["payload"] = [{"contentString": message.body}]
    if template_name is not None:
        resource["extension"] = [{"url": MESSAGE_TEMPLATE_USED_EXTENSION,
                                  "valueString": template_name}]
    if message.sendable:
        return with_state(resource, "queued")
    state = "unsubscribed" if message.reason == "unsubscribed" else "failed"
    return with_reason(with_state(resource, state), str(message.reason), message.detail)


def with_state(resource: dict[str, Any], state: str, *, at: datetime | None = None,
               provider_id: str | None = None, detail: str | None = None) -> dict[str, Any]:
    """``resource`` moved to delivery ``state`` (``at`` is when it was sent or delivered)."""
    changed = dict(resource)
    changed["status"] = FHIR_STATUS[state]
    extensions = [extension for extension in listed(changed.get("extension"))
                  if extension.get("url") != DELIVERY_STATUS_EXTENSION]
    changed["extension"] = [*extensions, {"url": DELIVERY_STATUS_EXTENSION, "valueCode": state}]
    if at is not None and state == "sent":
        changed["sent"] = format_instant(at)
    if at is not None and state == "delivered":
        changed.setdefault("sent", format_instant(at))
        changed["received"] = format_instant(at)
    if provider_id is not None and not any(
            identifier.get("system") == PROVIDER_MESSAGE_ID
            for identifier in listed(changed.get("identifier"))):
        changed["identifier"] = [*listed(changed.get("identifier")),
                                 {"system": PROVIDER_MESSAGE_ID, "value": provider_id}]
    if state in REASON_OF_STATE:
        changed = with_reason(changed, REASON_OF_STATE[state], detail)
    return changed


def with_reason(resource: dict[str, Any], reason: str, detail: str | None) -> dict[str, Any]:
    """``resource`` not-done for ``reason`` (a ``STATUS_REASONS`` code)."""
    changed = dict(resource)
    changed["status"] = "not-done"
    changed["statusReason"] = {
        "coding": [{"system": MESSAGE_STATUS_REASON, "code": reason,
                    "display": STATUS_REASONS.get(reason, reason)}],
        **({"text": detail} if detail else {})}
    return changed



def completed_request(request: dict[str, Any]) -> dict[str, Any] | None:
    """The request marked completed once all its messages are done (only from active)."""
    return {**request, "status": "completed"} if request.get("status") == "active" else None
