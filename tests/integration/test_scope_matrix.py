"""The scope matrix: every interaction on every served type under each kind of scope is
allowed exactly when a scope grants its SMART permission letter, and refused with 403
otherwise (on both databases)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import (
    FHIR_JSON,
    binary,
    communication,
    communication_request,
    coverage,
    document_reference,
    patient,
)
from tests.tokens import TokenIssuer

FACTORIES: dict[str, Callable[[], dict[str, Any]]] = {
    "Patient": patient, "DocumentReference": document_reference, "Binary": binary,
    "Communication": communication, "CommunicationRequest": communication_request,
    "Coverage": lambda: coverage(order=None),  # unordered: several may coexist
}
INTERACTIONS = ["create", "read", "vread", "search", "history-type", "history-instance",
                "update", "patch", "delete"]
LETTER = {"create": "c", "read": "r", "vread": "r", "search": "s", "history-type": "s",
          "history-instance": "r", "update": "u", "patch": "u", "delete": "d"}
"""The SMART v2 letter each interaction needs (written out here, apart from the server's)."""


def _scopes(resource_type: str) -> dict[str, set[str]]:
    """Each scope string to try, with the letters it should grant on ``resource_type``."""
    other = "Patient" if resource_type != "Patient" else "Binary"
    cases = {f"user/{resource_type}.{letter}": {letter} for letter in "cruds"}
    cases[f"system/{resource_type}.rs"] = {"r", "s"}
    cases[f"user/{resource_type}.read"] = {"r", "s"}
    cases[f"user/{resource_type}.write"] = {"c", "u", "d"}
    cases["user/*.cruds"] = set("cruds")
    cases[f"user/{other}.cruds"] = set()
    cases["openid fhirUser"] = set()
    return cases


def _seed(client: TestClient, issuer: TokenIssuer, resource_type: str) -> str:
    admin = issuer.headers("user/*.cruds")
    response = client.post(f"/fhir/{resource_type}", json=FACTORIES[resource_type](),
                           headers=FHIR_JSON | admin)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _run(client: TestClient, interaction: str, resource_type: str, resource_id: str,
         headers: dict[str, str]) -> int:
    path = f"/fhir/{resource_type}"
    body = FACTORIES[resource_type]()
    calls: dict[str, Callable[[], Any]] = {
        "create": lambda: client.post(path, json=body, headers=FHIR_JSON | headers),
        "read": lambda: client.get(f"{path}/{resource_id}", headers=headers),
        "vread": lambda: client.get(f"{path}/{resource_id}/_history/1", headers=headers),
        "search": lambda: client.get(path, headers=headers),
        "history-type": lambda: client.get(f"{path}/_history", headers=headers),
        "history-instance": lambda: client.get(f"{path}/{resource_id}/_history",
                                               headers=headers),
        "update": lambda: client.put(f"{path}/{resource_id}",
                                     json=body | {"id": resource_id},
                                     headers=FHIR_JSON | headers),
        "patch": lambda: client.patch(
            f"{path}/{resource_id}", content=b'[{"op": "add", "path": "/meta/tag", "value": '
            b'[{"system": "urn:example:tags", "code": "matrix"}]}]',
            headers=headers | {"Content-Type": "application/json-patch+json"}),
        "delete": lambda: client.delete(f"{path}/{resource_id}", headers=headers),
    }
    return int(calls[interaction]().status_code)


@pytest.mark.parametrize("resource_type", sorted(FACTORIES))
def test_each_interaction_is_allowed_exactly_when_a_scope_grants_it(
        secured_client: TestClient, token_issuer: TokenIssuer, resource_type: str) -> None:
    admin = FHIR_JSON | token_issuer.headers("user/*.cruds")
    assert secured_client.put("/fhir/Patient/p-1", json=patient() | {"id": "p-1"},
                              headers=admin).status_code in (200, 201)
    wrong: list[str] = []
    for scope, granted in _scopes(resource_type).items():
        resource_id = _seed(secured_client, token_issuer, resource_type)
        headers = token_issuer.headers(scope)
        for interaction in INTERACTIONS:
            if interaction == "patch" and resource_type == "Binary":
                continue  # Binary has no PATCH (405 for everyone)
            status = _run(secured_client, interaction, resource_type, resource_id, headers)
            allowed = LETTER[interaction] in granted
            if (allowed and not 200 <= status < 300) or (not allowed and status != 403):
                wrong.append(f"{scope} {interaction}: {status}")
    assert wrong == []


def test_audit_trail_needs_the_auditor_scope(secured_client: TestClient,
                                             token_issuer: TokenIssuer) -> None:
    for scope in ("user/*.cruds", "patient/AuditEvent.rs", "user/Patient.cruds"):
        response = secured_client.get("/fhir/AuditEvent", headers=token_issuer.headers(scope))
        assert response.status_code == 403, scope
    for scope in ("user/AuditEvent.rs", "system/AuditEvent.read"):
        response = secured_client.get("/fhir/AuditEvent", headers=token_issuer.headers(scope))
        assert response.status_code == 200, scope


@pytest.mark.parametrize(("operation", "scope"), [
    ("$match", "user/Patient.$match"), ("$merge", "user/Patient.$merge")])
def test_match_and_merge_need_their_own_scopes(secured_client: TestClient,
                                               token_issuer: TokenIssuer, operation: str,
                                               scope: str) -> None:
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": patient()}]} if operation == "$match" else {
        "resourceType": "Parameters", "parameter": [
            {"name": "source-patient", "valueReference": {"reference": "Patient/a"}},
            {"name": "target-patient", "valueReference": {"reference": "Patient/b"}}]}
    path = f"/fhir/Patient/{operation}"
    refused = secured_client.post(path, json=body,
                                  headers=FHIR_JSON | token_issuer.headers("user/*.cruds"))
    assert refused.status_code == 403
    allowed = secured_client.post(path, json=body,
                                  headers=FHIR_JSON | token_issuer.headers(scope))
    assert allowed.status_code != 403
    assert allowed.status_code < 500


def test_bundle_entries_are_each_checked(secured_client: TestClient,
                                         token_issuer: TokenIssuer) -> None:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "Patient"}, "resource": patient()},
        {"request": {"method": "GET", "url": "Binary"}}]}
    response = secured_client.post("/fhir", json=bundle,
                                   headers=FHIR_JSON | token_issuer.headers("user/Patient.c"))
    assert response.status_code == 200
    statuses = [entry["response"]["status"] for entry in response.json()["entry"]]
    assert statuses[0].startswith("201")
    assert statuses[1].startswith("403")
