"""Mapped rows read on the psycopg pool (PostgreSQL) are the rows SQLAlchemy reads: the same
columns and values, UTC datetimes, children in order, deleted rows too; inside a unit of work
reads stay on the unit's connection (its uncommitted rows visible)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import AsyncConnectionPool

from fhir_server.settings import Settings
from storage.audit_tables import AUDIT_EVENT_CHILD_TABLES, audit_events
from storage.coverage_tables import PATIENT_INSURANCE_CHILD_TABLES, patient_insurances
from storage.media_tables import (
    BINARY_CHILD_TABLES,
    MEDIA_ASSET_CHILD_TABLES,
    binaries,
    media_assets,
)
from storage.messaging_tables import (
    NOTIFICATION_REQUEST_CHILD_TABLES,
    OUTBOUND_NOTIFICATION_CHILD_TABLES,
    notification_requests,
    outbound_notifications,
)
from storage.patient_rows_pg import conninfo
from storage.pooled_reads import pool_for, select_rows_on_pool
from storage.resource_rows import TableRows, TableSet, select_rows
from storage.unit_of_work import unit_of_work
from tests.factories import (
    FHIR_JSON,
    communication,
    communication_request,
    coverage,
    document_reference,
    patient,
)

TABLES = TableSet(media_assets, MEDIA_ASSET_CHILD_TABLES)
EVERY_MAPPED_TYPE = {
    "Binary": TableSet(binaries, BINARY_CHILD_TABLES),
    "DocumentReference": TABLES,
    "CommunicationRequest": TableSet(notification_requests, NOTIFICATION_REQUEST_CHILD_TABLES),
    "Communication": TableSet(outbound_notifications, OUTBOUND_NOTIFICATION_CHILD_TABLES),
    "Coverage": TableSet(patient_insurances, PATIENT_INSURANCE_CHILD_TABLES),
    "AuditEvent": TableSet(audit_events, AUDIT_EVENT_CHILD_TABLES),
}


@pytest.fixture
def documents(client: TestClient, backend: str) -> Iterator[list[str]]:
    if backend != "postgresql":
        pytest.skip("the pool serves PostgreSQL only")
    ids = []
    for description in ("first", "second"):
        created = client.post("/fhir/DocumentReference", headers=FHIR_JSON,
                              json=document_reference(description=description))
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    assert client.delete(f"/fhir/DocumentReference/{ids[1]}").status_code in (200, 204)
    yield ids


def _both(settings: Settings, ids: list[str], *, children: bool,
          tables: TableSet = TABLES) -> tuple[Any, Any]:
    async def read() -> tuple[Any, Any]:
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(settings.resolved_database_url)
        pool = AsyncConnectionPool(conninfo(settings.resolved_database_url), min_size=1,
                                   max_size=1, kwargs={"autocommit": True}, open=False)
        await pool.open()
        try:
            on_pool = await select_rows_on_pool(pool, tables, ids, children=children)
            async with engine.connect() as connection:
                on_engine = await select_rows(connection, tables, ids, children=children)
        finally:
            await pool.close()
            await engine.dispose()
        return on_pool, on_engine

    return asyncio.run(read())


def _by_id(row_sets: Any) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {rows.main["id"]: (rows.main, rows.children) for rows in row_sets}


@pytest.mark.parametrize("children", [True, False])
def test_rows_read_on_the_pool_are_the_rows_sqlalchemy_reads(
        documents: list[str], settings: Settings, children: bool) -> None:
    on_pool, on_engine = _both(settings, [*documents, "unknown"], children=children)
    assert _by_id(on_pool) == _by_id(on_engine)
    assert set(_by_id(on_pool)) == set(documents)  # the deleted one too, not the unknown
    for main, child_rows in _by_id(on_pool).values():
        assert main["last_updated"].utcoffset().total_seconds() == 0
        assert any(child_rows.values()) is children


def test_the_app_reads_mapped_rows_on_its_pool_outside_a_unit_only(
        client: TestClient, documents: list[str]) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    engine = services.engine
    assert pool_for(engine) is not None
    rows = TableRows(engine, media_assets, MEDIA_ASSET_CHILD_TABLES)

    async def read_inside_a_unit() -> tuple[bool, bool]:
        async with unit_of_work(engine) as connection:
            await connection.exec_driver_sql(
                "UPDATE media_assets SET description = 'changed' WHERE id = %(id)s",
                {"id": documents[0]})
            inside = await rows.select(documents[0], children=False)
        outside = await rows.select(documents[0], children=False)
        assert inside is not None and outside is not None
        return inside.main["description"] == "changed", outside.main["description"] == "changed"

    # the unit's own change is seen inside it; after the commit, the pool sees it too
    assert client.portal.call(read_inside_a_unit) == (True, True)  # type: ignore[attr-defined]


def test_every_mapped_type_reads_the_same_rows_on_the_pool(client: TestClient, backend: str,
                                                           settings: Settings) -> None:
    if backend != "postgresql":
        pytest.skip("the pool serves PostgreSQL only")
    assert client.put("/fhir/Patient/p-1", json=patient(id="p-1"),
                      headers=FHIR_JSON).status_code in (200, 201)
    for resource in (document_reference(), communication_request(), communication(),
                     coverage()):
        created = client.post(f"/fhir/{resource['resourceType']}", json=resource,
                              headers=FHIR_JSON)
        assert created.status_code == 201, created.text
    ids_of: dict[str, list[str]] = {}
    for resource_type, tables in EVERY_MAPPED_TYPE.items():
        async def ids(tables: TableSet = tables) -> list[str]:
            engine = client.app.state.services.engine  # type: ignore[attr-defined]
            async with engine.connect() as connection:
                result = await connection.exec_driver_sql(f'SELECT id FROM "{tables.main.name}"')
                return [row[0] for row in result]

        ids_of[resource_type] = client.portal.call(ids)  # type: ignore[attr-defined]
        assert ids_of[resource_type], resource_type
        on_pool, on_engine = _both(settings, ids_of[resource_type], children=True,
                                   tables=tables)
        assert _by_id(on_pool) == _by_id(on_engine), resource_type
