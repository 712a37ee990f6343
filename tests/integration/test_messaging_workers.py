"""Several dispatchers on one database, as several ``fhir-server worker`` processes run them:
each with its own engine and worker id, racing over the same requests and outbox rows. No
request is fanned out twice and no message is sent twice."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import datetime

from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from fhir_server.messaging.channels.base import OutgoingMessage, SendReceipt
from fhir_server.messaging.dispatcher import Dispatcher
from fhir_server.messaging.setup import build_dispatcher
from fhir_server.settings import Settings
from mappings.patient import MappingContext
from storage.crypto import load_cipher
from storage.database import create_engine, open_patient_rows
from storage.messaging_tables import message_deliveries, outbound_notifications
from storage.patient_repository import PatientRepository
from storage.search_pages import SearchCatalog
from storage.template_store import TemplateStore
from terminology.messaging import CHANNELS
from tests.integration.messaging_helpers import create_patient, post_order, send_order


class RecordingChannel:
    """A channel that takes a little time per message and remembers every send."""

    def __init__(self, name: str, sends: Counter[str], lock: threading.Lock) -> None:
        self.name = name
        self._sends = sends
        self._lock = lock

    def send(self, message: OutgoingMessage) -> SendReceipt:
        time.sleep(0.002)
        with self._lock:
            self._sends[message.idempotency_key] += 1
        return SendReceipt(f"SM{message.idempotency_key}", "sent")

    def find_sent(self, message: OutgoingMessage, since: datetime) -> SendReceipt | None:
        return None


async def _keep_dispatching(dispatcher: Dispatcher, sends: Counter[str], expected: int) -> None:
    """Passes until every expected message went out, as a worker's loop would run them."""
    deadline = time.monotonic() + 60
    while len(sends) < expected and time.monotonic() < deadline:
        await dispatcher.run_once()
        await asyncio.sleep(0.005)
    await dispatcher.run_once()


async def _race(settings: Settings, workers: int, sends: Counter[str], expected: int) -> None:
    lock = threading.Lock()
    opened = []
    dispatchers: list[Dispatcher] = []
    for _ in range(workers):
        engine = create_engine(settings)
        rows = await open_patient_rows(settings, engine)
        context = MappingContext(cipher=load_cipher(settings), phone_region="US",
                                 mrn_system=settings.mrn_system)
        patients = PatientRepository(engine, rows, context, SearchCatalog())
        channels = {name: RecordingChannel(name, sends, lock) for name in CHANNELS}
        dispatchers.append(build_dispatcher(settings, engine, templates=TemplateStore(engine),
                                            patients=patients.resources,
                                            channels=channels,  # type: ignore[arg-type]
                                            clock=lambda: datetime.now().astimezone()))
        opened.append((rows, engine))
    try:
        await asyncio.gather(*(_keep_dispatching(dispatcher, sends, expected)
                               for dispatcher in dispatchers))
    finally:
        for rows, engine in opened:
            await rows.close()
            await engine.dispose()


def test_racing_workers_send_every_message_once(client: TestClient, settings: Settings,
                                                engine: Engine) -> None:
    patients = [create_patient(client, given=f"P{index}", family="Racer",
                               phone=f"+1617555{index:04d}") for index in range(60)]
    requests = [post_order(client, send_order(patients, text=f"Message {number}"))
                for number in range(5)]
    sends: Counter[str] = Counter()

    asyncio.run(_race(settings, 3, sends, 300))

    assert len(sends) == 300
    assert set(sends.values()) == {1}
    with engine.connect() as connection:
        per_request = dict(connection.execute(
            select(outbound_notifications.c.request_id, func.count())
            .group_by(outbound_notifications.c.request_id)).tuples().all())
        states = Counter(row[0] for row in connection.execute(
            select(message_deliveries.c.state)))
        workers = {row[0] for row in connection.execute(select(message_deliveries.c.worker))}
    assert per_request == {request_id: 60 for request_id in requests}
    assert states == Counter({"sent": 300})
    if engine.dialect.name == "postgresql":  # SQLite's single writer may let one take all
        assert len(workers) >= 2, "the workers did not share the outbox"
    assert {client.get(f"/fhir/CommunicationRequest/{request_id}").json()["status"]
            for request_id in requests} == {"completed"}
