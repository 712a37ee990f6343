"""The audit trail's storage: ``AuditTrail.record`` inserts AuditEvents (on the running unit of
work when there is one, so an event lands in the transaction of the write it describes), and
``AuditEventRepository`` reads and searches them. Nothing updates or deletes a row."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from datetime import datetime
from typing import Any

import orjson
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fhir_server.errors import MethodNotAllowed, NotFound
from mappings.audit_event import AuditEventMapping
from storage.audit_tables import AUDIT_EVENT_CHILD_TABLES, audit_events
from storage.mapped_repository import MappedRepository
from storage.resource_rows import TableRows
from storage.search_pages import SearchCatalog
from storage.stored import StoredResource
from storage.unit_of_work import active_connection

_MAPPING = AuditEventMapping()
logger = logging.getLogger("fhir_server")
MAX_BATCH_WAITERS = 1000


class AuditTrail:
    """Writes AuditEvents. Inside a unit of work (a write and its event) the rows go on the
    unit's connection, committed or rolled back with the write. Elsewhere (reads, searches,
    refusals) events are group-committed: the caller waits until its event is stored, and
    every event that arrived meanwhile shares one transaction, so auditing each read costs a
    fraction of a transaction under load."""

    def __init__(self, engine: AsyncEngine, *, pool: AsyncConnectionPool | None = None) -> None:
        """``pool``: autocommit psycopg connections to the same PostgreSQL database; a group
        commit is then one statement on one of them (its own transaction, one round trip),
        not BEGIN, the statement and COMMIT through SQLAlchemy."""
        self._engine = engine
        self._pool = pool
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None] | None]] = []
        self._wake: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False

    async def record(self, events: list[dict[str, Any]]) -> None:
        """Store ``events``: in the running unit of work, else in the next group commit
        (returns once stored)."""
        if not events:
            return
        connection = active_connection(self._engine)
        if connection is not None:
            await _insert(connection, events)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(events, future)
        await future

    def record_later(self, events: list[dict[str, Any]]) -> None:
        """Queue ``events`` for the next group commit without waiting (used inside a unit of
        work whose outcome must not decide theirs: the unit may hold SQLite's write lock)."""
        if events:
            self._enqueue(events, None)

    def _enqueue(self, events: list[dict[str, Any]], future: asyncio.Future[None] | None) -> None:
        self._pending.append((events, future))
        if self._flusher is None or self._flusher.done():
            self._wake = asyncio.Event()
            # a fresh context: the flusher must never write inside a request's unit of work
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_forever(), context=contextvars.Context())
        assert self._wake is not None
        self._wake.set()

    async def _flush_forever(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._drain()
            if self._closing:
                return

    async def _drain(self) -> None:
        """Store every queued event, in batches of at most ``MAX_BATCH_WAITERS`` callers."""
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH_WAITERS], \
                self._pending[MAX_BATCH_WAITERS:]
            await self._flush(batch)

    async def _flush(self, batch: list[tuple[list[dict[str, Any]], asyncio.Future[None] | None]]
                     ) -> None:
        events = [event for events, _ in batch for event in events]
        try:
            if self._pool is not None:
                async with self._pool.connection() as connection:
                    await connection.execute(_ONE_STATEMENT_PSYCOPG, _rows_json(events))
            else:
                async with self._engine.begin() as connection:
                    await _insert(connection, events)
        except Exception as error:  # noqa: BLE001 (every waiter learns it; the flusher lives on)
            logger.error("audit events could not be stored: %s", type(error).__name__)
            for _, future in batch:
                if future is not None and not future.done():
                    future.set_exception(error)
            return
        for _, future in batch:
            if future is not None and not future.done():
                future.set_result(None)

    async def close(self) -> None:
        """Store what is queued, then stop the flusher once its last batch is stored.

        Never by cancelling it: a flush cancelled mid-statement lost its events and left its
        connection checked out, on SQLite holding the write lock until garbage collection."""
        self._closing = True
        if self._flusher is not None and not self._flusher.done():
            assert self._wake is not None
            self._wake.set()
            await self._flusher
        await self._drain()


def _rows(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                  dict[str, list[dict[str, Any]]]]:
    """The main rows of ``events`` and their child rows by child table key."""
    main: list[dict[str, Any]] = []
    children: dict[str, list[dict[str, Any]]] = {key: [] for key in AUDIT_EVENT_CHILD_TABLES}
    for event in events:
        rows = _MAPPING.to_rows(event, resource_id=event["id"], version_id=1,
                                last_updated=datetime.min)
        main.append(rows.main)
        for key, child_rows in rows.children.items():
            children[key] += [row | {"resource_id": event["id"]} for row in child_rows]
    return main, children


def _rows_json(events: list[dict[str, Any]]) -> dict[str, str]:
    """The parameters of the one-statement insert: each table's rows as a JSON array."""
    main, children = _rows(events)
    return {"events": orjson.dumps(main).decode(),
            "tokens": orjson.dumps(children["tokens"]).decode(),
            "references": orjson.dumps(children["references"]).decode()}


async def _insert(connection: AsyncConnection, events: list[dict[str, Any]]) -> None:
    if connection.dialect.name == "postgresql":
        await connection.execute(_ONE_STATEMENT, _rows_json(events))
        return
    main, children = _rows(events)
    for table, table_rows in ((audit_events, main),
                              *((AUDIT_EVENT_CHILD_TABLES[key], children[key])
                                for key in AUDIT_EVENT_CHILD_TABLES)):
        if table_rows:
            await connection.execute(insert(table), table_rows)


_ONE_STATEMENT = text("""
WITH main AS (
    INSERT INTO audit_events
    SELECT * FROM jsonb_populate_recordset(NULL::audit_events, CAST(:events AS jsonb))),
tokens AS (
    INSERT INTO audit_events_tokens
    SELECT * FROM jsonb_populate_recordset(NULL::audit_events_tokens, CAST(:tokens AS jsonb)))
INSERT INTO audit_events_references
SELECT * FROM jsonb_populate_recordset(NULL::audit_events_references, CAST(:references AS jsonb))
""")
"""Every row of a batch in one statement on PostgreSQL (one round trip)."""
_ONE_STATEMENT_PSYCOPG = str(_ONE_STATEMENT).replace(":events", "%(events)s").replace(
    ":tokens", "%(tokens)s").replace(":references", "%(references)s")
"""The same statement with psycopg's placeholders, for the autocommit pool."""


def _read_only(action: str) -> MethodNotAllowed:
    return MethodNotAllowed(f"AuditEvent is read-only: the server records every access itself; "
                            f"{action} is not allowed", headers={"Allow": "GET, HEAD"})


class AuditEventRepository(MappedRepository):
    """Read and search of the audit trail; every write answers 405."""

    def __init__(self, engine: AsyncEngine, catalog: SearchCatalog, *, cipher: Any,
                 phone_region: str) -> None:
        super().__init__(engine, TableRows(engine, audit_events, AUDIT_EVENT_CHILD_TABLES),
                         _MAPPING, catalog, phone_region=phone_region, cipher=cipher)

    async def vread(self, resource_id: str, version_id: int) -> StoredResource:
        if version_id != 1:
            raise NotFound(f"AuditEvent/{resource_id}/_history/{version_id} is not known")
        return await self.read(resource_id)

    async def history(self, *, resource_id: str | None, since: datetime | None, count: int,
                      offset: int, at: tuple[datetime, datetime] | None = None
                      ) -> tuple[int, list[StoredResource]]:
        raise _read_only("history")

    async def create(self, resource: dict[str, Any], *, facts: Any = None,
                     in_transaction: Any = None,
                     resource_id: str | None = None) -> StoredResource:
        raise _read_only("create")

    async def update(self, resource_id: str, resource: dict[str, Any], *,
                     if_match: int | None, facts: Any = None,
                     in_transaction: Any = None) -> tuple[StoredResource, bool]:
        raise _read_only("update")

    async def delete(self, resource_id: str, *,
                     in_transaction: Any = None) -> StoredResource | None:
        raise _read_only("delete")
