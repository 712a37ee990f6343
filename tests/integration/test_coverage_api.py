"""Coverage over the PRM's insurance table: lossless CRUD, the PRM columns filled from the
FHIR elements, the three slots (order 1..3), search, merges moving it, $everything holding it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine

from storage.coverage_tables import patient_insurances
from storage.tables import patients
from tests.factories import FHIR_JSON, coverage, patient, without_server_elements

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


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
        identifier=[{"system": "urn:prm:insurance-policy", "value": "POL-2002",
                     "type": {"coding": [{"system": "urn:example:identifier-types",
                                          "code": "policy"},
                                         {"system": V2_0203, "code": "MB"}]}}]),
        headers=FHIR_JSON).json()["id"]
    cases = {"patient=p-1": [first], "beneficiary=Patient/p-2": [second],
             "identifier=urn:prm:insurance-policy|POL-2002": [second],
             f"identifier:of-type={V2_0203}|MB|POL-2002": [second],
             "identifier:of-type=urn:example:identifier-types|policy|POL-2002": [second],
             f"identifier:of-type={V2_0203}|MB|POL-1001": [],
             "payor-name=kaiser permanente": [second], "payor-name=permanente": [second],
             "payor-name=blue-cross": [first], "payor-name:exact=Kaiser permanente": [],
             "class-value=grp 42": sorted([first, second]),
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


def _summaries(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as connection:
        rows = connection.execute(select(patients.c.id, patients.c.insurance_types))
        return {row[0]: row[1] for row in rows}


def test_each_write_keeps_the_patients_insurance_summary(insured: TestClient,
                                                          engine: Engine) -> None:
    hip = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                       "code": "HIP"}]}
    first = insured.post("/fhir/Coverage", json=coverage(type=hip), headers=FHIR_JSON).json()
    insured.post("/fhir/Coverage", json=coverage(order=2, type=None), headers=FHIR_JSON)
    assert _summaries(engine) == {"p-1": "||HIP|", "p-2": None}
    moved = first | {"beneficiary": {"reference": "Patient/p-2"}}
    assert insured.put(f"/fhir/Coverage/{first['id']}", json=moved,
                       headers=FHIR_JSON).status_code == 200
    assert _summaries(engine) == {"p-1": "||", "p-2": "|HIP|"}
    cancelled = moved | {"status": "cancelled"}
    insured.put(f"/fhir/Coverage/{first['id']}", json=cancelled, headers=FHIR_JSON)
    assert _summaries(engine)["p-2"] is None
    insured.put(f"/fhir/Coverage/{first['id']}", json=moved, headers=FHIR_JSON)
    assert insured.delete(f"/fhir/Coverage/{first['id']}").status_code in (200, 204)
    assert _summaries(engine) == {"p-1": "||", "p-2": None}


def test_merge_and_undo_move_the_insurance_summary(insured: TestClient, engine: Engine) -> None:
    insured.post("/fhir/Coverage", json=coverage(beneficiary={"reference": "Patient/p-2"}),
                 headers=FHIR_JSON)
    merged = insured.post("/fhir/Patient/$merge", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [
            {"name": "source-patient", "valueReference": {"reference": "Patient/p-2"}},
            {"name": "target-patient", "valueReference": {"reference": "Patient/p-1"}}]}).json()
    assert _summaries(engine) == {"p-1": "|HIP|", "p-2": None}
    merge_id = next(p["valueString"] for p in merged["parameter"] if p["name"] == "merge")
    undone = insured.post("/fhir/Patient/$unmerge", headers=FHIR_JSON, json={
        "resourceType": "Parameters", "parameter": [{"name": "merge", "valueString": merge_id}]})
    assert undone.status_code == 200, undone.text
    assert _summaries(engine) == {"p-1": None, "p-2": "|HIP|"}
    assert insured.put("/fhir/Patient/p-2", json=patient(id="p-2", gender="other"),
                       headers=FHIR_JSON).status_code == 200
    assert _summaries(engine)["p-2"] == "|HIP|"  # a Patient write leaves it alone


def test_a_cancelled_coverage_frees_its_slot(insured: TestClient) -> None:
    old = insured.post("/fhir/Coverage", json=coverage(), headers=FHIR_JSON).json()
    insured.put(f"/fhir/Coverage/{old['id']}", json=old | {"status": "cancelled"},
                headers=FHIR_JSON)
    assert insured.post("/fhir/Coverage", json=coverage(), headers=FHIR_JSON).status_code == 201
    reactivated = insured.put(f"/fhir/Coverage/{old['id']}", json=old | {"status": "active"},
                              headers=FHIR_JSON)
    assert reactivated.status_code == 409
