"""End to end: the real ``fhir-server`` process (CLI, migrations, uvicorn) over real HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_ENCRYPTION_KEYS, TEST_HASH_KEY
from tests.factories import FHIR_JSON, patient, without_server_elements

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _command() -> list[str]:
    script = shutil.which("fhir-server", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "fhir_server.cli"]


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path,
           database_urls: dict[str, str]) -> Iterator[str]:
    """A running server on the backend; yields its base URL."""
    if request.param not in database_urls:
        pytest.skip("PostgreSQL tests need FHIR_TEST_POSTGRES_URL")
    environment = os.environ | {
        "FHIR_DATA_DIR": str(tmp_path / "var"),
        "FHIR_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS,
        "FHIR_HASH_KEY": TEST_HASH_KEY,
        "FHIR_LOG_LEVEL": "warning",
    }
    if request.param == "postgresql":
        environment["FHIR_DATABASE_URL"] = database_urls["postgresql"]
        subprocess.run([*_command(), "migrate"], env=environment, check=True,
                       capture_output=True, timeout=120)
    else:
        environment.pop("FHIR_DATABASE_URL", None)
    port = _free_port()
    process = subprocess.Popen(
        [*_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"fhir-server exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("fhir-server did not become ready within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


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
