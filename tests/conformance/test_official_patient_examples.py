"""Official R4 Patient examples and Synthea Patients survive a write and a read unchanged.

Every official example is valid R4 (https://hl7.org/fhir/R4/patient-examples.html), so create
(https://hl7.org/fhir/R4/http.html#create) and update-as-create (http.html#update) must accept
it, and a read must return what was written apart from the server-set elements: ``id`` on
create, ``meta.versionId``, ``meta.lastUpdated`` and the generated MRN identifier; a search
returns the same Patient as the read. Phones that do
not parse as numbers of the default region are kept as sent, never refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SHARED_DATA
from tests.factories import FHIR_JSON, without_server_elements

EXAMPLES_DIR = "fhir-r4-examples"
NDJSON_DIR = "synthea/ndjson"
ORIGINAL_BUNDLES_DIR = "synthea/original"
MORE_PATIENTS_FILE = "Patient-100-more.ndjson"
MORE_PATIENTS_TAKEN = 15


def _example_files() -> list[str]:
    return sorted(path.name for path in (SHARED_DATA / EXAMPLES_DIR).glob("Patient-*.json"))


def _ndjson_lines() -> list[tuple[str, int]]:
    """(file, line index) of the Patients to try: the first lines of the 100-patient export
    and every line of the other Patient exports."""
    chosen: list[tuple[str, int]] = []
    for path in sorted((SHARED_DATA / NDJSON_DIR).glob("Patient*.ndjson")):
        count = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        if path.name == MORE_PATIENTS_FILE:
            count = min(count, MORE_PATIENTS_TAKEN)
        chosen.extend((path.name, index) for index in range(count))
    return chosen


def _original_bundles() -> list[str]:
    return sorted(path.name for path in (SHARED_DATA / ORIGINAL_BUNDLES_DIR).glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _ndjson_patient(shared_data: Path, file_name: str, index: int) -> dict[str, Any]:
    lines = [line for line in (shared_data / NDJSON_DIR / file_name)
             .read_text(encoding="utf-8").splitlines() if line.strip()]
    resource: dict[str, Any] = json.loads(lines[index])
    assert resource["resourceType"] == "Patient"
    return resource


def _bundle_patient(shared_data: Path, file_name: str) -> dict[str, Any]:
    bundle = _load(shared_data / ORIGINAL_BUNDLES_DIR / file_name)
    patients = [entry["resource"] for entry in bundle["entry"]
                if entry.get("resource", {}).get("resourceType") == "Patient"]
    assert len(patients) == 1, f"{file_name} holds {len(patients)} Patients"
    return patients[0]


def _assert_post_then_read_round_trips(client: TestClient, sent: dict[str, Any]) -> None:
    response = client.post("/fhir/Patient", json=sent, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    created = response.json()
    read = client.get(f"/fhir/Patient/{created['id']}")
    assert read.status_code == 200, read.text
    assert read.json() == created
    assert without_server_elements(read.json()) == without_server_elements(sent)
    # a search page builds its resources from fewer columns (PostgreSQL): the same Patient
    found = client.get(f"/fhir/Patient?_id={created['id']}").json()
    assert [entry["resource"] for entry in found["entry"]] == [created]


@pytest.mark.parametrize("file_name", _example_files())
def test_official_example_created_by_post_reads_back_unchanged(
    client: TestClient, shared_data: Path, file_name: str
) -> None:
    _assert_post_then_read_round_trips(client, _load(shared_data / EXAMPLES_DIR / file_name))


@pytest.mark.parametrize("file_name", _example_files())
def test_official_example_put_to_its_own_id_is_201_and_reads_back_unchanged(
    client: TestClient, shared_data: Path, file_name: str
) -> None:
    sent = _load(shared_data / EXAMPLES_DIR / file_name)
    response = client.put(f"/fhir/Patient/{sent['id']}", json=sent, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == sent["id"]
    read = client.get(f"/fhir/Patient/{sent['id']}")
    assert read.status_code == 200, read.text
    assert read.json()["id"] == sent["id"]
    assert without_server_elements(read.json()) == without_server_elements(sent)


def test_official_examples_are_all_present(shared_data: Path) -> None:
    assert len(_example_files()) == 22


@pytest.mark.parametrize(("file_name", "index"), _ndjson_lines(),
                         ids=[f"{name}:{index}" for name, index in _ndjson_lines()])
def test_synthea_bulk_export_patient_reads_back_unchanged(
    client: TestClient, shared_data: Path, file_name: str, index: int
) -> None:
    _assert_post_then_read_round_trips(client, _ndjson_patient(shared_data, file_name, index))


@pytest.mark.parametrize("file_name", _original_bundles())
def test_synthea_original_bundle_patient_reads_back_unchanged(
    client: TestClient, shared_data: Path, file_name: str
) -> None:
    _assert_post_then_read_round_trips(client, _bundle_patient(shared_data, file_name))
