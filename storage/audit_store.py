"""The audit trail's storage: ``AuditTrail.record`` inserts AuditEvents (on the running unit of
work when there is one, so an event lands in the transaction of the write it describes), and
``AuditEventRepository`` reads and searches them. Nothing updates or deletes a row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.errors import MethodNotAllowed, NotFound
from mappings.audit_event import AuditEventMapping
from storage.audit_tables import AUDIT_EVENT_CHILD_TABLES, audit_events
from storage.mapped_repository import MappedRepository
from storage.resource_rows import TableRows, insert_rows
from storage.search_pages import SearchCatalog
from storage.stored import StoredResource
from storage.unit_of_work import writing

_MAPPING = AuditEventMapping()


class AuditTrail:
    """Writes AuditEvents."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        main: list[dict[str, Any]] = []
        children: dict[str, list[dict[str, Any]]] = {key: [] for key in AUDIT_EVENT_CHILD_TABLES}
        for event in events:
            rows = _MAPPING.to_rows(event, resource_id=event["id"], version_id=1,
                                    last_updated=datetime.min)
            main.append(rows.main)
            for key, child_rows in rows.children.items():
                children[key] += [row | {"resource_id": event["id"]} for row in child_rows]
        async with writing(self._engine) as connection:
            await insert_rows(connection, audit_events, main)
            for key, table in AUDIT_EVENT_CHILD_TABLES.items():
                await insert_rows(connection, table, children[key])


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
                      offset: int) -> tuple[int, list[StoredResource]]:
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
