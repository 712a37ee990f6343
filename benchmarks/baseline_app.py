"""Minimal FastAPI + psycopg app: the throughput floor for any Python FHIR server here.

It stores and returns the Patient JSON as one ``jsonb`` row without validation or mapping,
so the benchmark can compare the real server against it on the same machine and database.
Configure with ``BASELINE_DATABASE_URL`` (a plain ``postgresql://`` conninfo) and run::

    uvicorn benchmarks.baseline_app:app --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Request, Response
from psycopg_pool import AsyncConnectionPool

FHIR_JSON = "application/fhir+json"
POOL_SIZE = int(os.environ.get("BASELINE_POOL_SIZE", "16"))

_DDL = "CREATE TABLE IF NOT EXISTS baseline_patient (id text PRIMARY KEY, doc jsonb NOT NULL)"
_INSERT = "INSERT INTO baseline_patient (id, doc) VALUES (%s, %s::jsonb)"
_SELECT = "SELECT doc::text FROM baseline_patient WHERE id = %s"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the connection pool and make sure the table exists."""
    pool = AsyncConnectionPool(
        os.environ["BASELINE_DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE, open=False
    )
    await pool.open(wait=True)
    async with pool.connection() as conn:
        await conn.execute(_DDL)
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/health/ready")
async def ready() -> Response:
    """Readiness probe, same path as the server under test."""
    return Response(b'{"status":"ok"}', media_type="application/json")


@app.post("/fhir/Patient")
async def create_patient(request: Request) -> Response:
    """Store the posted JSON under a new id and echo it back."""
    doc = orjson.loads(await request.body())
    doc["id"] = str(uuid.uuid4())
    body = orjson.dumps(doc)
    async with request.app.state.pool.connection() as conn:
        await conn.execute(_INSERT, (doc["id"], body.decode()))
    return Response(
        body,
        status_code=201,
        media_type=FHIR_JSON,
        headers={"Location": f"/fhir/Patient/{doc['id']}"},
    )


@app.get("/fhir/Patient/{patient_id}")
async def read_patient(patient_id: str, request: Request) -> Response:
    """Return the stored JSON, or 404."""
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(_SELECT, (patient_id,))
        row = await cur.fetchone()
    if row is None:
        return Response(status_code=404)
    return Response(orjson.dumps(orjson.loads(row[0])), media_type=FHIR_JSON)
