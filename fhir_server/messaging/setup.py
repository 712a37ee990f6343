"""Builds the Communication and CommunicationRequest repositories over the messaging tables;
writes referring to a merged patient are refused like every other type's."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.interactions.repository import ResourceRepository
from fhir_server.merging.guard import MergedInto, refuse_merged_references
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


def messaging_repositories(engine: AsyncEngine, catalog: SearchCatalog, context: MappingContext,
                           merged_into: MergedInto) -> dict[str, ResourceRepository]:
    async def guard(resource: dict[str, Any]) -> None:
        await refuse_merged_references(resource, merged_into)

    def mapped(rows: TableRows, mapping: Any) -> MappedRepository:
        return MappedRepository(engine, rows, mapping, catalog, phone_region=context.phone_region,
                                cipher=context.cipher, before_write=guard)

    return {
        "CommunicationRequest": mapped(
            TableRows(engine, notification_requests, NOTIFICATION_REQUEST_CHILD_TABLES),
            COMMUNICATION_REQUEST),
        "Communication": mapped(
            TableRows(engine, outbound_notifications, OUTBOUND_NOTIFICATION_CHILD_TABLES),
            COMMUNICATION),
    }
