"""Reference search across servers (https://hl7.org/fhir/R4/search.html#reference): an
absolute URL of another server names that server's resource, so a local value (``Type/id``,
``id`` or this server's own absolute URL) never matches it, and its own URL matches only it."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.factories import FHIR_JSON

OTHER = "http://other.example.org/fhir/Practitioner/pr9"
OURS = "http://testserver/fhir/Practitioner/pr9"
URN = "urn:uuid:8a0f3c2e-3f0d-4a55-9d6c-2f1a4b6c7d8e"


def _patient(client: TestClient, family: str, practitioner: str) -> str:
    response = client.post("/fhir/Patient", headers=FHIR_JSON, json={
        "resourceType": "Patient", "name": [{"family": family}],
        "generalPractitioner": [{"reference": practitioner}]})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def patients(client: TestClient) -> dict[str, str]:
    return {"local": _patient(client, "Local", "Practitioner/pr9"),
            "ours": _patient(client, "Ours", OURS),
            "other": _patient(client, "Other", OTHER),
            "versioned": _patient(client, "Versioned", "Practitioner/pr9/_history/2"),
            "urn": _patient(client, "Urn", URN)}


@pytest.mark.parametrize(("value", "expected"), [
    ("Practitioner/pr9", {"local", "ours", "versioned"}),
    ("pr9", {"local", "ours", "versioned"}),
    ("Practitioner/pr9&_format=json", {"local", "ours", "versioned"}),
    (OURS, {"local", "ours", "versioned"}),
    (URN, {"urn"}),
    ("urn:uuid:00000000-0000-4000-8000-000000000000", set()),
    (OTHER, {"other"}),
    ("http://third.example.org/fhir/Practitioner/pr9", set()),
])
def test_reference_values_respect_the_server_they_name(
        client: TestClient, patients: dict[str, str], value: str, expected: set[str]) -> None:
    response = client.get(f"/fhir/Patient?general-practitioner={value}")
    assert response.status_code == 200, response.text
    found = {entry["resource"]["id"] for entry in response.json().get("entry", [])}
    assert found == {patients[name] for name in expected}
