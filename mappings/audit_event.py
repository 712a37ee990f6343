"""AuditEvent <-> ``audit_events`` rows: the whole event in ``remainder``, its recorded time,
action, outcome and source address in columns, and token and reference rows for the R4 search
parameters the audit trail is searched by. https://hl7.org/fhir/R4/auditevent.html#search"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from mappings.fhir_dates import as_datetime
from mappings.search_backing import (
    CodeColumn,
    DateRange,
    IdColumn,
    ReferenceRows,
    SearchParameter,
    TokenRows,
)
from mappings.search_rows import ReferenceRows as ReferenceRowBuilder
from mappings.search_rows import TokenRows as TokenRowBuilder
from storage.row_set import RowSet

ENTITY_TYPES = ("Patient", "DocumentReference", "Binary", "Communication",
                "CommunicationRequest", "Provenance", "AuditEvent")
AGENT_TYPES = ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson", "Device",
               "Organization")
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_STANDARD_KEYS = ("what", "type", "role")


def entity_codings(reference: str) -> tuple[dict[str, str], dict[str, str]]:
    """The ``type`` and ``role`` of an audited resource: a Patient is a Person in the Patient
    role, anything else a System Object in the Domain Resource role (new dicts each call)."""
    if reference.startswith("Patient/"):
        return ({"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                {"system": OBJECT_ROLE, "code": "1", "display": "Patient"})
    return ({"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"})


_PATIENT_CODINGS = entity_codings("Patient/")
_OTHER_CODINGS = entity_codings("")
_CODING_KEYS = ("system", "code", "display")
"""The key order of ``entity_codings``' codings (an equal dict in another order would not
read back byte for byte)."""


def _reference_of(entity: dict[str, Any]) -> str | None:
    what = entity.get("what")
    reference = what.get("reference") if isinstance(what, dict) else None
    return reference if isinstance(reference, str) else None


def _stored_entity(entity: dict[str, Any]) -> dict[str, Any]:
    """``entity`` as the remainder keeps it: ``what`` alone when it is exactly
    ``{what, type, role}`` with the codings ``entity_codings`` gives its reference."""
    reference = _reference_of(entity)
    if reference is None or tuple(entity) != _STANDARD_KEYS:
        return entity
    entity_type, role = (_PATIENT_CODINGS if reference.startswith("Patient/")
                         else _OTHER_CODINGS)
    if entity["type"] != entity_type or entity["role"] != role \
            or tuple(entity["type"]) != _CODING_KEYS or tuple(entity["role"]) != _CODING_KEYS:
        return entity
    return {"what": entity["what"]}


def _read_entity(entity: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``_stored_entity``."""
    reference = _reference_of(entity)
    if reference is None or list(entity) != ["what"]:
        return entity
    entity_type, role = entity_codings(reference)
    return {"what": entity["what"], "type": entity_type, "role": role}

AUDIT_EVENT_SEARCH: dict[str, SearchParameter] = {
    "_id": SearchParameter("token", IdColumn(), "id", "Logical id"),
    "_lastUpdated": SearchParameter("date", DateRange("last_updated", "last_updated"),
                                    "last_updated", "meta.lastUpdated (= recorded)"),
    "date": SearchParameter("date", DateRange("recorded", "recorded"), "recorded",
                            "AuditEvent.recorded"),
    "action": SearchParameter("token", CodeColumn("action", "http://hl7.org/fhir/audit-event-action"),
                              "action", "AuditEvent.action (C R U D E)"),
    "outcome": SearchParameter("token", CodeColumn(
        "outcome", "http://hl7.org/fhir/audit-event-outcome"), "outcome",
        "AuditEvent.outcome (0 success, 4 refused, 8 failed)"),
    "type": SearchParameter("token", TokenRows(), None, "AuditEvent.type"),
    "subtype": SearchParameter("token", TokenRows(), None,
                               "AuditEvent.subtype (restful-interaction or $operation)"),
    "altid": SearchParameter("token", TokenRows(), None,
                             "AuditEvent.agent.altId (the token's subject)"),
    "agent": SearchParameter("reference", ReferenceRows(AGENT_TYPES), None,
                             "AuditEvent.agent.who (the token's fhirUser)"),
    "entity": SearchParameter("reference", ReferenceRows(ENTITY_TYPES), None,
                              "AuditEvent.entity.what"),
    "patient": SearchParameter("reference", ReferenceRows(("Patient",), ("entity", "agent")), None,
                               "A Patient among the audited entities or the agents (R4: "
                               "agent.who and entity.what that are Patients)"),
}


class AuditEventMapping:
    resource_type = "AuditEvent"
    search_parameters = AUDIT_EVENT_SEARCH
    search_only: frozenset[str] = frozenset()

    def to_rows(self, resource: dict[str, Any], *, resource_id: str, version_id: int,
                last_updated: datetime, facts: Any = None) -> RowSet:
        recorded = as_datetime(resource["recorded"])
        address = next((agent["network"]["address"] for agent in resource.get("agent", [])
                        if agent.get("requestor") and agent.get("network")), None)
        tokens = TokenRowBuilder()
        tokens.coding("type", resource.get("type"))
        for coding in resource.get("subtype") or []:
            tokens.coding("subtype", coding)
        references = ReferenceRowBuilder()
        for agent in resource.get("agent") or []:
            if agent.get("altId"):
                tokens.add("altid", None, agent["altId"])
            references.each("agent", [agent.get("who")])
        entities = [entity.get("what") for entity in resource.get("entity") or []]
        references.each("entity", entities)  # ``patient`` searches these and the agents'
        return RowSet(
            main={"id": resource_id, "version_id": 1, "last_updated": recorded,
                  "deleted_at": None, "recorded": recorded, "action": resource["action"],
                  "outcome": resource["outcome"], "source_address": address,
                  "remainder": orjson.dumps(_stored(resource)).decode()},
            children={"tokens": tokens.rows, "references": references.rows})

    def to_resource(self, rows: RowSet) -> dict[str, Any]:
        resource: dict[str, Any] = orjson.loads(rows.main["remainder"])
        if "entity" in resource:
            resource["entity"] = [_read_entity(entity) for entity in resource["entity"]]
        return resource


def _stored(resource: dict[str, Any]) -> dict[str, Any]:
    """The event as its remainder keeps it: each entity whose type and role follow from its
    reference as ``what`` alone. A search's event names every patient on the page, and their
    repeated codings were most of its text (6.6 kB for 20 patients, 2.5 kB without them):
    less to store for ever, and less for PostgreSQL to compress and log per search. Only the
    server writes AuditEvents (``fhir_server.security.audit``), and it always gives an entity
    its type and role, so an entity stored as ``what`` alone is always one of these."""
    if "entity" not in resource:
        return resource
    return resource | {"entity": [_stored_entity(entity) for entity in resource["entity"]]}
