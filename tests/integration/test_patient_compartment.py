"""A token with patient/ scopes and a patient launch context sees that patient's compartment
only: searches are filtered, other patients' resources read as 404, writes outside it are 403."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import FHIR_JSON, communication, document_reference, patient
from tests.tokens import TokenIssuer

SCOPES = "patient/Patient.rs patient/DocumentReference.cruds patient/Communication.rs"


@pytest.fixture
def two_patients(secured_client: TestClient, token_issuer: TokenIssuer) -> dict[str, Any]:
    admin = FHIR_JSON | token_issuer.headers("user/*.cruds")
    made: dict[str, Any] = {}
    for name, family in (("mine", "Mine"), ("other", "Other")):
        secured_client.put(f"/fhir/Patient/{name}", json=patient(
            id=name, name=[{"family": family, "given": ["Pat"]}]), headers=admin)
        document = secured_client.post("/fhir/DocumentReference", json=document_reference(
            subject={"reference": f"Patient/{name}"}), headers=admin).json()
        message = secured_client.post("/fhir/Communication", json=communication(
            subject={"reference": f"Patient/{name}"},
            recipient=[{"reference": f"Patient/{name}"}]), headers=admin).json()
        made[name] = {"document": document["id"], "message": message["id"]}
    return made


def _headers(issuer: TokenIssuer, scopes: str = SCOPES) -> dict[str, str]:
    return FHIR_JSON | issuer.headers(scopes, patient="mine")


def test_search_returns_only_the_compartment(secured_client: TestClient,
                                             token_issuer: TokenIssuer,
                                             two_patients: dict[str, Any]) -> None:
    headers = _headers(token_issuer)
    for kind, expected in (("Patient", {"mine"}),
                           ("DocumentReference", {two_patients["mine"]["document"]}),
                           ("Communication", {two_patients["mine"]["message"]})):
        bundle = secured_client.get(f"/fhir/{kind}", headers=headers).json()
        assert {entry["resource"]["id"] for entry in bundle.get("entry", [])} == expected
    other = secured_client.get("/fhir/DocumentReference?subject=Patient/other",
                               headers=headers).json()
    assert other.get("entry", []) == []


def test_reads_outside_the_compartment_are_404(secured_client: TestClient,
                                               token_issuer: TokenIssuer,
                                               two_patients: dict[str, Any]) -> None:
    headers = _headers(token_issuer)
    assert secured_client.get("/fhir/Patient/mine", headers=headers).status_code == 200
    assert secured_client.get("/fhir/Patient/other", headers=headers).status_code == 404
    other_document = two_patients["other"]["document"]
    assert secured_client.get(f"/fhir/DocumentReference/{other_document}",
                              headers=headers).status_code == 404
    assert secured_client.get("/fhir/Patient/other/_history",
                              headers=headers).status_code == 404


def test_writes_outside_the_compartment_are_403(secured_client: TestClient,
                                                token_issuer: TokenIssuer,
                                                two_patients: dict[str, Any]) -> None:
    headers = _headers(token_issuer)
    refused = secured_client.post("/fhir/DocumentReference", json=document_reference(
        subject={"reference": "Patient/other"}), headers=headers)
    assert refused.status_code == 403
    allowed = secured_client.post("/fhir/DocumentReference", json=document_reference(
        subject={"reference": "Patient/mine"}), headers=headers)
    assert allowed.status_code == 201
    other_document = two_patients["other"]["document"]
    moved = secured_client.put(f"/fhir/DocumentReference/{other_document}",
                               json=document_reference(id=other_document,
                                                       subject={"reference": "Patient/mine"}),
                               headers=headers)
    assert moved.status_code == 403


def test_includes_outside_the_compartment_are_dropped(secured_client: TestClient,
                                                      token_issuer: TokenIssuer,
                                                      two_patients: dict[str, Any]) -> None:
    headers = _headers(token_issuer)
    bundle = secured_client.get("/fhir/DocumentReference?_include=DocumentReference:subject",
                                headers=headers).json()
    included = [entry["resource"] for entry in bundle["entry"]
                if entry["search"]["mode"] == "include"]
    assert [resource["id"] for resource in included] == ["mine"]


def test_patient_scope_without_launch_context_is_403(secured_client: TestClient,
                                                     token_issuer: TokenIssuer) -> None:
    response = secured_client.get("/fhir/Patient",
                                  headers=token_issuer.headers("patient/Patient.rs"))
    assert response.status_code == 403
    assert "launch context" in response.json()["issue"][0]["diagnostics"]


def test_type_history_needs_a_user_scope(secured_client: TestClient,
                                         token_issuer: TokenIssuer) -> None:
    response = secured_client.get("/fhir/Patient/_history", headers=_headers(token_issuer))
    assert response.status_code == 403
