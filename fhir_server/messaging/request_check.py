"""Checks a CommunicationRequest before it is written: at most the configured number of
recipients (400 naming the limit) and, for an active request that names a PRM channel or a
template (others are records, never sent), that it can be sent as asked:
a channel, a literal text or a known active template whose variables every recipient has,
and a usable address for every recipient (422 naming each problem); then the client's send
rate limit is charged its recipients (429 when over it)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fhir_server.errors import InvalidRequest, Issue, UnprocessableEntity
from fhir_server.messaging.message_plan import (
    REFUSED_AT_ORDER,
    PlanError,
    Renderer,
    TemplateText,
    plan_messages,
)
from fhir_server.messaging.send_order import OrderError, SendOrder, send_order
from fhir_server.messaging.send_throttle import SendThrottle
from mappings.search_rows import listed

TemplateLookup = Callable[[str], Awaitable[TemplateText | None]]
"""The active template of this name, or None."""

PatientLookup = Callable[[list[str]], Awaitable[list[dict[str, Any]]]]
"""The live Patients among these ids."""

SHOWN_PROBLEMS = 20


async def people_of(order: SendOrder, patients: PatientLookup) -> dict[int, dict[str, Any] | None]:
    """The person behind each recipient (by index): a live Patient, a contained resource, or
    None."""
    wanted = sorted({recipient.patient_id for recipient in order.recipients
                     if recipient.patient_id is not None})
    found = {patient["id"]: patient for patient in await patients(wanted)} if wanted else {}
    return {recipient.index: (found.get(recipient.patient_id) if recipient.patient_id
                              else recipient.contained)
            for recipient in order.recipients}


class RequestCheck:
    def __init__(self, *, templates: TemplateLookup, patients: PatientLookup, region: str,
                 max_recipients: int, render: Renderer,
                 throttle: SendThrottle | None = None) -> None:
        self._templates = templates
        self._patients = patients
        self._region = region
        self._max_recipients = max_recipients
        self._render = render
        self._throttle = throttle

    async def __call__(self, resource: dict[str, Any]) -> None:
        count = len(listed(resource.get("recipient")))
        if count > self._max_recipients:
            raise InvalidRequest(
                f"CommunicationRequest.recipient: {count} recipients, at most "
                f"{self._max_recipients} per request (FHIR_MESSAGING_MAX_RECIPIENTS)",
                issues=[Issue(f"{count} recipients; the limit is {self._max_recipients}",
                              code="too-long", expression=("CommunicationRequest.recipient",))])
        if resource.get("status") != "active":
            return
        try:
            order = send_order(resource)
        except OrderError as exc:
            raise UnprocessableEntity(str(exc)) from None
        if not order.is_send_order:
            return
        if not order.recipients:
            raise UnprocessableEntity("CommunicationRequest.recipient: an active request needs "
                                      "at least one recipient")
        template = None
        if order.template_name is not None:
            template = await self._templates(order.template_name)
            if template is None:
                raise UnprocessableEntity(
                    f"CommunicationRequest: no active message template named "
                    f"'{order.template_name}'")
        elif order.literal_text is None:
            raise UnprocessableEntity("CommunicationRequest.payload: an active request needs "
                                      "a payload.contentString or a message-template extension")
        try:
            plan = plan_messages(order, template=template,
                                 people=await people_of(order, self._patients),
                                 opted_out=set(), region=self._region, render=self._render)
        except PlanError as exc:
            raise UnprocessableEntity(str(exc)) from None
        problems = [message for message in plan if message.reason in REFUSED_AT_ORDER]
        if problems:
            shown = problems[:SHOWN_PROBLEMS]
            more = (f" (and {len(problems) - len(shown)} more)"
                    if len(problems) > len(shown) else "")
            raise UnprocessableEntity(
                f"CommunicationRequest cannot be sent: {problems[0].detail}{more}",
                issues=[Issue(str(message.detail), code="business-rule",
                              expression=(f"CommunicationRequest.recipient[{message.recipient.index}]",))
                        for message in shown])
        if self._throttle is not None:
            self._throttle.charge(len(order.recipients))
