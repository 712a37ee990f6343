"""$validate at type and instance level: an OperationOutcome saying whether the content would
be accepted generally, as a create, an update or a delete; nothing is ever written."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from storage.tables import patients, resource_history
from tests.factories import FHIR_JSON, document_reference, patient
from tests.tokens import TokenIssuer


def _parameters(resource: dict[str, Any] | None = None, mode: str | None = None) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    if resource is not None:
        parameters.append({"name": "resource", "resource": resource})
    if mode is not None:
        parameters.append({"name": "mode", "valueCode": mode})
    return {"resourceType": "Parameters", "parameter": parameters}


def _severities(body: dict[str, Any]) -> list[str]:
    assert body["resourceType"] == "OperationOutcome"
    return [issue["severity"] for issue in body["issue"]]


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return (connection.execute(select(func.count()).select_from(patients)).scalar_one(),
                connection.execute(select(func.count()).select_from(resource_history))
                .scalar_one())


def test_valid_resource_passes_and_nothing_is_written(client: TestClient,
                                                      engine: Engine) -> None:
    for body in (patient(), _parameters(patient()), _parameters(patient(), "create")):
        response = client.post("/fhir/Patient/$validate", json=body, headers=FHIR_JSON)
        assert response.status_code == 200, response.text
        assert _severities(response.json()) == ["information"]
    assert _counts(engine) == (0, 0)


def test_invalid_resource_answers_200_with_the_errors(client: TestClient) -> None:
    response = client.post("/fhir/Patient/$validate", json=patient(birthDate="1984-13-45"),
                           headers=FHIR_JSON)
    assert response.status_code == 200
    body = response.json()
    assert "error" in _severities(body)
    assert any("birthDate" in str(issue.get("expression")) for issue in body["issue"])


def test_create_mode_finds_what_only_a_write_finds(client: TestClient, engine: Engine) -> None:
    created = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()
    mrn = next(item for item in created["identifier"] if item["system"] == "urn:prm:mrn")
    first = patient(identifier=[mrn])  # the MRN of another patient: only a write can tell
    general = client.post("/fhir/Patient/$validate", json=_parameters(first), headers=FHIR_JSON)
    as_create = client.post("/fhir/Patient/$validate", json=_parameters(first, "create"),
                            headers=FHIR_JSON)
    assert _severities(general.json()) == ["information"]
    assert "error" in _severities(as_create.json())
    assert "already belongs" in as_create.json()["issue"][0]["diagnostics"]
    assert _counts(engine)[0] == 1


def test_update_and_delete_modes_check_the_instance(client: TestClient, engine: Engine) -> None:
    created = client.post("/fhir/Patient", json=patient(), headers=FHIR_JSON).json()
    path = f"/fhir/Patient/{created['id']}/$validate"
    update = client.post(path, json=_parameters(created | {"gender": "male"}, "update"),
                         headers=FHIR_JSON)
    assert _severities(update.json()) == ["information"]
    wrong_id = client.post(path, json=_parameters(created | {"id": "other"}, "update"),
                           headers=FHIR_JSON)
    assert "error" in _severities(wrong_id.json())
    delete = client.post(path + "?mode=delete", headers=FHIR_JSON)
    assert delete.status_code == 200 and _severities(delete.json()) == ["information"]
    missing = client.post("/fhir/Patient/nobody/$validate?mode=delete", headers=FHIR_JSON)
    assert "error" in _severities(missing.json())
    read = client.get(f"/fhir/Patient/{created['id']}").json()
    assert read["meta"]["versionId"] == "1" and read["gender"] == "female"
    assert _counts(engine) == (1, 1)


def test_malformed_requests_are_400(client: TestClient) -> None:
    cases = [_parameters(patient(), "sideways"), _parameters(None, "create"),
             {"resourceType": "Parameters", "parameter": [{"name": "other"}]}]
    for body in cases:
        response = client.post("/fhir/Patient/$validate", json=body, headers=FHIR_JSON)
        assert response.status_code == 400, body
    no_instance = client.post("/fhir/Patient/$validate", json=_parameters(patient(), "update"),
                              headers=FHIR_JSON)
    assert no_instance.status_code == 400


def test_other_types_and_unknown_profiles(client: TestClient) -> None:
    response = client.post("/fhir/DocumentReference/$validate", json=document_reference(),
                           headers=FHIR_JSON)
    assert _severities(response.json()) == ["information"]
    profiled = client.post("/fhir/Patient/$validate?profile=http://example.org/fhir/x",
                           json=patient(), headers=FHIR_JSON)
    assert _severities(profiled.json()) == ["information", "warning"]
    assert client.post("/fhir/AuditEvent/$validate", json={},
                       headers=FHIR_JSON).status_code == 404


def test_validate_needs_the_scope_of_the_write_it_checks(secured_client: TestClient,
                                                         token_issuer: TokenIssuer) -> None:
    reader = FHIR_JSON | token_issuer.headers("user/Patient.rs")
    writer = FHIR_JSON | token_issuer.headers("user/Patient.c")
    assert secured_client.post("/fhir/Patient/$validate", json=patient(),
                               headers=reader).status_code == 403
    assert secured_client.post("/fhir/Patient/$validate", json=patient(),
                               headers=writer).status_code == 200
