"""Builders for test resources and helpers for reading responses."""

from __future__ import annotations

import base64
from typing import Any

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
SERVER_SET_META = ("versionId", "lastUpdated")


def patient(**overrides: Any) -> dict[str, Any]:
    """A realistic US Patient; keyword arguments replace top-level elements."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"system": "http://hospital.example.org/ids", "value": "A-1001"}],
        "active": True,
        "name": [{"use": "official", "family": "Rivera", "given": ["Ana", "Lucia"]}],
        "telecom": [
            {"system": "phone", "value": "(617) 495-2000", "use": "mobile"},
            {"system": "email", "value": "ana.rivera@example.org"},
        ],
        "gender": "female",
        "birthDate": "1984-03-09",
        "address": [{"line": ["12 Elm St"], "city": "Boston", "state": "MA",
                     "postalCode": "02115", "country": "US"}],
    }
    resource.update(overrides)
    return resource


def without_server_elements(resource: dict[str, Any], mrn_system: str = "urn:prm:mrn") -> dict[str, Any]:
    """``resource`` without id, meta.versionId/lastUpdated and the server-generated MRN."""
    copy = {key: value for key, value in resource.items() if key != "id"}
    meta = {key: value for key, value in (copy.pop("meta", None) or {}).items()
            if key not in SERVER_SET_META}
    if meta:
        copy["meta"] = meta
    identifiers = [_dashed_ssn(ident) for ident in copy.get("identifier", [])
                   if not (ident.get("system") == mrn_system
                           and str(ident.get("value", "")).startswith("MRN-"))]
    if identifiers:
        copy["identifier"] = identifiers
    else:
        copy.pop("identifier", None)
    return copy


def issue_codes(body: dict[str, Any]) -> list[str]:
    assert body["resourceType"] == "OperationOutcome", body
    return [issue["code"] for issue in body["issue"]]


def issue_expressions(body: dict[str, Any]) -> list[str]:
    return [expr for issue in body["issue"] for expr in issue.get("expression", [])]


def _dashed_ssn(identifier: dict[str, Any]) -> dict[str, Any]:
    """SSNs sent as nine bare digits come back as ###-##-#### (documented server-set form)."""
    value = identifier.get("value")
    if (identifier.get("system") == "http://hl7.org/fhir/sid/us-ssn" and isinstance(value, str)
            and len(value) == 9 and value.isdigit()):
        return identifier | {"value": f"{value[:3]}-{value[3:5]}-{value[5:]}"}
    return identifier


PDF_BYTES = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def document_reference(**overrides: Any) -> dict[str, Any]:
    """A lab report for Patient/p-1 with its PDF inline (stored as a Binary on write)."""
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "extension": [{"url": "urn:prm:fhir:StructureDefinition:document-source",
                       "valueCode": "upload"}],
        "identifier": [{"system": "urn:example:documents", "value": "doc-1"}],
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11502-2",
                             "display": "Laboratory report"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "11502-2"}]}],
        "subject": {"reference": "Patient/p-1"},
        "date": "2024-05-01T10:00:00Z",
        "author": [{"reference": "Practitioner/pr-1"}],
        "description": "Blood panel",
        "content": [{"attachment": {"contentType": "application/pdf", "language": "en",
                                    "data": base64.b64encode(PDF_BYTES).decode(),
                                    "title": "blood-panel.pdf"}}],
    }
    resource.update(overrides)
    return resource


def binary(**overrides: Any) -> dict[str, Any]:
    """A Binary in FHIR JSON: a small PDF as base64 data."""
    resource: dict[str, Any] = {"resourceType": "Binary", "contentType": "application/pdf",
                                "data": base64.b64encode(PDF_BYTES).decode()}
    resource.update(overrides)
    return resource


def communication_request(**overrides: Any) -> dict[str, Any]:
    """An appointment reminder to send Patient/p-1 by SMS (an override of None drops the
    element)."""
    resource: dict[str, Any] = {
        "resourceType": "CommunicationRequest",
        "identifier": [{"system": "urn:example:requests", "value": "req-1"}],
        "status": "active",
        "category": [{"coding": [{"system": "urn:prm:message-category", "code": "reminder"}]}],
        "priority": "routine",
        "medium": [{"coding": [{"system": "urn:prm:message-channel", "code": "sms"}]}],
        "subject": {"reference": "Patient/p-1"},
        "recipient": [{"reference": "Patient/p-1"}],
        "payload": [{"contentString": "Your appointment is tomorrow at 10:00"}],
        "occurrenceDateTime": "2024-05-02T09:00:00Z",
        "authoredOn": "2024-05-01T12:00:00Z",
        "requester": {"reference": "Practitioner/pr-1"},
    }
    resource.update(overrides)
    return {key: value for key, value in resource.items() if value is not None}


def communication(**overrides: Any) -> dict[str, Any]:
    """The SMS that fulfilled the reminder."""
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "identifier": [{"system": "urn:example:messages", "value": "msg-1"}],
        "basedOn": [{"reference": "CommunicationRequest/req-1"}],
        "status": "completed",
        "medium": [{"coding": [{"system": "urn:prm:message-channel", "code": "sms"}]}],
        "subject": {"reference": "Patient/p-1"},
        "recipient": [{"reference": "Patient/p-1"}],
        "sender": {"reference": "Organization/clinic"},
        "sent": "2024-05-02T09:00:05Z",
        "payload": [{"contentString": "Your appointment is tomorrow at 10:00"}],
    }
    resource.update(overrides)
    return {key: value for key, value in resource.items() if value is not None}


def coverage(**overrides: Any) -> dict[str, Any]:
    """Patient/p-1's primary insurance (an override of None drops the element)."""
    resource: dict[str, Any] = {
        "resourceType": "Coverage",
        "identifier": [{"system": "urn:prm:insurance-policy", "value": "POL-1001"}],
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                             "code": "HIP", "display": "health insurance plan policy"}]},
        "subscriberId": "SUB-77",
        "beneficiary": {"reference": "Patient/p-1"},
        "relationship": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
            "code": "self"}]},
        "payor": [{"display": "Blue Cross Blue Shield"}],
        "class": [{"type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "group"}]},
            "value": "GRP-42", "name": "Acme Corp staff"}],
        "order": 1,
    }
    resource.update(overrides)
    return {key: value for key, value in resource.items() if value is not None}
