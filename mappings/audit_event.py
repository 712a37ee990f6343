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
                  "remainder": orjson.dumps(resource).decode()},
            children={"tokens": tokens.rows, "references": references.rows})

    def to_resource(self, rows: RowSet) -> dict[str, Any]:
        resource: dict[str, Any] = orjson.loads(rows.main["remainder"])
        return resource
