"""How long a Patient/$merge (and its $unmerge) takes when many resources refer to the source.

    .venv/bin/python -m benchmarks.merge_scale --database-url postgresql+psycopg://... \\
        [--references 10000]

In-process (ASGI) on the given database, which is emptied of nothing: it creates two patients
and ``--references`` DocumentReferences whose subject is the first, then merges and undoes.
Target: 10,000 references moved in < 5 s on PostgreSQL.
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
from fhir_server.settings import Settings

HEADERS = {"Content-Type": "application/fhir+json"}
TARGET_SECONDS = 5.0


def _pair(prefix: str) -> dict[str, object]:
    return {"resourceType": "Parameters", "parameter": [
        {"name": "source-patient", "valueReference": {"reference": f"Patient/{prefix}-source"}},
        {"name": "target-patient", "valueReference": {"reference": f"Patient/{prefix}-target"}}]}


async def measure(database_url: str, references: int) -> list[list[str]]:
    settings = Settings(data_dir=Path(tempfile.mkdtemp()), database_url=database_url,
                        hash_key="merge-scale")
    app = create_app(settings, migrate=True)
    prefix = uuid.uuid4().hex[:8]
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=900) as http:
        for side in ("source", "target"):
            await http.put(f"/fhir/Patient/{prefix}-{side}", headers=HEADERS, json={
                "resourceType": "Patient", "id": f"{prefix}-{side}",
                "name": [{"family": "Scale"}]})
        gate = asyncio.Semaphore(8)

        async def document(number: int) -> None:
            async with gate:
                response = await http.put(
                    f"/fhir/DocumentReference/{prefix}-{number}", headers=HEADERS, json={
                        "resourceType": "DocumentReference", "id": f"{prefix}-{number}",
                        "status": "current",
                        "subject": {"reference": f"Patient/{prefix}-source"},
                        "content": [{"attachment": {"url": "https://ehr.example.org/doc"}}]})
                if response.status_code != 201:
                    raise RuntimeError(response.text[:300])

        await asyncio.gather(*(document(n) for n in range(references)))
        rows = []
        for operation in ("$merge", "$unmerge"):
            body = _pair(prefix) if operation == "$merge" else {
                "resourceType": "Parameters", "parameter": [{
                    "name": "source-patient",
                    "valueReference": {"reference": f"Patient/{prefix}-source"}}]}
            started = time.perf_counter()
            response = await http.post(f"/fhir/Patient/{operation}", headers=HEADERS, json=body)
            seconds = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{operation}: {response.text[:300]}")
            rows.append([operation, f"{references:,}", f"{seconds:.2f} s",
                         "met" if seconds < TARGET_SECONDS else "NOT met"])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.merge_scale",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--references", type=int, default=10_000)
    args = parser.parse_args(argv)
    rows = asyncio.run(measure(args.database_url, args.references))
    print(format_table(("operation", "references moved", "time", "< 5 s"), rows, {0, 3}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
