"""Microsoft FHIR server request fixtures (shared data edge-cases/microsoft-fhir-server/), sent
as raw bytes: several start with a UTF-8 byte-order mark on purpose. Whatever the verdict, the
answer is clean (a status below 500, an OperationOutcome for an error), never a 500.
https://hl7.org/fhir/R4/json.html, https://hl7.org/fhir/R4/http.html#create"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SHARED_DATA
from tests.factories import FHIR_JSON, issue_codes, without_server_elements

FIXTURES_DIR = "edge-cases/microsoft-fhir-server"
BOM = b"\xef\xbb\xbf"


def _fixture_files() -> list[str]:
    return sorted(path.name for path in (SHARED_DATA / FIXTURES_DIR).glob("*.json"))


def _raw(shared_data: Path, file_name: str) -> bytes:
    return (shared_data / FIXTURES_DIR / file_name).read_bytes()


def _parsed(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw.decode("utf-8-sig"))
    return data


def _type_history_total(client: TestClient) -> int:
    response = client.get("/fhir/Patient/_history")
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def _outcome_text(body: dict[str, Any]) -> str:
    """Diagnostics and expressions of every issue, for looking up element names."""
    return " ".join(
        [issue.get("diagnostics", "") for issue in body["issue"]]
        + [expr for issue in body["issue"] for expr in issue.get("expression", [])]
    )


def test_bom_fixtures_are_present(shared_data: Path) -> None:
    with_bom = [name for name in _fixture_files() if _raw(shared_data, name).startswith(BOM)]
    assert "PatientWithUnknownElements.json" in with_bom
    assert "PatientMissingResourceType.json" in with_bom


def test_unknown_element_is_400_naming_it(client: TestClient, shared_data: Path) -> None:
    response = client.post("/fhir/Patient",
                           content=_raw(shared_data, "PatientWithUnknownElements.json"),
                           headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    assert issue_codes(response.json())
    assert "name1" in _outcome_text(response.json()), response.json()


def test_unknown_elements_refused_store_nothing(client: TestClient, shared_data: Path) -> None:
    client.post("/fhir/Patient", content=_raw(shared_data, "PatientWithUnknownElements.json"),
                headers=FHIR_JSON)
    assert _type_history_total(client) == 0


def test_missing_resource_type_is_400_operation_outcome(
    client: TestClient, shared_data: Path
) -> None:
    response = client.post("/fhir/Patient",
                           content=_raw(shared_data, "PatientMissingResourceType.json"),
                           headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    assert issue_codes(response.json())
    assert "resourceType" in _outcome_text(response.json())
    assert _type_history_total(client) == 0


def test_missing_resource_type_put_is_400(client: TestClient, shared_data: Path) -> None:
    response = client.put("/fhir/Patient/example",
                          content=_raw(shared_data, "PatientMissingResourceType.json"),
                          headers=FHIR_JSON)
    assert response.status_code == 400, response.text
    assert issue_codes(response.json())
    assert client.get("/fhir/Patient/example").status_code == 404


def test_us_core_patient_is_201_and_reads_back_unchanged(
    client: TestClient, shared_data: Path
) -> None:
    raw = _raw(shared_data, "Profile-Patient-uscore.json")
    response = client.post("/fhir/Patient", content=raw, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    read = client.get(f"/fhir/Patient/{response.json()['id']}")
    assert read.status_code == 200
    assert without_server_elements(read.json()) == without_server_elements(_parsed(raw))


def test_us_core_patient_with_bom_is_201(client: TestClient, shared_data: Path) -> None:
    raw = _raw(shared_data, "Profile-Patient-uscore.json")
    response = client.post("/fhir/Patient", content=BOM + raw, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    read = client.get(f"/fhir/Patient/{response.json()['id']}")
    assert without_server_elements(read.json()) == without_server_elements(_parsed(raw))


def _endpoint(raw: bytes) -> str:
    """Where the fixture goes: Bundles to the base, the rest to their type (an empty
    resourceType, as in PatientMissingResourceType.json, to Patient)."""
    resource_type = _parsed(raw).get("resourceType") or "Patient"
    return "/fhir" if resource_type == "Bundle" else f"/fhir/{resource_type}"


@pytest.mark.parametrize("file_name", _fixture_files())
def test_fixture_posted_raw_gets_a_clean_answer(
    client: TestClient, shared_data: Path, file_name: str
) -> None:
    raw = _raw(shared_data, file_name)
    response = client.post(_endpoint(raw), content=raw, headers=FHIR_JSON)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert issue_codes(response.json())
