"""What a CommunicationRequest asks to send, read from the resource (pure): the channel, a
literal text or a template with global variables, and the recipients with their own variables.

The template representation (declared in the CapabilityStatement and the README): a
``message-template`` extension (valueString, the template's name) on the request instead of a
``payload.contentString``; ``message-variable`` extensions (sub-extensions ``name`` and
``value``, both valueString) on the request give every recipient's variables, on a
``recipient`` Reference that recipient's own (they win over the global ones)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mappings.search_rows import listed
from terminology.messaging import (
    MESSAGE_TEMPLATE_EXTENSION,
    MESSAGE_VARIABLE_EXTENSION,
    channel_of,
)

_PATIENT = re.compile(r"^Patient/([A-Za-z0-9\-.]{1,64})$")


class OrderError(ValueError):
    """The request cannot be read as a send order; the message names the element."""


@dataclass(frozen=True)
class Recipient:
    index: int
    reference: dict[str, Any]
    patient_id: str | None
    contained: dict[str, Any] | None
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"recipient[{self.index}] ({self.reference.get('reference', 'no reference')})"


@dataclass(frozen=True)
class SendOrder:
    channel: str | None
    template_name: str | None
    literal_text: str | None
    variables: dict[str, str]
    recipients: list[Recipient]

    @property
    def is_send_order(self) -> bool:
        """Whether the request asks this server to send: it names a PRM channel (through
        ``medium``) or a message template. Other CommunicationRequests (a solicitation to an
        organisation, an order for another system) are records only."""
        return self.channel is not None or self.template_name is not None


def send_order(resource: dict[str, Any]) -> SendOrder:
    """The send order of a CommunicationRequest; OrderError names what cannot be read."""
    template_name = _template_name(resource)
    texts = [str(part["contentString"]) for part in listed(resource.get("payload"))
             if isinstance(part, dict) and isinstance(part.get("contentString"), str)]
    if template_name is not None and texts:
        raise OrderError("CommunicationRequest: give either payload.contentString or a "
                         f"{MESSAGE_TEMPLATE_EXTENSION} extension, not both")
    contained = {str(item["id"]): item for item in listed(resource.get("contained"))
                 if isinstance(item, dict) and item.get("id")}
    recipients = [_recipient(index, reference, contained)
                  for index, reference in enumerate(listed(resource.get("recipient")))]
    return SendOrder(
        channel=channel_of(listed(resource.get("medium"))),
        template_name=template_name,
        literal_text="\n".join(texts) if texts else None,
        variables=variables_of(resource.get("extension"), "CommunicationRequest"),
        recipients=recipients,
    )


def _template_name(resource: dict[str, Any]) -> str | None:
    names = [extension.get("valueString") for extension in listed(resource.get("extension"))
             if isinstance(extension, dict) and extension.get("url") == MESSAGE_TEMPLATE_EXTENSION]
    if len(names) > 1:
        raise OrderError(f"CommunicationRequest: more than one {MESSAGE_TEMPLATE_EXTENSION}")
    if names and not isinstance(names[0], str):
        raise OrderError(f"CommunicationRequest.extension({MESSAGE_TEMPLATE_EXTENSION}) needs "
                         "a valueString naming the template")
    return names[0] if names else None


def variables_of(extensions: Any, where: str) -> dict[str, str]:
    """The ``message-variable`` extensions among ``extensions`` as a name -> value map."""
    found: dict[str, str] = {}
    for extension in listed(extensions):
        if not isinstance(extension, dict) or extension.get("url") != MESSAGE_VARIABLE_EXTENSION:
            continue
        parts = {part.get("url"): part.get("valueString")
                 for part in listed(extension.get("extension")) if isinstance(part, dict)}
        name, value = parts.get("name"), parts.get("value")
        if not isinstance(name, str) or not isinstance(value, str):
            raise OrderError(f"{where}.extension({MESSAGE_VARIABLE_EXTENSION}) needs "
                             "sub-extensions name and value, both valueString")
        if name in found:
            raise OrderError(f"{where}: variable '{name}' is given twice")
        found[name] = value
    return found


def _recipient(index: int, reference: Any, contained: dict[str, dict[str, Any]]) -> Recipient:
    if not isinstance(reference, dict):
        raise OrderError(f"CommunicationRequest.recipient[{index}] is not a Reference")
    literal = reference.get("reference")
    match = _PATIENT.match(literal) if isinstance(literal, str) else None
    inline = (contained.get(literal[1:])
              if isinstance(literal, str) and literal.startswith("#") else None)
    return Recipient(index=index, reference=reference,
                     patient_id=match.group(1) if match else None, contained=inline,
                     variables=variables_of(reference.get("extension"),
                                            f"CommunicationRequest.recipient[{index}]"))
