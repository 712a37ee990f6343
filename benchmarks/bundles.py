"""Transaction Bundles: resources/s for Bundles of 100 Patients and of mixed Patient +
DocumentReference + Communication entries, next to the raw insert rate of the same Patient
rows (the mapping, then COPY into every table in one transaction, no HTTP, no checks).

    .venv/bin/python -m benchmarks.bundles --database-url postgresql+psycopg://... \\
        [--bundles 20] [--size 100] [--clients 1,2,4] [--server-workers 2] [--server-clients 4]

First in-process (ASGI, httpx: server and client share one Python process, so one core), then
against ``fhir-server serve --workers N`` started here (real HTTP on loopback), as a
deployment runs it; both send bodies encoded before the clock starts. Both on the
given database (migrated here; nothing is emptied). Patients come from
``benchmarks.synthetic_patients`` (a fresh seed per run, so no identifier repeats).
Target: >= 1,000 Patients/s in transaction Bundles of 100 on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.processes import Server, free_port, start
from benchmarks.report import format_table
from benchmarks.synthetic_patients import batch
from fhir_server.app import create_app
from fhir_server.settings import Settings
from mappings import patient as patient_mapping
from mappings.patient import MappingContext
from mappings.patient_search import SEARCH_ONLY
from storage.crypto import load_cipher
from storage.database import create_engine
from storage.history import HistoryEntry
from storage.patient_rows import PATIENT_TABLES
from storage.resource_rows import insert_versions

REPO = Path(__file__).resolve().parent.parent
HEADERS = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
TARGET = 1000.0
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def patient_bundle(seed: int, first: int, size: int) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": synthetic.resource,
         "request": {"method": "POST", "url": "Patient"}}
        for synthetic in batch(seed, first, size)]}


def mixed_bundle(seed: int, first: int, size: int) -> dict[str, Any]:
    """A third each: Patients, a DocumentReference (inline PDF) and a Communication each."""
    entries: list[dict[str, Any]] = []
    for synthetic in batch(seed, first, max(size // 3, 1)):
        full_url = f"urn:uuid:{uuid.uuid4()}"
        subject = {"reference": full_url}
        entries += [
            {"fullUrl": full_url, "resource": synthetic.resource,
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "DocumentReference", "status": "current",
                          "subject": subject, "content": [{"attachment": {
                              "contentType": "application/pdf",
                              "data": base64.b64encode(PDF + synthetic.mrn.encode()).decode()}}]},
             "request": {"method": "POST", "url": "DocumentReference"}},
            {"resource": {"resourceType": "Communication", "status": "completed",
                          "subject": subject, "recipient": [subject],
                          "payload": [{"contentString": "Welcome"}]},
             "request": {"method": "POST", "url": "Communication"}}]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def _send_all(http: httpx.AsyncClient, bodies: list[bytes], clients: int) -> float:
    """Seconds to POST every encoded Bundle to ``http`` from ``clients`` concurrent senders;
    RuntimeError with the answer's start when one is not 200."""
    queue = list(bodies)

    async def sender() -> None:
        while queue:
            response = await http.post("/fhir", content=queue.pop(), headers=HEADERS)
            if response.status_code != 200:
                raise RuntimeError(response.text[:500])

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(clients)))
    return time.perf_counter() - started


async def raw_insert_rate(settings: Settings, seed: int, count: int) -> float:
    """Patients/s for the same rows written with COPY in one transaction (the floor)."""
    engine = create_engine(settings)
    context = MappingContext(cipher=load_cipher(settings),
                             phone_region=settings.phone_default_region,
                             mrn_system=settings.mrn_system)
    started = time.perf_counter()
    versions = []
    moment = datetime.now(UTC)
    for synthetic in batch(seed, 0, count):
        rows = patient_mapping.resource_to_rows(
            synthetic.resource, resource_id=str(uuid.uuid4()), version_id=1,
            last_updated=moment, mrn=f"MRN-RAW{seed}-{synthetic.mrn}", context=context)
        versions.append((rows, HistoryEntry("Patient", rows.main["id"], 1, moment, "POST",
                                            rows.to_snapshot(derived=SEARCH_ONLY))))
    async with engine.begin() as connection:
        await insert_versions(connection, PATIENT_TABLES, versions)
    elapsed = time.perf_counter() - started
    await engine.dispose()
    return count / elapsed


async def measure(database_url: str, bundles: int, size: int,
                  clients: Sequence[int]) -> list[list[str]]:
    settings = Settings(data_dir=Path(tempfile.mkdtemp()), database_url=database_url,
                        hash_key="bundles", base_url="http://bench/fhir",
                        messaging_worker=False)
    app = create_app(settings, migrate=True)
    rows: list[list[str]] = []
    base_seed = random.randrange(1, 1_000_000)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=900) as http:
        await _send_all(http, [orjson.dumps(patient_bundle(base_seed, 0, size))], 1)  # warm-up
        for number, concurrency in enumerate(clients, start=1):
            seed = base_seed + number
            work = [orjson.dumps(patient_bundle(seed, index * size, size))
                    for index in range(bundles)]
            elapsed = await _send_all(http, work, concurrency)
            rate = bundles * size / elapsed
            rows.append([f"{size} Patients / transaction", str(concurrency),
                         str(bundles * size), f"{elapsed:.2f}", f"{rate:,.0f}",
                         "yes" if rate >= TARGET else "no"])
        seed = base_seed + 100
        mixed = [mixed_bundle(seed, index * size, size) for index in range(bundles)]
        resources = sum(len(bundle["entry"]) for bundle in mixed)
        elapsed = await _send_all(http, [orjson.dumps(bundle) for bundle in mixed], clients[0])
        rows.append([f"{len(mixed[0]['entry'])} mixed (Patient+DocRef+Comm)", str(clients[0]),
                     str(resources), f"{elapsed:.2f}", f"{resources / elapsed:,.0f}", "-"])
    raw = await raw_insert_rate(settings, base_seed + 200, bundles * size)
    rows.append(["raw COPY of the same Patient rows", "1", str(bundles * size), "-",
                 f"{raw:,.0f}", "-"])
    return rows


def start_server(database_url: str, workers: int, work: Path) -> Server:
    """``fhir-server serve`` with ``workers`` processes on the database, messaging off."""
    exe = Path(sys.executable).parent / "fhir-server"
    env = {**os.environ, "FHIR_DATABASE_URL": database_url, "FHIR_DATA_DIR": str(work),
           "FHIR_HASH_KEY": "bundles", "FHIR_MESSAGING_WORKER": "false"}
    port = free_port()
    server = start("fhir-server", [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port),
                                   "--workers", str(workers)], env, REPO, work / "server.log",
                   port)
    server.wait_ready()
    return server


async def _post_all(base_url: str, bodies: list[bytes], clients: int) -> float:
    """``_send_all`` over real HTTP, after one request to open a connection."""
    async with httpx.AsyncClient(base_url=base_url, timeout=900,
                                 limits=httpx.Limits(max_connections=clients)) as http:
        await http.get("/fhir/metadata")
        return await _send_all(http, bodies, clients)


def measure_server(database_url: str, bundles: int, size: int, workers: int,
                   clients: int) -> list[list[str]]:
    """Patient Bundles against a real ``fhir-server serve --workers`` process."""
    seed = random.randrange(1, 1_000_000)
    warm = [orjson.dumps(patient_bundle(seed, index * size, size)) for index in range(workers * 2)]
    bodies = [orjson.dumps(patient_bundle(seed + 1, index * size, size))
              for index in range(bundles)]
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(database_url, workers, Path(folder))
        try:
            asyncio.run(_post_all(server.url, warm, workers * 2))
            elapsed = asyncio.run(_post_all(server.url, bodies, clients))
        finally:
            server.stop()
    rate = bundles * size / elapsed
    return [[f"{size} Patients / transaction, serve --workers {workers}", str(clients),
             str(bundles * size), f"{elapsed:.2f}", f"{rate:,.0f}",
             "yes" if rate >= TARGET else "no"]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--bundles", type=int, default=20)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--clients", default="1,2,4")
    parser.add_argument("--server-workers", type=int, default=2,
                        help="workers of the real server measured after the in-process runs "
                             "(0: skip it)")
    parser.add_argument("--server-clients", type=int, default=4)
    args = parser.parse_args(argv)
    clients = [int(part) for part in args.clients.split(",") if part.strip()]
    rows = asyncio.run(measure(args.database_url, args.bundles, args.size, clients))
    if args.server_workers > 0:
        rows += measure_server(args.database_url, args.bundles, args.size,
                               args.server_workers, args.server_clients)
    print(format_table(["what", "clients", "resources", "seconds", "resources/s",
                        f">= {TARGET:,.0f}/s?"], rows, left={0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
