"""The served types a merge touches: how to find the live resources referring to a patient,
and how to turn a changed resource back into its rows (keeping what the rows know beyond the
resource: the MRN and merged-into of a patient, the blob of a Binary or document)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from fhir_server.errors import InvalidResource
from mappings import patient as patient_mapping
from mappings.binary import SEARCH_ONLY as BINARY_SEARCH_ONLY
from mappings.binary import BinaryContent, BinaryMapping
from mappings.communication import COMMUNICATION, COMMUNICATION_REQUEST
from mappings.communication_search import SEARCH_ONLY as MESSAGING_SEARCH_ONLY
from mappings.coverage import SEARCH_ONLY as COVERAGE_SEARCH_ONLY
from mappings.coverage import CoverageMapping
from mappings.document_reference import DocumentReferenceMapping
from mappings.document_reference_search import SEARCH_ONLY as DOCUMENT_SEARCH_ONLY
from mappings.patient import MappingContext, PatientRuleError
from mappings.patient_search import SEARCH_ONLY as PATIENT_SEARCH_ONLY
from storage.coverage_tables import PATIENT_INSURANCE_CHILD_TABLES, patient_insurances
from storage.media_tables import (
    BINARY_CHILD_TABLES,
    MEDIA_ASSET_CHILD_TABLES,
    binaries,
    media_assets,
)
from storage.messaging_tables import (
    NOTIFICATION_REQUEST_CHILD_TABLES,
    OUTBOUND_NOTIFICATION_CHILD_TABLES,
    notification_requests,
    outbound_notifications,
)
from storage.patient_rows import PATIENT_TABLES
from storage.resource_rows import TableSet
from storage.row_set import RowSet

ToRows = Callable[[dict[str, Any], int, datetime, RowSet], RowSet]
Referrers = Callable[[AsyncConnection, str], Awaitable[list[str]]]


@dataclass(frozen=True)
class Participant:
    resource_type: str
    tables: TableSet
    to_resource: Callable[[RowSet], dict[str, Any]]
    to_rows: ToRows
    search_only: frozenset[str]
    referrers: Referrers


def _by_reference_rows(tables: TableSet) -> Referrers:
    async def referrers(connection: AsyncConnection, patient_id: str) -> list[str]:
        refs = tables.children["references"]
        owner = refs.c[tables.owner]
        result = await connection.execute(
            select(owner).distinct().join(tables.main, tables.main.c.id == owner)
            .where(refs.c.target_type == "Patient", refs.c.target_id == patient_id,
                   tables.main.c.deleted_at.is_(None)).order_by(owner))
        return [row[0] for row in result]
    return referrers


async def _binary_referrers(connection: AsyncConnection, patient_id: str) -> list[str]:
    result = await connection.execute(
        select(binaries.c.id).where(binaries.c.security_context == f"Patient/{patient_id}",
                                    binaries.c.deleted_at.is_(None)).order_by(binaries.c.id))
    return [row[0] for row in result]


def participants(context: MappingContext) -> dict[str, Participant]:
    def patient_rows(resource: dict[str, Any], version: int, moment: datetime,
                     current: RowSet) -> RowSet:
        try:
            rows = patient_mapping.resource_to_rows(
                resource, resource_id=current.main["id"], version_id=version,
                last_updated=moment, mrn=current.main["mrn"], context=context)
        except PatientRuleError as exc:
            raise InvalidResource(str(exc), issues=exc.issues) from exc
        rows.main["merged_into_id"] = current.main["merged_into_id"]
        return rows

    documents = DocumentReferenceMapping()

    def document_rows(resource: dict[str, Any], version: int, moment: datetime,
                      current: RowSet) -> RowSet:
        binary_id, sha256 = current.main["binary_id"], current.main["sha256"]
        return documents.to_rows(resource, resource_id=current.main["id"], version_id=version,
                                 last_updated=moment,
                                 facts={binary_id: sha256} if binary_id and sha256 else {})

    binary_mapping = BinaryMapping()

    def binary_rows(resource: dict[str, Any], version: int, moment: datetime,
                    current: RowSet) -> RowSet:
        content = BinaryContent(current.main["sha256"], int(current.main["size"]))
        return binary_mapping.to_rows(resource, resource_id=current.main["id"],
                                      version_id=version, last_updated=moment, facts=content)

    def messaging_rows(mapping: Any) -> ToRows:
        def to_rows(resource: dict[str, Any], version: int, moment: datetime,
                    current: RowSet) -> RowSet:
            return mapping.to_rows(resource, resource_id=current.main["id"],  # type: ignore[no-any-return]
                                   version_id=version, last_updated=moment, facts=None)
        return to_rows

    coverage = CoverageMapping()
    coverage_tables = TableSet(patient_insurances, PATIENT_INSURANCE_CHILD_TABLES)
    request_tables = TableSet(notification_requests, NOTIFICATION_REQUEST_CHILD_TABLES)
    message_tables = TableSet(outbound_notifications, OUTBOUND_NOTIFICATION_CHILD_TABLES)
    document_tables = TableSet(media_assets, MEDIA_ASSET_CHILD_TABLES)
    return {
        "CommunicationRequest": Participant(
            "CommunicationRequest", request_tables, COMMUNICATION_REQUEST.to_resource,
            messaging_rows(COMMUNICATION_REQUEST), MESSAGING_SEARCH_ONLY,
            _by_reference_rows(request_tables)),
        "Communication": Participant(
            "Communication", message_tables, COMMUNICATION.to_resource,
            messaging_rows(COMMUNICATION), MESSAGING_SEARCH_ONLY,
            _by_reference_rows(message_tables)),
        "Patient": Participant(
            "Patient", PATIENT_TABLES,
            lambda rows: patient_mapping.rows_to_resource(rows, context), patient_rows,
            PATIENT_SEARCH_ONLY, _by_reference_rows(PATIENT_TABLES)),
        "DocumentReference": Participant(
            "DocumentReference", document_tables, documents.to_resource, document_rows,
            DOCUMENT_SEARCH_ONLY, _by_reference_rows(document_tables)),
        "Coverage": Participant(
            "Coverage", coverage_tables, coverage.to_resource, messaging_rows(coverage),
            COVERAGE_SEARCH_ONLY, _by_reference_rows(coverage_tables)),
        "Binary": Participant(
            "Binary", TableSet(binaries, BINARY_CHILD_TABLES), binary_mapping.to_resource,
            binary_rows, BINARY_SEARCH_ONLY, _binary_referrers),
    }
