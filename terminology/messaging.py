"""The PRM's messaging enums and FHIR codes: channels (``CommunicationRequest.medium``) and
priorities (``CommunicationRequest.priority``), both ways, through the shipped ConceptMaps
``conceptmap-prm-message-channel.json`` and ``conceptmap-prm-message-priority.json``.

Channels travel as a coding in ``urn:prm:message-channel`` (sms | whatsapp | email | voice |
push), optionally beside the v3 ParticipationMode coding it refines; without one, a v3 code
maps as the channel map says (phone-like modes to voice). Priorities: routine <-> normal,
urgent <-> high, asap and stat -> urgent (urgent -> asap), low -> routine. Delivery states give
the Communication.status of ``conceptmap-prm-message-delivery-status.json``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import orjson

MESSAGE_CHANNEL = "urn:prm:message-channel"
V3_PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
REQUEST_PRIORITY = "http://hl7.org/fhir/request-priority"
CHANNELS = ("sms", "whatsapp", "email", "voice", "push")
PRM_PRIORITY = "urn:prm:message-priority"


@cache
def concept_map(name: str) -> dict[str, Any]:
    """A shipped ConceptMap (``channel``, ``priority`` or ``delivery-status``) as JSON."""
    path = Path(__file__).with_name(f"conceptmap-prm-message-{name}.json")
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def _translation(name: str, source: str) -> dict[str, str]:
    """source code -> target code of the ConceptMap group from ``source``."""
    [group] = [group for group in concept_map(name)["group"] if group["source"] == source]
    return {element["code"]: element["target"][0]["code"] for element in group["element"]}


V3_TO_CHANNEL = _translation("channel", V3_PARTICIPATION_MODE)
DELIVERY_TO_EVENT_STATUS = _translation("delivery-status", "urn:prm:message-delivery-status")
"""The Communication.status of a message in each PRM delivery state."""
CHANNEL_TO_V3 = _translation("channel", MESSAGE_CHANNEL)
FHIR_TO_PRM_PRIORITY = _translation("priority", REQUEST_PRIORITY)
PRM_TO_FHIR_PRIORITY = _translation("priority", PRM_PRIORITY)


def channel_medium(channel: str) -> dict[str, Any]:
    """The medium CodeableConcept of a channel: the PRM coding and its v3 ParticipationMode."""
    return {"coding": [{"system": MESSAGE_CHANNEL, "code": channel},
                       {"system": V3_PARTICIPATION_MODE, "code": CHANNEL_TO_V3[channel]}]}


def channel_of(mediums: list[dict[str, Any]]) -> str | None:
    """The PRM channel a list of medium CodeableConcepts asks for (the first recognised)."""
    fallback = None
    for concept in mediums:
        for coding in (concept or {}).get("coding") or []:
            if coding.get("system") == MESSAGE_CHANNEL and coding.get("code") in CHANNELS:
                return str(coding["code"])
            if coding.get("system") == V3_PARTICIPATION_MODE and fallback is None:
                fallback = V3_TO_CHANNEL.get(str(coding.get("code")))
    return fallback


MESSAGE_TEMPLATE_EXTENSION = "urn:prm:fhir:StructureDefinition:message-template"
"""On CommunicationRequest: ``valueString`` names the template to render (instead of a
literal ``payload.contentString``)."""

MESSAGE_VARIABLE_EXTENSION = "urn:prm:fhir:StructureDefinition:message-variable"
"""A template variable (sub-extensions ``name`` valueString and ``value`` valueString): on the
CommunicationRequest for every recipient, on one ``recipient`` Reference for that one only."""

DELIVERY_STATUS_EXTENSION = "urn:prm:fhir:StructureDefinition:delivery-status"
"""On Communication: the PRM's delivery state (valueCode, ``DELIVERY_STATES``)."""

MESSAGE_TEMPLATE_USED_EXTENSION = "urn:prm:fhir:StructureDefinition:message-template-used"
"""On Communication: the template its payload was rendered from (valueString)."""

MESSAGE_STATUS_REASON = "urn:prm:message-status-reason"
"""Why a Communication is not-done: ``STATUS_REASONS``."""

MESSAGE_KEY = "urn:prm:message-key"
"""Communication.identifier: the idempotency key the message travels under."""

PROVIDER_MESSAGE_ID = "urn:prm:provider-message-id"
"""Communication.identifier: the provider's id of the message (a Twilio Message SID)."""

DELIVERY_STATES = ("queued", "sending", "sent", "delivered", "failed", "undelivered",
                   "unsubscribed", "cancelled")
STATUS_REASONS = {
    "unsubscribed": "The patient opted out of this channel",
    "no-address": "The recipient has no address for this channel",
    "failed": "The provider could not send the message",
    "undelivered": "The provider could not deliver the message",
    "revoked": "The request was revoked before the message was sent",
    "unknown-outcome": "A send was interrupted and the channel cannot tell whether it went "
                       "out; not re-sent to avoid a duplicate",
    "template-unavailable": "The template was deactivated or removed before sending",
    "missing-variables": "The template needs variables the request does not give",
}
