"""End to end on PostgreSQL with real ``fhir-server`` processes: a server killed in the middle
of a large transaction leaves nothing of it; two servers with 32 clients updating the same
patients with If-Match lose no update and keep versions contiguous."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine

from storage.database import sync_url
from storage.messaging_tables import outbound_notifications
from storage.tables import patients, resource_history
from tests.conftest import empty_tables
from tests.e2e.server_process import running_server
from tests.factories import FHIR_JSON, communication, patient

pytestmark = pytest.mark.e2e


@pytest.fixture
def postgres(database_urls: dict[str, str]) -> Iterator[Engine]:
    if "postgresql" not in database_urls:
        pytest.skip("PostgreSQL tests need FHIR_TEST_POSTGRES_URL")
    engine = create_engine(sync_url(database_urls["postgresql"]))
    empty_tables(engine)
    yield engine
    engine.dispose()


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _writing_transactions(engine: Engine) -> int:
    """Other sessions on this database holding an open transaction that has written."""
    with engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL")).scalar_one())


def test_a_server_killed_during_a_large_transaction_leaves_nothing(
        postgres: Engine, tmp_path: Path, database_urls: dict[str, str]) -> None:
    entries: list[dict[str, Any]] = []
    for index in range(1500):
        entries.append({"fullUrl": f"urn:uuid:p{index}", "resource": patient(
            identifier=[{"system": "urn:x", "value": str(index)}]),
            "request": {"method": "POST", "url": "Patient"}})
        entries.append({"resource": communication(basedOn=None, subject={
            "reference": f"urn:uuid:p{index}"}), "request": {"method": "POST",
                                                             "url": "Communication"}})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    outcome: dict[str, Any] = {}

    with running_server("postgresql", tmp_path / "var", database_urls) as server:
        def send() -> None:
            try:
                outcome["response"] = httpx.post(f"{server.base}/fhir", json=bundle,
                                                 headers=FHIR_JSON, timeout=300)
            except httpx.HTTPError as error:
                outcome["error"] = error

        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 120
        while _writing_transactions(postgres) == 0:
            assert time.monotonic() < deadline, "the transaction never started writing"
            assert sender.is_alive(), f"the transaction ended first: {outcome}"
            time.sleep(0.05)
        time.sleep(0.5)  # well inside it
        os.killpg(server.pid, signal.SIGKILL)
        sender.join()
    assert "error" in outcome, outcome
    with running_server("postgresql", tmp_path / "var", database_urls) as restarted:
        assert httpx.get(f"{restarted.base}/fhir/Patient?_summary=count",
                         headers=FHIR_JSON).json()["total"] == 0
    assert count(postgres, patients) == 0
    assert count(postgres, outbound_notifications) == 0
    assert count(postgres, resource_history) == 0


def test_two_servers_and_32_clients_with_if_match_lose_no_update(
        postgres: Engine, tmp_path: Path, database_urls: dict[str, str]) -> None:
    patient_ids = [f"race-{number}" for number in range(4)]
    accepted: Counter[str] = Counter()
    markers: dict[str, set[str]] = {patient_id: set() for patient_id in patient_ids}
    refused: Counter[int] = Counter()
    lock = threading.Lock()
    with running_server("postgresql", tmp_path / "one", database_urls) as first, \
            running_server("postgresql", tmp_path / "two", database_urls) as second:
        for patient_id in patient_ids:
            created = httpx.put(f"{first.base}/fhir/Patient/{patient_id}",
                                json=patient(id=patient_id), headers=FHIR_JSON)
            assert created.status_code == 201

        def client(number: int) -> None:
            base = (first if number % 2 else second).base
            with httpx.Client(base_url=base, headers=FHIR_JSON, timeout=60) as http:
                for attempt in range(6):
                    patient_id = patient_ids[(number + attempt) % len(patient_ids)]
                    current = http.get(f"/fhir/Patient/{patient_id}")
                    marker = f"client-{number}-{attempt}"
                    body = current.json() | {"name": [{"family": "Race", "text": marker}]}
                    response = http.put(f"/fhir/Patient/{patient_id}", json=body,
                                        headers={"If-Match": current.headers["etag"]})
                    with lock:
                        if response.status_code == 200:
                            accepted[patient_id] += 1
                            markers[patient_id].add(marker)
                        else:
                            refused[response.status_code] += 1

        threads = [threading.Thread(target=client, args=(number,)) for number in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for patient_id in patient_ids:
            history = httpx.get(f"{first.base}/fhir/Patient/{patient_id}/_history?_count=1000",
                                headers=FHIR_JSON).json()
            versions = sorted(int(entry["resource"]["meta"]["versionId"])
                              for entry in history["entry"])
            assert versions == list(range(1, accepted[patient_id] + 2)), patient_id
            written = {entry["resource"]["name"][0].get("text") for entry in history["entry"]}
            assert markers[patient_id] <= written, patient_id
    assert set(refused) <= {412}, refused
    assert sum(accepted.values()) + sum(refused.values()) == 32 * 6
