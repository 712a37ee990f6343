"""Communication <-> ``outbound_notifications`` and CommunicationRequest <->
``notification_requests``, lossless. Columns own ``status`` (and a request's ``priority``);
the PRM columns (channel from ``medium``, PRM priority, patient, the request a message answers,
times) are derived on write; every other element is kept in ``remainder``."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from mappings.communication_search import (
    COMMUNICATION_REQUEST_SEARCH,
    COMMUNICATION_SEARCH,
    SEARCH_ONLY,
    instant,
    reference_rows,
    token_rows,
)
from mappings.elements import order_keys
from mappings.owned_columns import OwnedColumnsMapping
from mappings.search_rows import listed
from storage.row_set import RowSet
from terminology.messaging import FHIR_TO_PRM_PRIORITY, PRM_TO_FHIR_PRIORITY, channel_of

_PATIENT = re.compile(r"^Patient/([A-Za-z0-9\-.]{1,64})$")
_REQUEST = re.compile(r"^CommunicationRequest/([A-Za-z0-9\-.]{1,64})$")

COMMUNICATION_ORDER = (
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "identifier", "instantiatesCanonical", "instantiatesUri", "basedOn",
    "partOf", "inResponseTo", "status", "statusReason", "category", "priority", "medium",
    "subject", "topic", "about", "encounter", "sent", "received", "recipient", "sender",
    "reasonCode", "reasonReference", "payload", "note",
)
REQUEST_ORDER = (
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "identifier", "basedOn", "replaces", "groupIdentifier", "status",
    "statusReason", "category", "priority", "doNotPerform", "medium", "subject", "about",
    "encounter", "payload", "occurrenceDateTime", "occurrencePeriod", "authoredOn",
    "requester", "recipient", "sender", "reasonCode", "reasonReference", "note",
)


def _matched(pattern: re.Pattern[str], reference: Any) -> str | None:
    literal = (reference or {}).get("reference") if isinstance(reference, dict) else None
    match = pattern.match(literal) if isinstance(literal, str) else None
    return match.group(1) if match else None


def _common(resource: dict[str, Any]) -> dict[str, Any]:
    category = next((coding.get("code") for concept in listed(resource.get("category"))
                     for coding in (concept or {}).get("coding") or []), None)
    return {"channel": channel_of(listed(resource.get("medium"))),
            "category_code": category,
            "patient_id": _matched(_PATIENT, resource.get("subject")),
            "recipient_count": len(listed(resource.get("recipient")))}


def _communication_columns(resource: dict[str, Any]) -> dict[str, Any]:
    request_id = next((found for reference in listed(resource.get("basedOn"))
                       if (found := _matched(_REQUEST, reference))), None)
    return {**_common(resource), "request_id": request_id,
            "sent": instant(resource.get("sent")), "received": instant(resource.get("received"))}


def _request_columns(resource: dict[str, Any]) -> dict[str, Any]:
    period = resource.get("occurrencePeriod") or {}
    low = instant(resource.get("occurrenceDateTime")) or instant(period.get("start"))
    high = (instant(resource.get("occurrenceDateTime"), high=True)
            or instant(period.get("end"), high=True))
    if period and low is None and high is not None:
        low = instant("0001")
    if period and high is None and low is not None:
        high = instant("9999", high=True)
    return {**_common(resource),
            "prm_priority": FHIR_TO_PRM_PRIORITY.get(str(resource.get("priority"))),
            "occurrence_low": low, "occurrence_high": high,
            "authored_on": instant(resource.get("authoredOn"))}


def _children(resource: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {"tokens": token_rows(resource), "references": reference_rows(resource)}


class _Adapter:
    """An owned-columns mapping as the mapped repository uses it (no facts needed)."""

    def __init__(self, mapping: OwnedColumnsMapping, search: dict[str, Any]) -> None:
        self._mapping = mapping
        self.resource_type = mapping.resource_type
        self.search_parameters = search
        self.search_only = SEARCH_ONLY

    def to_rows(self, resource: dict[str, Any], *, resource_id: str, version_id: int,
                last_updated: datetime, facts: Any) -> RowSet:
        return self._mapping.to_rows(resource, resource_id=resource_id, version_id=version_id,
                                     last_updated=last_updated)

    def to_resource(self, rows: RowSet) -> dict[str, Any]:
        return self._mapping.to_resource(rows)


class _RequestAdapter(_Adapter):
    """A request row the PRM wrote with only its own priority reads back with the FHIR
    priority the ConceptMap gives (low and normal -> routine, high -> urgent, urgent ->
    asap)."""

    def to_resource(self, rows: RowSet) -> dict[str, Any]:
        resource = self._mapping.to_resource(rows)
        prm_priority = rows.main.get("prm_priority")
        if "priority" not in resource and prm_priority in PRM_TO_FHIR_PRIORITY:
            resource["priority"] = PRM_TO_FHIR_PRIORITY[prm_priority]
            resource = order_keys(resource, REQUEST_ORDER)
        return resource


COMMUNICATION = _Adapter(OwnedColumnsMapping(
    "Communication", COMMUNICATION_ORDER, {"status": "status"}, _communication_columns,
    _children), COMMUNICATION_SEARCH)
COMMUNICATION_REQUEST = _RequestAdapter(OwnedColumnsMapping(
    "CommunicationRequest", REQUEST_ORDER, {"status": "status", "priority": "priority"},
    _request_columns, _children), COMMUNICATION_REQUEST_SEARCH)
