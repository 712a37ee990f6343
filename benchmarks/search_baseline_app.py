"""Minimal FastAPI + psycopg search app: the floor for a Patient search on the same database.

``GET /fhir/Patient?name=VALUE&_count=N`` runs one SQL text (``BASELINE_SEARCH_SQL``, psycopg
placeholders ``%(value)s`` and ``%(count)s``) and returns its rows as a searchset Bundle, one
entry per row: a JSON text column is parsed, other values are returned as they are. No
validation, no mapping, no paging links. Configure with ``BASELINE_DATABASE_URL`` (a plain
``postgresql://`` conninfo) and ``BASELINE_SEARCH_SQL``, and run::

    uvicorn benchmarks.search_baseline_app:app --loop uvloop --http httptools --no-access-log
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request, Response
from psycopg_pool import AsyncConnectionPool

FHIR_JSON = "application/fhir+json"
POOL_SIZE = int(os.environ.get("BASELINE_POOL_SIZE", "16"))
DEFAULT_COUNT = 50


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the connection pool (the app creates nothing in the database)."""
    pool = AsyncConnectionPool(
        os.environ["BASELINE_DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE,
        kwargs={"autocommit": True}, open=False,
    )
    await pool.open(wait=True)
    app.state.pool = pool
    app.state.sql = os.environ["BASELINE_SEARCH_SQL"]
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/health/ready")
async def ready() -> Response:
    """Readiness probe, same path as the server under test."""
    return Response(b'{"status":"ok"}', media_type="application/json")


def _entry(row: tuple[Any, ...], names: list[str]) -> Any:
    if len(row) != 1:
        return dict(zip(names, row))
    value = row[0]
    if isinstance(value, str) and value[:1] in ("{", "["):
        return orjson.loads(value)
    return value


@app.get("/fhir/Patient")
async def search(request: Request) -> Response:
    """Run the search SQL with ``name`` and ``_count``; the rows as Bundle entries."""
    parameters = {
        "value": request.query_params.get("name", ""),
        "count": int(request.query_params.get("_count", DEFAULT_COUNT)),
    }
    try:
        async with request.app.state.pool.connection() as conn:
            cursor = await conn.execute(request.app.state.sql, parameters)
            rows = await cursor.fetchall()
            names = [column.name for column in cursor.description or ()]
    except psycopg.Error as exc:  # a broken BASELINE_SEARCH_SQL: say why
        outcome = {"resourceType": "OperationOutcome",
                   "issue": [{"severity": "error", "code": "exception", "diagnostics": str(exc)}]}
        return Response(orjson.dumps(outcome), status_code=500, media_type=FHIR_JSON)
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": _entry(row, names)} for row in rows],
    }
    return Response(orjson.dumps(bundle, default=str), media_type=FHIR_JSON)
