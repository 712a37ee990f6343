"""SSNs in clear only for user/Patient.$reveal-ssn: masked everywhere else (read, search,
history, write answers, $match), and a masked SSN written back keeps the stored one."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.factories import FHIR_JSON, patient
from tests.tokens import TokenIssuer

SSN = "http://hl7.org/fhir/sid/us-ssn"
CLERK = "user/Patient.cruds user/Patient.$match"
REVEALER = "user/Patient.cruds user/Patient.$reveal-ssn"


def _with_ssn() -> dict[str, Any]:
    return patient(identifier=[{"system": "http://hospital.example.org/ids", "value": "A-1"},
                               {"system": SSN, "value": "123-45-6789"}])


def _ssn(resource: dict[str, Any]) -> dict[str, Any]:
    return next(item for item in resource["identifier"] if item["system"] == SSN)


def _text(response: Any) -> str:
    return str(response.text)


def test_read_search_history_and_write_answers_mask_the_ssn(
        secured_client: TestClient, token_issuer: TokenIssuer) -> None:
    headers = FHIR_JSON | token_issuer.headers(CLERK)
    created = secured_client.post("/fhir/Patient", json=_with_ssn(), headers=headers)
    assert created.status_code == 201
    patient_id = created.json()["id"]
    answers = [created,
               secured_client.get(f"/fhir/Patient/{patient_id}", headers=headers),
               secured_client.get("/fhir/Patient?family=Rivera", headers=headers),
               secured_client.get(f"/fhir/Patient/{patient_id}/_history", headers=headers),
               secured_client.post("/fhir/Patient/$match", headers=headers, json={
                   "resourceType": "Parameters",
                   "parameter": [{"name": "resource", "resource": _with_ssn()}]})]
    for answer in answers:
        assert answer.status_code == 200 or answer.status_code == 201
        assert "123-45-6789" not in _text(answer) and "123456789" not in _text(answer)
    masked = _ssn(created.json())
    assert masked["value"] == "***-**-6789"
    assert masked["_value"]["extension"][0]["valueCode"] == "masked"


def test_reveal_scope_sees_the_ssn(secured_client: TestClient,
                                   token_issuer: TokenIssuer) -> None:
    headers = FHIR_JSON | token_issuer.headers(REVEALER)
    patient_id = secured_client.post("/fhir/Patient", json=_with_ssn(), headers=headers).json()["id"]
    read = secured_client.get(f"/fhir/Patient/{patient_id}", headers=headers).json()
    assert _ssn(read)["value"] == "123-45-6789"


def test_masked_ssn_sent_back_keeps_the_stored_one(secured_client: TestClient,
                                                   token_issuer: TokenIssuer) -> None:
    clerk = FHIR_JSON | token_issuer.headers(CLERK)
    patient_id = secured_client.post("/fhir/Patient", json=_with_ssn(), headers=clerk).json()["id"]
    read = secured_client.get(f"/fhir/Patient/{patient_id}", headers=clerk).json()
    updated = secured_client.put(f"/fhir/Patient/{patient_id}",
                                 json=read | {"gender": "other"}, headers=clerk)
    assert updated.status_code == 200, updated.text
    revealer = token_issuer.headers(REVEALER)
    after = secured_client.get(f"/fhir/Patient/{patient_id}", headers=revealer).json()
    assert _ssn(after)["value"] == "123-45-6789"
    assert after["gender"] == "other"


def test_without_auth_the_ssn_reads_in_clear(client: TestClient) -> None:
    patient_id = client.post("/fhir/Patient", json=_with_ssn(), headers=FHIR_JSON).json()["id"]
    assert _ssn(client.get(f"/fhir/Patient/{patient_id}").json())["value"] == "123-45-6789"


def test_patch_keeps_the_ssn_and_answers_it_masked(secured_client: TestClient,
                                                   token_issuer: TokenIssuer) -> None:
    clerk = FHIR_JSON | token_issuer.headers(CLERK)
    patient_id = secured_client.post("/fhir/Patient", json=_with_ssn(), headers=clerk).json()["id"]
    patched = secured_client.patch(
        f"/fhir/Patient/{patient_id}", content=b'[{"op": "replace", "path": "/gender", '
        b'"value": "other"}]', headers=token_issuer.headers("user/Patient.u")
        | {"Content-Type": "application/json-patch+json"})
    assert patched.status_code == 200, patched.text
    assert _ssn(patched.json())["value"] == "***-**-6789"
    after = secured_client.get(f"/fhir/Patient/{patient_id}",
                               headers=token_issuer.headers(REVEALER)).json()
    assert _ssn(after)["value"] == "123-45-6789" and after["gender"] == "other"
