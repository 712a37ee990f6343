"""Speed of Patient/$match on a loaded PostgreSQL database: p50/p95/p99 over HTTP from one
client, and the mean number of candidates blocking gives the scorer.

    .venv/bin/python -m benchmarks.match_speed \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB [--queries 300]

Load the database first with ``python -m benchmarks.load_patients`` (same ``FHIR_*`` keys).
Queries are stored patients with one realistic corruption each (``benchmarks.match_data``),
without their record numbers. Target: p95 <= 50 ms at 1M patients.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg

from benchmarks.match_data import CORRUPTIONS, as_query
from benchmarks.processes import Server
from benchmarks.report import format_table
from benchmarks.run import _terminate
from benchmarks.search import start_fhir_server
from fhir_server.matching.keys import query_keys
from fhir_server.operations.match_scan import open_matching
from fhir_server.settings import Settings
from storage.match_candidates import candidate_ids
from storage.patient_rows_pg import conninfo

HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
TARGET_P95_MS = 50.0


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def sample_ids(database_url: str, count: int, seed: int) -> tuple[list[str], int]:
    with psycopg.connect(conninfo(database_url)) as connection:
        total = connection.execute("SELECT count(*) FROM patients").fetchone()
        ids = [row[0] for row in connection.execute(
            "SELECT id FROM patients TABLESAMPLE SYSTEM (1) REPEATABLE (%s) LIMIT %s",
            (seed, count * 2))]
    random.Random(seed).shuffle(ids)
    return ids[:count], int(total[0]) if total else 0


async def mean_candidates(database_url: str, queries: list[dict[str, Any]]) -> float:
    settings = Settings(database_url=database_url)
    async with open_matching(settings) as matching:
        counts = []
        for query in queries:
            ids, _ = await candidate_ids(matching.engine,
                                         query_keys(matching.matcher.record(query)),
                                         limit=settings.match_candidate_limit)
            counts.append(len(ids))
    return statistics.fmean(counts) if counts else 0.0


def _match_body(query: dict[str, Any]) -> dict[str, Any]:
    """The Parameters a ``$match`` request sends: the patient to match."""
    return {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": query}]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.match_speed",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    work = Path(tempfile.mkdtemp(prefix="fhir-match-bench-"))
    ids, total = sample_ids(args.database_url, args.queries, args.seed)
    rng = random.Random(args.seed)
    server: Server | None = None
    try:
        server = start_fhir_server(args, work)
        server.wait_ready()
        latencies: list[float] = []
        queries = []
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=60) as client:
            for resource_id in ids:
                stored = client.get(f"/fhir/Patient/{resource_id}").json()
                query = as_query(stored, with_ssn=False)
                query["identifier"] = [i for i in query.get("identifier", [])
                                       if "mrn" not in str(i.get("system", "")).lower()]
                if not query["identifier"]:
                    del query["identifier"]
                query.pop("meta", None)
                CORRUPTIONS[rng.choice(sorted(CORRUPTIONS))](query, rng)
                queries.append(query)
            for query in queries[:10]:  # warm-up
                client.post("/fhir/Patient/$match", json=_match_body(query))
            for query in queries:
                started = time.perf_counter()
                response = client.post("/fhir/Patient/$match", json=_match_body(query))
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"$match failed: {response.text[:300]}")
        candidates = asyncio.run(mean_candidates(args.database_url, queries))
    finally:
        if server is not None:
            server.stop()
    p95 = _percentile(latencies, 0.95)
    rows = [[f"{total:,}", f"{len(latencies):,}", f"{_percentile(latencies, 0.5):.1f} ms",
             f"{p95:.1f} ms", f"{_percentile(latencies, 0.99):.1f} ms", f"{candidates:.1f}",
             "met" if p95 <= TARGET_P95_MS else "NOT met"]]
    print(f"Patient/$match over HTTP, one client, workers={args.workers}, {os.cpu_count()} CPUs")
    print(format_table(("patients", "queries", "p50", "p95", "p99", "mean candidates",
                        "p95 <= 50 ms"), rows, {6}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
