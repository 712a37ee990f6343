"""A worker process killed between sending and recording: the local Twilio API kills the
``fhir-server worker`` process (SIGKILL) the moment it has taken the message, before it
answers. Once the claim's lease has run out, the next worker asks Twilio whether the message
went out, finds it, and records it: Twilio received one request, not two."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from starlette.testclient import TestClient

from fhir_server.app import create_app
from fhir_server.settings import Settings
from storage.messaging_tables import message_deliveries
from tests.conftest import TEST_ENCRYPTION_KEYS, TEST_HASH_KEY, empty_tables
from tests.e2e.server_process import _command
from tests.integration.messaging_helpers import (
    create_patient,
    messages_of,
    post_order,
    send_order,
)
from tests.twilio_server import ReceivedMessage, TwilioServer

pytestmark = pytest.mark.e2e


def _worker_environment(database_url: str, data_dir: Path,
                        twilio_server: TwilioServer) -> dict[str, str]:
    return os.environ | twilio_server.environment() | {
        "FHIR_DATABASE_URL": database_url, "FHIR_DATA_DIR": str(data_dir),
        "FHIR_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS, "FHIR_HASH_KEY": TEST_HASH_KEY,
        "FHIR_MESSAGING_CHANNELS": "sms", "FHIR_MESSAGING_LEASE_SECONDS": "2",
        "FHIR_MESSAGING_POLL_SECONDS": "0.2", "FHIR_LOG_LEVEL": "warning"}


def _state(engine: Engine) -> tuple[str, str | None]:
    with engine.connect() as connection:
        row = connection.execute(select(message_deliveries.c.state,
                                        message_deliveries.c.provider_message_id)).one()
    return row[0], row[1]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_worker_killed_after_sending_is_not_followed_by_a_second_send(
        backend: str, tmp_path: Path, database_urls: dict[str, str],
        sync_engines: dict[str, Engine], twilio_server: TwilioServer) -> None:
    if backend not in database_urls:
        pytest.skip("PostgreSQL tests need FHIR_TEST_POSTGRES_URL")
    engine = sync_engines[backend]
    empty_tables(engine)
    settings = Settings(data_dir=tmp_path, database_url=database_urls[backend],
                        encryption_keys=TEST_ENCRYPTION_KEYS, hash_key=TEST_HASH_KEY,
                        messaging_worker=False)
    with TestClient(create_app(settings, migrate=False)) as client:
        patient = create_patient(client, given="Ada", family="Lovelace", phone="+16175550100")
        request_id = post_order(client, send_order([patient], text="Your results are ready"))
    environment = _worker_environment(database_urls[backend], tmp_path, twilio_server)

    worker = subprocess.Popen([*_command(), "worker"], env=environment,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def kill_the_worker(_message: ReceivedMessage) -> None:
        os.kill(worker.pid, signal.SIGKILL)

    twilio_server.on_receive = kill_the_worker
    try:
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == -signal.SIGKILL
    [sent] = twilio_server.messages
    assert _state(engine) == ("sending", None)

    twilio_server.on_receive = None
    time.sleep(2.5)  # the dead worker's lease runs out
    again = subprocess.run([*_command(), "worker", "--once"], env=environment, check=False,
                           capture_output=True, text=True, timeout=120)

    assert again.returncode == 0, again.stderr
    assert twilio_server.post_count == 1
    assert _state(engine) == ("sent", sent.sid)
    with TestClient(create_app(settings, migrate=False)) as client:
        [message] = messages_of(client, request_id)
    assert message["status"] == "completed"
    assert {"system": "urn:prm:provider-message-id", "value": sent.sid} in message["identifier"]


def test_two_worker_processes_on_postgresql_send_each_message_once(
        tmp_path: Path, database_urls: dict[str, str], sync_engines: dict[str, Engine],
        twilio_server: TwilioServer) -> None:
    if "postgresql" not in database_urls:
        pytest.skip("PostgreSQL tests need FHIR_TEST_POSTGRES_URL")
    engine = sync_engines["postgresql"]
    empty_tables(engine)
    settings = Settings(data_dir=tmp_path, database_url=database_urls["postgresql"],
                        encryption_keys=TEST_ENCRYPTION_KEYS, hash_key=TEST_HASH_KEY,
                        messaging_worker=False)
    order = send_order([{"reference": f"#r{index}"} for index in range(400)])
    order["contained"] = [{"resourceType": "RelatedPerson", "id": f"r{index}",
                           "patient": {"reference": "Patient/unknown"},
                           "telecom": [{"system": "phone", "value": f"+1617555{index:04d}"}]}
                          for index in range(400)]
    with TestClient(create_app(settings, migrate=False)) as client:
        response = client.post("/fhir/CommunicationRequest", json=order,
                               headers={"Content-Type": "application/fhir+json"})
        assert response.status_code == 201, response.text
    environment = _worker_environment(database_urls["postgresql"], tmp_path, twilio_server)

    workers = [subprocess.Popen([*_command(), "worker"], env=environment,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(2)]
    try:
        deadline = time.monotonic() + 90
        while len(twilio_server.messages) < 400 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # anything sent twice would arrive now
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)

    numbers = [message.to for message in twilio_server.messages]
    assert len(numbers) == 400 and len(set(numbers)) == 400
    assert twilio_server.post_count == 400
    with engine.connect() as connection:
        workers_seen = {row[0] for row in connection.execute(
            select(message_deliveries.c.worker))}
    assert len(workers_seen) == 2, "both processes took part"
    assert all(worker.returncode == 0 for worker in workers)
