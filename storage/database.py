"""Async SQLAlchemy engine for SQLite (embedded default) and PostgreSQL, one code path.

On PostgreSQL every connection gets ``statement_timeout`` (``FHIR_STATEMENT_TIMEOUT_MS``); on
both, errors never carry statement parameters (they hold PHI)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from fhir_server.settings import Settings
from storage.patient_rows import PatientRowStore, SqlAlchemyPatientRows
from storage.patient_rows_pg import PsycopgPatientRows, statement_timeout_option
from storage.unit_of_work import READ_ONLY

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
SYNC_DRIVERS = {"sqlite": "sqlite+pysqlite", "postgresql": "postgresql+psycopg"}


def _with_driver(url: str, drivers: dict[str, str]) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(f"unsupported database backend {backend!r}: use sqlite or postgresql")
    return parsed.set(drivername=drivers[backend])


def async_url(url: str) -> URL:
    """The URL with an async driver: aiosqlite for SQLite, psycopg (3) for PostgreSQL."""
    return _with_driver(url, ASYNC_DRIVERS)


def sync_url(url: str) -> URL:
    """The URL with a synchronous driver, for Alembic."""
    return _with_driver(url, SYNC_DRIVERS)


def _configure_sqlite(engine: AsyncEngine) -> None:
    """WAL, a busy timeout and ``BEGIN IMMEDIATE`` so concurrent writers wait, never deadlock;
    a connection that only reads (``READ_ONLY``) begins deferred instead: under WAL its
    snapshot needs no lock, so readers run beside each other and beside the writer."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_engine(settings: Settings) -> AsyncEngine:
    """The engine for the configured database; SQLite files live under the data dir."""
    url = async_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if settings.statement_timeout_ms > 0:
        connect_args["options"] = statement_timeout_option(settings.statement_timeout_ms)
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=False,
        connect_args=connect_args,
        hide_parameters=True,  # statement parameters are PHI: never in errors or logs
        json_serializer=lambda value: orjson.dumps(value).decode(),
        json_deserializer=orjson.loads,
    )


async def open_patient_rows(settings: Settings, engine: AsyncEngine) -> PatientRowStore:
    """The Patient row executor: psycopg with pipelining on PostgreSQL, SQLAlchemy elsewhere."""
    if engine.dialect.name == "postgresql":
        rows = PsycopgPatientRows(settings.resolved_database_url, pool_size=settings.db_pool_size,
                                  statement_timeout_ms=settings.statement_timeout_ms)
        await rows.open()
        return rows
    return SqlAlchemyPatientRows(engine)


async def database_ready(engine: AsyncEngine) -> bool:
    """True when the database answers a trivial query."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return False
    return True
