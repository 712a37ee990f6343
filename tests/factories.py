"""Builders for test resources and helpers for reading responses."""

from __future__ import annotations

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
