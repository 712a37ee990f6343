"""End to end: the real ``fhir-server`` process (CLI, migrations, uvicorn) over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server_process import running_server
from tests.factories import FHIR_JSON, patient, without_server_elements

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path,
           database_urls: dict[str, str]) -> Iterator[str]:
    """A running server on the backend; yields its base URL."""
    with running_server(request.param, tmp_path / "var", database_urls) as running:
        yield running.base


def test_served_process_creates_reads_updates_and_deletes(server: str) -> None:
    with httpx.Client(base_url=server, headers=FHIR_JSON, timeout=10) as http:
        metadata = http.get("/fhir/metadata")
        assert metadata.status_code == 200
        assert metadata.json()["fhirVersion"] == "4.0.1"

        created = http.post("/fhir/Patient", json=patient())
        assert created.status_code == 201
        location = created.headers["location"]
        assert location.startswith(f"{server}/fhir/Patient/")
        body = created.json()

        read = http.get(f"/fhir/Patient/{body['id']}")
        assert read.status_code == 200 and read.headers["etag"] == 'W/"1"'
        assert without_server_elements(read.json()) == patient()

        updated = http.put(f"/fhir/Patient/{body['id']}", json=body | {"gender": "other"},
                           headers={"If-Match": 'W/"1"'})
        assert updated.status_code == 200 and updated.headers["etag"] == 'W/"2"'

        assert http.delete(f"/fhir/Patient/{body['id']}").status_code == 204
        assert http.get(f"/fhir/Patient/{body['id']}").status_code == 410
        history = http.get(f"/fhir/Patient/{body['id']}/_history").json()
        assert [entry["request"]["method"] for entry in history["entry"]] == [
            "DELETE", "PUT", "POST"]


def test_served_process_answers_bad_input_with_operation_outcome(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        response = http.post("/fhir/Patient", content=b"{not json",
                             headers={"Content-Type": "application/fhir+json"})
        assert response.status_code == 400
        assert response.json()["resourceType"] == "OperationOutcome"
        missing = http.get("/fhir/Patient/a/b/c/d")
        assert missing.status_code == 404
        assert missing.json()["resourceType"] == "OperationOutcome"
