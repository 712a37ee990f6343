"""Bulk send: one CommunicationRequest to ``--recipients`` patients (default 1000), sent as SMS
through the ``twilio`` library to a local HTTP server speaking Twilio's Messages API.

    .venv/bin/python -m benchmarks.messaging --database-url postgresql+psycopg://... \\
        [--recipients 1000] [--runs 3]

In-process (ASGI) on the given database (the server's tables are created by its migrations;
nothing is emptied): it creates the patients once, then per run times the order's POST (the
write-time check reads every recipient), the fan-out until every message is queued in the
outbox, and the delivery until the local endpoint has received every message. Targets: queued
in < 1 s, delivered in < 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx

from benchmarks.report import format_table
from fhir_server.app import create_app
from fhir_server.messaging.dispatcher import PassReport
from fhir_server.settings import Settings
from terminology.messaging import MESSAGE_CHANNEL
from tests.twilio_server import TwilioServer, running_twilio_server

HEADERS = {"Content-Type": "application/fhir+json"}
QUEUED_TARGET = 1.0
DELIVERED_TARGET = 10.0


async def _patients(http: httpx.AsyncClient, count: int) -> list[str]:
    prefix = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(8)

    async def one(number: int) -> str:
        patient_id = f"{prefix}-{number}"
        async with gate:
            response = await http.put(f"/fhir/Patient/{patient_id}", headers=HEADERS, json={
                "resourceType": "Patient", "id": patient_id,
                "name": [{"family": "Bulk", "given": [f"P{number}"]}],
                "telecom": [{"system": "phone", "value": f"+1617{number // 10000 % 8 + 2}55"
                             f"{number % 10000:04d}", "use": "mobile"}]})
        if response.status_code != 201:
            raise RuntimeError(response.text[:300])
        return patient_id

    return list(await asyncio.gather(*(one(number) for number in range(count))))


def _order(patients: list[str], run: int) -> dict[str, object]:
    return {"resourceType": "CommunicationRequest", "status": "active",
            "medium": [{"coding": [{"system": MESSAGE_CHANNEL, "code": "sms"}]}],
            "recipient": [{"reference": f"Patient/{patient}"} for patient in patients],
            "payload": [{"contentString": f"Bulk benchmark message, run {run}"}]}


async def measure(database_url: str, recipients: int, runs: int,
                  twilio: TwilioServer) -> list[list[str]]:
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp()), database_url=database_url, hash_key="messaging",
        base_url="http://bench/fhir", messaging_worker=False, messaging_channels="sms",
        twilio_account_sid=twilio.account_sid, twilio_auth_token=twilio.auth_token,
        twilio_from_number=twilio.sms_from, twilio_api_base=twilio.url)
    app = create_app(settings, migrate=True)
    rows: list[list[str]] = []
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=900) as http:
        dispatcher = app.state.services.dispatcher
        patients = await _patients(http, recipients)
        for run in range(1, runs + 1):
            await dispatcher.run_once()  # nothing of an earlier run left due
            received_before = len(twilio.messages)
            started = time.perf_counter()
            response = await http.post("/fhir/CommunicationRequest", headers=HEADERS,
                                       json=_order(patients, run))
            accepted = time.perf_counter()
            if response.status_code != 201:
                raise RuntimeError(response.text[:300])
            report = PassReport()
            await dispatcher.fan_out_due(report)
            queued = time.perf_counter()
            await dispatcher.deliver_due(report)
            delivered = time.perf_counter()
            received = len(twilio.messages) - received_before
            if report.queued != recipients or received != recipients:
                raise RuntimeError(f"run {run}: {report.queued} queued, {received} received")
            queue_seconds, deliver_seconds = queued - accepted, delivered - accepted
            rows.append([
                str(run), f"{recipients:,}", f"{accepted - started:.2f} s",
                f"{queue_seconds:.2f} s", f"{deliver_seconds:.2f} s",
                f"{recipients / (delivered - queued):,.0f}",
                "met" if queue_seconds < QUEUED_TARGET else "NOT met",
                "met" if deliver_seconds < DELIVERED_TARGET else "NOT met"])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.messaging",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args(argv)
    with running_twilio_server() as twilio:
        rows = asyncio.run(measure(arguments.database_url, arguments.recipients,
                                   arguments.runs, twilio))
    print(format_table(
        ["run", "recipients", "order POST", "queued", "delivered", "sent/s", "queued < 1 s",
         "delivered < 10 s"], rows, left={0}))
    print("queued and delivered are counted from the accepted POST; sent/s over delivery only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
