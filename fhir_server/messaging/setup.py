"""Builds the messaging side of the app: the Communication and CommunicationRequest
repositories over the messaging tables (writes referring to a merged patient are refused like
every other type's; a request is checked before it is written and wakes the dispatcher after),
and the dispatcher with its channels."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.interactions.repository import ResourceRepository
from fhir_server.merging.guard import MergedInto, refuse_merged_references
from fhir_server.messaging.channels.base import Channel
from fhir_server.messaging.delivery import Deliverer, DeliveryPolicy
from fhir_server.messaging.dispatcher import Clock, Dispatcher
from fhir_server.messaging.fan_out import FanOut
from fhir_server.messaging.message_plan import TemplateText
from fhir_server.messaging.request_check import PatientLookup, RequestCheck
from fhir_server.messaging.send_throttle import SendThrottle
from fhir_server.messaging.templates import render_text
from fhir_server.settings import Settings
from mappings.communication import COMMUNICATION, COMMUNICATION_REQUEST
from mappings.patient import MappingContext
from storage.mapped_repository import MappedRepository
from storage.messaging_tables import (
    NOTIFICATION_REQUEST_CHILD_TABLES,
    OUTBOUND_NOTIFICATION_CHILD_TABLES,
    notification_requests,
    outbound_notifications,
)
from storage.resource_rows import TableRows
from storage.search_pages import SearchCatalog
from storage.template_store import TemplateStore

STATUS_CALLBACK_PATH = "/messaging/twilio/status"
INBOUND_PATH = "/messaging/twilio/inbound"


def template_lookup(templates: TemplateStore) -> Callable[[str], Any]:
    async def lookup(name: str) -> TemplateText | None:
        found = await templates.active_template(name)
        if found is None:
            return None
        return TemplateText(found.name, found.channel, found.subject, found.body)
    return lookup


def request_check(settings: Settings, templates: TemplateStore,
                  patients: PatientLookup) -> RequestCheck:
    return RequestCheck(templates=template_lookup(templates), patients=patients,
                        region=settings.phone_default_region,
                        max_recipients=settings.messaging_max_recipients, render=render_text,
                        throttle=SendThrottle(settings.send_rate_limit))


def messaging_repositories(engine: AsyncEngine, catalog: SearchCatalog, context: MappingContext,
                           merged_into: MergedInto, *, check: RequestCheck,
                           wake: Callable[[], None]) -> dict[str, ResourceRepository]:
    async def guard(resource: dict[str, Any]) -> None:
        await refuse_merged_references(resource, merged_into)

    async def guard_request(resource: dict[str, Any]) -> None:
        await check(resource)
        await guard(resource)

    return {
        "CommunicationRequest": MappedRepository(
            engine, TableRows(engine, notification_requests, NOTIFICATION_REQUEST_CHILD_TABLES),
            COMMUNICATION_REQUEST, catalog, phone_region=context.phone_region,
            cipher=context.cipher, before_write=guard_request, after_write=wake),
        "Communication": MappedRepository(
            engine, TableRows(engine, outbound_notifications, OUTBOUND_NOTIFICATION_CHILD_TABLES),
            COMMUNICATION, catalog, phone_region=context.phone_region, cipher=context.cipher,
            before_write=guard),
    }


def status_callback_url(settings: Settings) -> Callable[[str, str], str | None]:
    """The URL Twilio should post a message's status to (None without a public base URL)."""
    root = (settings.base_url or "").rstrip("/").removesuffix("/fhir")

    def url(channel: str, key: str) -> str | None:
        if not root or channel not in ("sms", "whatsapp"):
            return None
        return f"{root}{STATUS_CALLBACK_PATH}?key={key}"
    return url


def build_dispatcher(settings: Settings, engine: AsyncEngine, *, templates: TemplateStore,
                     patients: PatientLookup, channels: dict[str, Channel],
                     clock: Clock) -> Dispatcher:
    worker = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    policy = DeliveryPolicy(lease=timedelta(seconds=settings.messaging_lease_seconds),
                            max_attempts=settings.messaging_max_attempts,
                            retry_base=timedelta(seconds=settings.messaging_retry_seconds),
                            concurrency=settings.messaging_send_concurrency)
    return Dispatcher(
        engine,
        fan_out=FanOut(engine, templates=template_lookup(templates), patients=patients,
                       region=settings.phone_default_region, render=render_text),
        deliverer=Deliverer(engine, channels=channels, policy=policy, worker=worker,
                            status_callback=status_callback_url(settings)),
        clock=clock, poll_seconds=settings.messaging_poll_seconds)
