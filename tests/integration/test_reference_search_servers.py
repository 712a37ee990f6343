"""Reference search across servers (https://hl7.org/fhir/R4/search.html#reference): an
absolute URL of another server names that server's resource, so a local value (``Type/id``,
``id`` or this server's own absolute URL) never matches it, and its own URL matches only it."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.factories import FHIR_JSON

OTHER = "http://other.example.org/fhir/Practitioner/pr9"
OURS = "http://testserver/fhir/Practitioner/pr9"


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
            "other": _patient(client, "Other", OTHER)}


@pytest.mark.parametrize(("value", "expected"), [
    ("Practitioner/pr9", {"local", "ours"}),
    ("pr9", {"local", "ours"}),
    ("Practitioner/pr9&_format=json", {"local", "ours"}),
    (OURS, {"local", "ours"}),
    (OTHER, {"other"}),
    ("http://third.example.org/fhir/Practitioner/pr9", set()),
])
def test_reference_values_respect_the_server_they_name(
        client: TestClient, patients: dict[str, str], value: str, expected: set[str]) -> None:
    response = client.get(f"/fhir/Patient?general-practitioner={value}")
    assert response.status_code == 200, response.text
    found = {entry["resource"]["id"] for entry in response.json().get("entry", [])}
    assert found == {patients[name] for name in expected}
