"""Communication and CommunicationRequest search parameters (R4) and the search values both put
in their main columns and token and reference rows.
https://hl7.org/fhir/R4/communication.html#search, communicationrequest.html#search"""

from __future__ import annotations

from typing import Any

from mappings.document_reference_search import RELATED_TYPES, common_parameters
from mappings.fhir_dates import DateValueError, date_range
from mappings.search_backing import (
    CodeColumn,
    DateRange,
    ReferenceRows,
    SearchParameter,
    TokenRows,
)
from mappings.search_rows import ReferenceRows as ReferenceRowBuilder
from mappings.search_rows import TokenRows as TokenRowBuilder
from mappings.search_rows import listed

SENDER_TYPES = ("Practitioner", "Organization", "Device", "Patient", "HealthcareService",
                "PractitionerRole", "RelatedPerson")
RECIPIENT_TYPES = ("Practitioner", "Group", "Organization", "CareTeam", "Device", "Patient",
                   "HealthcareService", "PractitionerRole")
EVENT_STATUS = "http://hl7.org/fhir/event-status"
REQUEST_STATUS = "http://hl7.org/fhir/request-status"
PRIORITY = "http://hl7.org/fhir/request-priority"


def _token(doc: str, sort: str | None = None) -> SearchParameter:
    return SearchParameter("token", TokenRows(), sort, doc)


def _reference(targets: tuple[str, ...], doc: str) -> SearchParameter:
    return SearchParameter("reference", ReferenceRows(targets), None, doc)


def _shared(kind: str) -> dict[str, SearchParameter]:
    return {
        **common_parameters(),
        "based-on": _reference(RELATED_TYPES, f"{kind}.basedOn"),
        "category": _token(f"{kind}.category"),
        "encounter": _reference(("Encounter",), f"{kind}.encounter"),
        "identifier": SearchParameter("token", TokenRows(of_type=True), None, f"{kind}.identifier"),
        "medium": _token(f"{kind}.medium (the PRM channel: urn:prm:message-channel|sms, ...)",
                         "channel"),
        "patient": _reference(("Patient",), f"{kind}.subject where it is a Patient"),
        "recipient": _reference(RECIPIENT_TYPES, f"{kind}.recipient"),
        "sender": _reference(SENDER_TYPES, f"{kind}.sender"),
        "subject": _reference(("Group", "Patient"), f"{kind}.subject"),
    }


COMMUNICATION_SEARCH: dict[str, SearchParameter] = {
    **_shared("Communication"),
    "instantiates-canonical": _reference(
        ("Questionnaire", "Measure", "PlanDefinition", "OperationDefinition",
         "ActivityDefinition"), "Communication.instantiatesCanonical"),
    "instantiates-uri": SearchParameter("uri", TokenRows(), None,
                                        "Communication.instantiatesUri"),
    "part-of": _reference(RELATED_TYPES, "Communication.partOf"),
    "received": SearchParameter("date", DateRange("received", "received"), "received",
                                "Communication.received"),
    "sent": SearchParameter("date", DateRange("sent", "sent"), "sent", "Communication.sent"),
    "status": SearchParameter("token", CodeColumn("status", EVENT_STATUS), "status",
                              "Communication.status"),
}

COMMUNICATION_REQUEST_SEARCH: dict[str, SearchParameter] = {
    **_shared("CommunicationRequest"),
    "authored": SearchParameter("date", DateRange("authored_on", "authored_on"),
                                "authored_on", "CommunicationRequest.authoredOn"),
    "group-identifier": SearchParameter("token", TokenRows(of_type=True), None,
                                        "CommunicationRequest.groupIdentifier"),
    "occurrence": SearchParameter("date", DateRange("occurrence_low", "occurrence_high"),
                                  "occurrence_low", "CommunicationRequest.occurrence[x]"),
    "priority": SearchParameter("token", CodeColumn("priority", PRIORITY), "priority",
                                "CommunicationRequest.priority"),
    "replaces": _reference(("CommunicationRequest",), "CommunicationRequest.replaces"),
    "requester": _reference(SENDER_TYPES, "CommunicationRequest.requester"),
    "status": SearchParameter("token", CodeColumn("status", REQUEST_STATUS), "status",
                              "CommunicationRequest.status"),
}

SEARCH_ONLY = frozenset({"tokens", "references"})


def instant(value: Any, *, high: bool = False) -> Any:
    """The first (or last) instant of a date, dateTime or instant text; None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        return date_range(value)[1 if high else 0]
    except DateValueError:
        return None


def token_rows(resource: dict[str, Any]) -> list[dict[str, Any]]:
    tokens = TokenRowBuilder()
    tokens.meta(resource)
    tokens.codeable("category", listed(resource.get("category")))
    tokens.codeable("medium", listed(resource.get("medium")))
    tokens.identifier("identifier", listed(resource.get("identifier")))
    tokens.identifier("group-identifier", listed(resource.get("groupIdentifier")))
    for uri in listed(resource.get("instantiatesUri")):
        tokens.code("instantiates-uri", uri)
    return tokens.rows


def reference_rows(resource: dict[str, Any]) -> list[dict[str, Any]]:
    references = ReferenceRowBuilder()
    references.add("subject", resource.get("subject"))
    references.add("patient", resource.get("subject"), only_types=("Patient",))
    references.each("recipient", listed(resource.get("recipient")))
    references.add("sender", resource.get("sender"))
    references.add("encounter", resource.get("encounter"))
    references.each("based-on", listed(resource.get("basedOn")))
    references.each("part-of", listed(resource.get("partOf")))
    references.each("replaces", listed(resource.get("replaces")))
    references.add("requester", resource.get("requester"))
    for canonical in listed(resource.get("instantiatesCanonical")):
        references.add("instantiates-canonical", {"reference": canonical})
    return references.rows
