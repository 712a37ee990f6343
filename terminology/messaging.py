"""The PRM's messaging enums and FHIR codes: channels (``CommunicationRequest.medium``) and
priorities (``CommunicationRequest.priority``), both ways.

Channels travel as a coding in ``urn:prm:message-channel`` (sms | whatsapp | email | voice |
push), optionally beside the v3 ParticipationMode coding it refines; without one, a v3 code
maps as below (phone-like modes to voice). Priorities: routine <-> normal, urgent <-> high,
asap and stat -> urgent (urgent -> asap), low -> routine."""

from __future__ import annotations

from typing import Any

MESSAGE_CHANNEL = "urn:prm:message-channel"
V3_PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
REQUEST_PRIORITY = "http://hl7.org/fhir/request-priority"
CHANNELS = ("sms", "whatsapp", "email", "voice", "push")
V3_TO_CHANNEL = {"PHONE": "voice", "VERBAL": "voice", "VIDEOCONF": "voice",
                 "EMAILWRIT": "email", "ONLINEWRIT": "push"}
FHIR_TO_PRM_PRIORITY = {"routine": "normal", "urgent": "high", "asap": "urgent", "stat": "urgent"}
PRM_TO_FHIR_PRIORITY = {"low": "routine", "normal": "routine", "high": "urgent",
                        "urgent": "asap"}


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
