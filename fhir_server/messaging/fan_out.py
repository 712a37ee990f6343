"""Fan-out: an active CommunicationRequest whose time has come becomes one Communication and
one queued outbox row per recipient, all in one transaction with the request's dispatch row
(whose primary key makes a second fan-out of the same request impossible, whichever worker
tries). A request that names neither a channel nor a template is a record the EHR keeps here,
not an order to this server: it is marked dispatched with no messages and left as it is. What is read first (the request, its people, template and opt-outs) is read outside
that transaction; the request's version is checked again inside it."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.messaging.message_plan import (
    PlanError,
    PlannedMessage,
    Renderer,
    TemplateText,
    plan_messages,
)
from fhir_server.messaging.message_records import COMMUNICATIONS, REQUESTS
from fhir_server.messaging.records import completed_request, new_communication
from fhir_server.messaging.request_check import PatientLookup, TemplateLookup, people_of
from fhir_server.messaging.send_order import OrderError, send_order
from storage.messaging_tables import notification_requests
from storage.opt_outs import opted_out
from storage.outbox import due_requests, queue_messages, record_dispatch
from storage.unit_of_work import reading

logger = logging.getLogger("fhir_server.messaging")


@dataclass(frozen=True)
class FanOutResult:
    request_id: str
    queued: int
    not_sent: int


class FanOut:
    def __init__(self, engine: AsyncEngine, *, templates: TemplateLookup,
                 patients: PatientLookup, region: str, render: Renderer) -> None:
        self._engine = engine
        self._templates = templates
        self._patients = patients
        self._region = region
        self._render = render

    async def due(self, now: datetime, limit: int = 50) -> list[str]:
        async with reading(self._engine) as connection:
            return await due_requests(connection, now=now, limit=limit)

    async def fan_out(self, request_id: str, now: datetime) -> FanOutResult | None:
        """Queue the request's messages; None when another worker did it or it changed."""
        async with reading(self._engine) as connection:
            current = await REQUESTS.current(connection, [request_id])
        if request_id not in current:
            return None
        version_id, request = current[request_id]
        template_name, messages = await self._plan(request)
        communications: list[tuple[str, dict[str, Any]]] = []
        deliveries: list[dict[str, Any]] = []
        for message in messages:
            communication_id, key = str(uuid.uuid4()), uuid.uuid4().hex
            communications.append((communication_id, new_communication(
                request, message, key=key, template_name=template_name)))
            if message.sendable:
                deliveries.append({
                    "communication_id": communication_id, "request_id": request_id,
                    "patient_id": message.patient_id, "channel": message.channel,
                    "address": message.address, "subject": message.subject,
                    "body": message.body or "", "template_name": template_name,
                    "state": "queued", "attempts": 0, "next_attempt_at": now,
                    "idempotency_key": key, "created_at": now})
        try:
            async with self._engine.begin() as connection:
                await record_dispatch(connection, request_id=request_id, version_id=version_id,
                                      now=now, count=len(messages), finished=not deliveries)
                still = await connection.execute(
                    select(notification_requests.c.version_id, notification_requests.c.status)
                    .where(notification_requests.c.id == request_id))
                if tuple(still.one()) != (version_id, "active"):
                    raise _Changed()
                await COMMUNICATIONS.insert(connection, communications, now=now)
                await queue_messages(connection, deliveries)
                if messages and not deliveries:  # every recipient refused: nothing to wait for
                    await REQUESTS.change(connection, [request_id], completed_request, now=now)
        except (IntegrityError, _Changed):
            return None
        logger.info("CommunicationRequest/%s fanned out: %d queued, %d not sendable",
                    request_id, len(deliveries), len(messages) - len(deliveries))
        return FanOutResult(request_id, len(deliveries), len(messages) - len(deliveries))

    async def _plan(self, request: dict[str, Any]) -> tuple[str | None, list[PlannedMessage]]:
        """The messages of the request as things stand now (unsendable ones with a reason)."""
        try:
            order = send_order(request)
        except OrderError as exc:
            logger.warning("CommunicationRequest/%s cannot be sent: %s", request.get("id"), exc)
            return None, []
        if not order.is_send_order:
            logger.info("CommunicationRequest/%s names no PRM channel or template: kept as a "
                        "record, not sent", request.get("id"))
            return None, []
        template: TemplateText | None = None
        if order.template_name is not None:
            template = await self._templates(order.template_name)
        people = await people_of(order, self._patients)
        if order.template_name is not None and template is None:
            return order.template_name, [_unsendable(order, recipient.index, "template-unavailable",
                                                     order.template_name) for recipient in
                                         order.recipients]
        patient_ids = [recipient.patient_id for recipient in order.recipients
                       if recipient.patient_id]
        try:
            channel = order.channel or (template.channel if template else None)
            async with reading(self._engine) as connection:
                refused = await opted_out(connection, patient_ids, channel or "")
            return order.template_name, plan_messages(
                order, template=template, people=people, opted_out=refused,
                region=self._region, render=self._render)
        except PlanError as exc:
            logger.warning("CommunicationRequest/%s cannot be sent: %s", request.get("id"), exc)
            return order.template_name, []


class _Changed(Exception):
    """The request changed between planning and writing: plan again on the next pass."""


def _unsendable(order: Any, index: int, reason: str, template_name: str) -> PlannedMessage:
    recipient = order.recipients[index]
    return PlannedMessage(recipient, order.channel or "sms", recipient.patient_id, reason=reason,
                          detail=f"{recipient.label}: template '{template_name}' is not active")

