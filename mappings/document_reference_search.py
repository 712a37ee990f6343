"""DocumentReference search parameters (R4): what backs each one, and the search values a
DocumentReference puts in its ``media_assets`` columns and its token and reference rows.

Definitions: https://hl7.org/fhir/R4/documentreference.html#search.
"""

from __future__ import annotations

from typing import Any

from mappings.fhir_dates import DateValueError, date_range
from mappings.search_backing import (
    CodeColumn,
    CompositeRows,
    DateRange,
    Haystack,
    IdColumn,
    ReferenceRows,
    SearchParameter,
    TokenRows,
)
from mappings.search_rows import ReferenceRows as ReferenceRowBuilder
from mappings.search_rows import TokenRows as TokenRowBuilder
from mappings.search_rows import listed, split_reference
from mappings.search_text import haystack
from terminology import systems

RELATION_SYSTEM = "http://hl7.org/fhir/document-relationship-type"
AUTHOR_TYPES = ("Practitioner", "Organization", "Device", "Patient", "PractitionerRole",
                "RelatedPerson")
SUBJECT_TYPES = ("Practitioner", "Group", "Device", "Patient")
RELATED_TYPES = ("Patient", "DocumentReference", "Binary", "Communication",
                 "CommunicationRequest", "Encounter", "Observation", "DiagnosticReport",
                 "Procedure", "Condition", "ServiceRequest", "Appointment", "Practitioner",
                 "Organization")
"""``context.related`` may point at any type; these are the ones ``:Type`` and chains know."""


def _token(doc: str, sort: str | None = None) -> SearchParameter:
    return SearchParameter("token", TokenRows(), sort, doc)


def _reference(targets: tuple[str, ...], doc: str) -> SearchParameter:
    return SearchParameter("reference", ReferenceRows(targets), None, doc)


def common_parameters() -> dict[str, SearchParameter]:
    """``_id``, ``_lastUpdated``, ``_tag``, ``_profile``, ``_security``, ``_source`` of any type
    stored with ``id``/``last_updated`` columns and token rows."""
    return {
        "_id": SearchParameter("token", IdColumn(), "id", "Logical id"),
        "_lastUpdated": SearchParameter(
            "date", DateRange("last_updated", "last_updated"), "last_updated",
            "meta.lastUpdated"),
        "_tag": SearchParameter("token", TokenRows(), None, "meta.tag"),
        "_profile": SearchParameter("uri", TokenRows(), None, "meta.profile"),
        "_security": SearchParameter("token", TokenRows(), None, "meta.security"),
        "_source": SearchParameter("uri", TokenRows(), None, "meta.source"),
    }


DOCUMENT_REFERENCE_SEARCH: dict[str, SearchParameter] = {
    **common_parameters(),
    "authenticator": _reference(("Practitioner", "Organization", "PractitionerRole"),
                                "DocumentReference.authenticator"),
    "author": _reference(AUTHOR_TYPES, "DocumentReference.author"),
    "category": _token("DocumentReference.category (LOINC; PRM categories through the "
                       "prm-document-category ConceptMap)", "category"),
    "contenttype": _token("DocumentReference.content.attachment.contentType", "content_type"),
    "custodian": _reference(("Organization",), "DocumentReference.custodian"),
    "date": SearchParameter("date", DateRange("document_date", "document_date"),
                            "document_date", "DocumentReference.date"),
    "description": SearchParameter("string", Haystack("description_search", "description_exact"),
                                   "description", "DocumentReference.description"),
    "encounter": _reference(("Encounter", "EpisodeOfCare"),
                            "DocumentReference.context.encounter"),
    "event": _token("DocumentReference.context.event"),
    "facility": _token("DocumentReference.context.facilityType"),
    "format": _token("DocumentReference.content.format"),
    "identifier": SearchParameter("token", TokenRows(of_type=True), None,
                                  "DocumentReference.masterIdentifier and .identifier"),
    "language": _token("DocumentReference.content.attachment.language"),
    "location": SearchParameter("uri", TokenRows(), None,
                                "DocumentReference.content.attachment.url"),
    "patient": _reference(("Patient",), "DocumentReference.subject where it is a Patient"),
    "period": SearchParameter("date", DateRange("period_low", "period_high"), "period_low",
                              "DocumentReference.context.period"),
    "related": _reference(RELATED_TYPES, "DocumentReference.context.related"),
    "relatesto": _reference(("DocumentReference",), "DocumentReference.relatesTo.target"),
    "relation": _token("DocumentReference.relatesTo.code"),
    "security-label": _token("DocumentReference.securityLabel"),
    "setting": _token("DocumentReference.context.practiceSetting"),
    "status": SearchParameter("token", CodeColumn("status", systems.DOCUMENT_REFERENCE_STATUS),
                              "status", "DocumentReference.status"),
    "subject": _reference(SUBJECT_TYPES, "DocumentReference.subject"),
    "type": _token("DocumentReference.type", "type_code"),
    "relationship": SearchParameter(
        "composite", CompositeRows(), None,
        "relation$relatesto: DocumentReference.relatesTo code and target together "
        "(relationship=replaces$DocumentReference/1)"),
}

SEARCH_ONLY = frozenset({"description_search", "description_exact", "period_low",
                         "period_high", "tokens", "references"})
"""Columns and child rows that only serve search: derived, so left out of history snapshots."""


def search_columns(resource: dict[str, Any]) -> dict[str, Any]:
    description = resource.get("description")
    period = (resource.get("context") or {}).get("period") or {}
    low = high = None
    try:
        if period.get("start"):
            low = date_range(period["start"])[0]
        if period.get("end"):
            high = date_range(period["end"])[1]
    except DateValueError:
        low = high = None
    if period and low is None and high is None:
        pass
    elif period:  # an open end reaches to the beginning or end of time
        low = low or date_range("0001")[0]
        high = high or date_range("9999")[1]
    return {
        "description_search": haystack([description], normalised=True),
        "description_exact": haystack([description], normalised=False),
        "period_low": low,
        "period_high": high,
    }


def search_token_rows(resource: dict[str, Any]) -> list[dict[str, Any]]:
    tokens = TokenRowBuilder()
    tokens.meta(resource)
    context = resource.get("context") or {}
    tokens.codeable("category", listed(resource.get("category")))
    tokens.codeable("type", listed(resource.get("type")))
    tokens.codeable("event", listed(context.get("event")))
    tokens.codeable("facility", listed(context.get("facilityType")))
    tokens.codeable("setting", listed(context.get("practiceSetting")))
    tokens.codeable("security-label", listed(resource.get("securityLabel")))
    tokens.identifier("identifier", [resource.get("masterIdentifier"),
                                     *listed(resource.get("identifier"))])
    for relation in listed(resource.get("relatesTo")):
        tokens.code("relation", relation.get("code"), RELATION_SYSTEM)
        target = (relation.get("target") or {}).get("reference")
        target_type, target_id = split_reference(target) if isinstance(target, str) else (None, None)
        if relation.get("code") and target_type and target_id:
            tokens.add("relationship", relation["code"], f"{target_type}/{target_id}")
    for content in listed(resource.get("content")):
        attachment = content.get("attachment") or {}
        tokens.code("contenttype", attachment.get("contentType"), systems.MIME_TYPES)
        tokens.code("language", attachment.get("language"), systems.BCP_47)
        tokens.code("location", attachment.get("url"))
        tokens.coding("format", content.get("format"))
    return tokens.rows


def search_reference_rows(resource: dict[str, Any]) -> list[dict[str, Any]]:
    references = ReferenceRowBuilder()
    context = resource.get("context") or {}
    references.add("subject", resource.get("subject"))
    references.add("patient", resource.get("subject"), only_types=("Patient",))
    references.each("author", listed(resource.get("author")))
    references.add("authenticator", resource.get("authenticator"))
    references.add("custodian", resource.get("custodian"))
    references.each("encounter", listed(context.get("encounter")))
    references.each("related", listed(context.get("related")))
    references.each("relatesto", [relation.get("target")
                                  for relation in listed(resource.get("relatesTo"))])
    return references.rows
