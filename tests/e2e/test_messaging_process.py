"""Messaging in real processes: the dispatcher inside ``fhir-server serve`` sends a request as
soon as it is written, and ``fhir-server worker --once`` drains what a server with its
dispatcher turned off has queued."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.conftest import TEST_ENCRYPTION_KEYS, TEST_HASH_KEY, empty_tables
from tests.e2e.server_process import _command, running_server
from tests.integration.messaging_helpers import send_order

pytestmark = pytest.mark.e2e
FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _patient(base: str) -> str:
    response = httpx.post(f"{base}/fhir/Patient", headers=FHIR_JSON, json={
        "resourceType": "Patient", "name": [{"family": "Lovelace", "given": ["Ada"]}],
        "telecom": [{"system": "phone", "value": "+16175550100", "use": "mobile"}]})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _statuses(base: str, request_id: str) -> list[str]:
    bundle = httpx.get(f"{base}/fhir/Communication",
                       params={"based-on": f"CommunicationRequest/{request_id}"}).json()
    return [entry["resource"]["status"] for entry in bundle.get("entry", [])]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_served_process_sends_a_request_at_once(backend: str, tmp_path: Path,
                                                database_urls: dict[str, str]) -> None:
    with running_server(backend, tmp_path, database_urls,
                        {"FHIR_MESSAGING_POLL_SECONDS": "60"}) as server:
        patient = _patient(server.base)
        response = httpx.post(f"{server.base}/fhir/CommunicationRequest", headers=FHIR_JSON,
                              json=send_order([patient]))
        assert response.status_code == 201, response.text
        request_id = response.json()["id"]
        deadline = time.monotonic() + 10
        while _statuses(server.base, request_id) != ["completed"]:
            assert time.monotonic() < deadline, _statuses(server.base, request_id)
            time.sleep(0.1)
        request = httpx.get(f"{server.base}/fhir/CommunicationRequest/{request_id}").json()
        assert request["status"] == "completed"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_worker_once_drains_what_is_due(backend: str, tmp_path: Path,
                                        database_urls: dict[str, str],
                                        sync_engines: dict[str, Engine]) -> None:
    if backend in sync_engines:
        empty_tables(sync_engines[backend])  # other tests leave due requests behind
    environment = {"FHIR_MESSAGING_WORKER": "false"}
    with running_server(backend, tmp_path, database_urls, environment) as server:
        patient = _patient(server.base)
        response = httpx.post(f"{server.base}/fhir/CommunicationRequest", headers=FHIR_JSON,
                              json=send_order([patient, patient]))
        request_id = response.json()["id"]
        time.sleep(0.5)
        assert _statuses(server.base, request_id) == []

        worker = subprocess.run(
            [*_command(), "worker", "--once"], check=False, capture_output=True, text=True,
            timeout=120,
            env=os.environ | {"FHIR_DATA_DIR": str(tmp_path),
                              "FHIR_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS,
                              "FHIR_HASH_KEY": TEST_HASH_KEY, "FHIR_LOG_LEVEL": "warning"}
            | ({"FHIR_DATABASE_URL": database_urls["postgresql"]}
               if backend == "postgresql" else {}))

        assert worker.returncode == 0, worker.stderr
        assert "requests fanned out 1, messages queued 2" in worker.stdout
        assert _statuses(server.base, request_id) == ["completed", "completed"]
