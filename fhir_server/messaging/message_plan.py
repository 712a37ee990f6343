"""One message per recipient of a send order (pure): its channel, address, subject and body, or
why it cannot be sent. The request check refuses orders with unusable recipients; the fan-out
records the same reasons as not-done Communications (things change between order and send)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_server.messaging.addresses import InvalidAddress, address_for, person_variables
from fhir_server.messaging.send_order import Recipient, SendOrder

REFUSED_AT_ORDER = frozenset({"invalid-address", "missing-variables", "unaddressable",
                              "unknown-patient"})
"""Reasons that make an active request invalid when it is written (4xx); ``no-address`` and
``unsubscribed`` only make that recipient's message not-done."""


@dataclass(frozen=True)
class TemplateText:
    name: str
    channel: str
    subject: str | None
    body: str


Renderer = Callable[[str, Mapping[str, str]], tuple[str, list[str]]]
"""(text, values) -> (rendered text, missing variable names)."""


@dataclass(frozen=True)
class PlannedMessage:
    recipient: Recipient
    channel: str
    patient_id: str | None
    address: str | None = None
    subject: str | None = None
    body: str | None = None
    reason: str | None = None
    detail: str | None = None

    @property
    def sendable(self) -> bool:
        return self.reason is None


class PlanError(ValueError):
    """The order as a whole cannot be planned (no channel, template for another channel)."""


def order_channel(order: SendOrder, template: TemplateText | None) -> str:
    """The channel the order sends on: its medium, else its template's."""
    if order.channel and template and template.channel != order.channel:
        raise PlanError(f"template '{template.name}' is for {template.channel}, but the "
                        f"request's medium asks for {order.channel}")
    channel = order.channel or (template.channel if template else None)
    if channel is None:
        raise PlanError("CommunicationRequest.medium: no channel (urn:prm:message-channel "
                        "sms | whatsapp | email | voice | push, or a v3 ParticipationMode)")
    return channel


def plan_messages(order: SendOrder, *, template: TemplateText | None,
                  people: Mapping[int, dict[str, Any] | None], opted_out: set[tuple[str, str]],
                  region: str, render: Renderer) -> list[PlannedMessage]:
    """A message per recipient. ``people`` maps recipient index -> the person (Patient or
    contained resource) or None when it is not known; ``opted_out`` holds (patient id,
    channel) pairs."""
    channel = order_channel(order, template)
    return [_plan_one(order, recipient, channel, template, people.get(recipient.index),
                      opted_out, region, render) for recipient in order.recipients]


def _plan_one(order: SendOrder, recipient: Recipient, channel: str,
              template: TemplateText | None, person: dict[str, Any] | None,
              opted_out: set[tuple[str, str]], region: str,
              render: Renderer) -> PlannedMessage:
    def refused(reason: str, detail: str) -> PlannedMessage:
        return PlannedMessage(recipient, channel, recipient.patient_id, reason=reason,
                              detail=f"{recipient.label}: {detail}")

    if person is None:
        if recipient.patient_id is not None:
            return refused("unknown-patient", "no such live Patient")
        return refused("unaddressable", "only Patients and contained resources with a "
                       "telecom can be messaged")
    try:
        address = address_for(channel, person, region=region)
    except InvalidAddress as exc:
        return refused("invalid-address", str(exc))
    if address is None:
        return refused("no-address", f"no {channel} address")
    if recipient.patient_id is not None and (recipient.patient_id, channel) in opted_out:
        return refused("unsubscribed", f"opted out of {channel}")
    if template is None:
        return PlannedMessage(recipient, channel, recipient.patient_id, address=address,
                              body=order.literal_text or "")
    values = {**person_variables(person), **order.variables, **recipient.variables}
    body, missing = render(template.body, values)
    subject, missing_in_subject = (render(template.subject, values) if template.subject
                                   else (None, []))
    missing = sorted(set(missing) | set(missing_in_subject))
    if missing:
        return refused("missing-variables", f"template '{template.name}' needs "
                       f"{', '.join(missing)}")
    return PlannedMessage(recipient, channel, recipient.patient_id, address=address,
                          subject=subject, body=body)
