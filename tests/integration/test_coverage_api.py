"""Coverage over the PRM's insurance table: lossless CRUD, the PRM columns filled from the
FHIR elements, the three slots (order 1..3), search, merges moving it, $everything holding it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from storage.coverage_tables import patient_insurances
from tests.factories import FHIR_JSON, coverage, patient, without_server_elements


@pytest.fixture
def insured(client: TestClient) -> TestClient:
    for name in ("p-1", "p-2"):
        assert client.put(f"/fhir/Patient/{name}", json=patient(id=name),
                          headers=FHIR_JSON).status_code == 201
    return client


def _ids(bundle: dict[str, Any]) -> list[str]:
    return sorted(entry["resource"]["id"] for entry in bundle.get("entry", [])
                  if entry["search"]["mode"] == "match")


def test_coverage_reads_back_as_written_and_fills_the_prm_columns(insured: TestClient,
                                                                  engine: Engine) -> None:
    written = coverage()
    response = insured.post("/fhir/Coverage", json=written, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    read = insured.get(response.headers["location"].split("/_history")[0]).json()
    assert without_server_elements(read) == written
    with engine.connect() as connection:
        row = connection.execute(select(patient_insurances)).mappings().one()
    assert (row["patient_id"], row["insurance_type"], row["provider_name"],
            row["policy_number"], row["group_number"], row["coverage_order"]) == \
        ("p-1", "primary", "Blue Cross Blue Shield", "POL-1001", "GRP-42", 1)


def test_update_and_delete(insured: TestClient) -> None:
    created = insured.post("/fhir/Coverage", json=coverage(), headers=FHIR_JSON).json()
    changed = created | {"payor": [{"display": "Aetna"}], "order": 2}
    updated = insured.put(f"/fhir/Coverage/{created['id']}", json=changed, headers=FHIR_JSON)
    assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2"
    assert insured.get("/fhir/Coverage?payor-name=aet").json()["total"] == 1
    assert insured.delete(f"/fhir/Coverage/{created['id']}").status_code in (200, 204)
    assert insured.get(f"/fhir/Coverage/{created['id']}").status_code == 410


def test_each_slot_holds_one_live_coverage(insured: TestClient) -> None:
    assert insured.post("/fhir/Coverage", json=coverage(), headers=FHIR_JSON).status_code == 201
    taken = insured.post("/fhir/Coverage", json=coverage(), headers=FHIR_JSON)
    assert taken.status_code == 409
    assert "primary" in taken.json()["issue"][0]["diagnostics"]
    for order in (2, 3):
        assert insured.post("/fhir/Coverage", json=coverage(order=order),
                            headers=FHIR_JSON).status_code == 201
    other_patient = coverage(beneficiary={"reference": "Patient/p-2"})
    assert insured.post("/fhir/Coverage", json=other_patient,
                        headers=FHIR_JSON).status_code == 201


@pytest.mark.parametrize(("change", "path"), [
    ({"order": 4}, "Coverage.order"),
    ({"beneficiary": {"reference": "Organization/o-1"}}, "Coverage.beneficiary"),
])
def test_prm_rules_are_400_naming_the_element(insured: TestClient, change: dict[str, Any],
                                              path: str) -> None:
    response = insured.post("/fhir/Coverage", json=coverage(**change), headers=FHIR_JSON)
    assert response.status_code == 400
    assert path in response.json()["issue"][0]["expression"]


def test_search_by_the_prm_fields(insured: TestClient) -> None:
    first = insured.post("/fhir/Coverage", json=coverage(), headers=FHIR_JSON).json()["id"]
    second = insured.post("/fhir/Coverage", json=coverage(
        beneficiary={"reference": "Patient/p-2"}, status="cancelled",
        payor=[{"display": "Kaiser Permanente"}],
        identifier=[{"system": "urn:prm:insurance-policy", "value": "POL-2002"}]),
        headers=FHIR_JSON).json()["id"]
    cases = {"patient=p-1": [first], "beneficiary=Patient/p-2": [second],
             "identifier=urn:prm:insurance-policy|POL-2002": [second],
             "status=active": [first], "payor-name=kaiser": [second],
             "type=HIP": sorted([first, second]), "class-value=GRP-42": sorted([first, second]),
             "class-type=group": sorted([first, second])}
    for query, expected in cases.items():
        assert _ids(insured.get(f"/fhir/Coverage?{query}").json()) == sorted(expected), query


def test_merge_moves_coverage_and_everything_holds_it(insured: TestClient) -> None:
    moved = insured.post("/fhir/Coverage", json=coverage(beneficiary={
        "reference": "Patient/p-2"}, order=2), headers=FHIR_JSON).json()["id"]
    merge = insured.post("/fhir/Patient/$merge", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "source-patient", "valueReference": {"reference": "Patient/p-2"}},
            {"name": "target-patient", "valueReference": {"reference": "Patient/p-1"}}]})
    assert merge.status_code == 200, merge.text
    assert insured.get(f"/fhir/Coverage/{moved}").json()["beneficiary"] == \
        {"reference": "Patient/p-1"}
    everything = insured.get("/fhir/Patient/p-1/$everything?_type=Coverage").json()
    assert _ids(everything) == [moved]
    refused = insured.post("/fhir/Coverage", json=coverage(
        beneficiary={"reference": "Patient/p-2"}, order=3), headers=FHIR_JSON)
    assert refused.status_code == 422
