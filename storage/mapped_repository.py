"""A versioned repository over a mapped type's tables (DocumentReference, Binary, ...): every
write is a new version with a history snapshot, in one transaction; deletes are soft.
The mapping turns resources into rows and back; this class knows versions, not elements."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.errors import Conflict, Gone, InvalidRequest, NotFound, PreconditionFailed
from fhir_server.search.query import SearchRequest, parse_search
from mappings.fhir_dates import as_datetime
from mappings.search_backing import SearchParameter
from storage.history import HistoryEntry, history_page, read_version
from storage.resource_rows import InTransaction, TableRows
from storage.row_set import RowSet
from storage.search_pages import SearchCatalog, SearchSource, run_search
from storage.search_sql import SearchSql
from storage.stored import RowConflict, SearchResults, StoredResource, VersionMoved, now
from storage.unit_of_work import after_commit, reading

WRITE_ATTEMPTS = 5
BeforeWrite = Callable[[dict[str, Any]], Awaitable[None]]
"""A check a resource must pass before any version of it is written (raises to refuse)."""
CONDITIONAL_LIMIT = 2


class ResourceMapping(Protocol):
    resource_type: str
    search_parameters: dict[str, SearchParameter]
    search_only: frozenset[str]

    def to_rows(self, resource: dict[str, Any], *, resource_id: str, version_id: int,
                last_updated: datetime, facts: Any) -> RowSet:
        """The rows of ``resource`` (InvalidResource when it breaks a PRM rule); ``facts`` is
        what the caller looked up for it beforehand (e.g. the hashes of its Binaries)."""

    def to_resource(self, rows: RowSet) -> dict[str, Any]: ...


class MappedRepository:
    def __init__(self, engine: AsyncEngine, rows: TableRows, mapping: ResourceMapping,
                 catalog: SearchCatalog, *, phone_region: str, cipher: Any,
                 before_write: BeforeWrite | None = None,
                 after_write: Callable[[], None] | None = None) -> None:
        self._engine = engine
        self._before_write = before_write
        self._after_write = after_write
        self.rows = rows
        self._mapping = mapping
        self._catalog = catalog
        sql = SearchSql(mapping.resource_type, rows.main, rows.children, owner=rows.owner,
                        cipher=cipher, phone_region=phone_region, peers=catalog.compilers,
                        parameters=mapping.search_parameters)
        self._source = SearchSource(sql, rows, mapping.to_resource, mapping.search_parameters)
        catalog.add(self._source)

    @property
    def resource_type(self) -> str:
        return self._mapping.resource_type

    @property
    def search_parameters(self) -> dict[str, SearchParameter]:
        return self._mapping.search_parameters

    # ------------------------------------------------------------------- reads

    async def current_rows(self, resource_id: str, *, children: bool = True) -> RowSet:
        """The live rows (``children=False``: the main row only); NotFound if the id never
        existed, Gone if deleted."""
        rows = await self.rows.select(resource_id, children=children)
        name = f"{self.resource_type}/{resource_id}"
        if rows is None:
            raise NotFound(f"{name} is not known")
        if rows.main["deleted_at"] is not None:
            raise Gone(f"{name} was deleted", headers={"ETag": f'W/"{rows.main["version_id"]}"'})
        return rows

    async def read(self, resource_id: str) -> StoredResource:
        return self.stored(await self.current_rows(resource_id))

    async def vread(self, resource_id: str, version_id: int) -> StoredResource:
        return self.stored(await self.version_rows(resource_id, version_id))

    async def version_rows(self, resource_id: str, version_id: int) -> RowSet:
        """The rows of one version as its history snapshot kept them (search values aside)."""
        async with reading(self._engine) as connection:
            entry = await read_version(connection, self.resource_type, resource_id, version_id)
        name = f"{self.resource_type}/{resource_id}"
        if entry is None:
            raise NotFound(f"{name}/_history/{version_id} is not known")
        if entry.snapshot is None:
            raise Gone(f"{name} version {version_id} is a deletion")
        return RowSet.from_snapshot(entry.snapshot)

    async def history(
        self, *, resource_id: str | None, since: datetime | None, count: int, offset: int,
        at: tuple[datetime, datetime] | None = None,
    ) -> tuple[int, list[StoredResource]]:
        if resource_id is not None and await self.rows.select(resource_id) is None:
            raise NotFound(f"{self.resource_type}/{resource_id} is not known")
        async with reading(self._engine) as connection:
            total, entries = await history_page(
                connection, resource_type=self.resource_type, resource_id=resource_id,
                since=since, count=count, offset=offset, at=at)
        return total, [self._from_history(entry) for entry in entries]

    async def search(self, request: SearchRequest) -> SearchResults:
        page = await run_search(self._engine, self._source, request, self._catalog.sources,
                                include_limit=self._catalog.include_limit)
        return SearchResults(page.resources, page.next_token, page.previous_token, page.total,
                             page.included)

    async def find(self, query: str) -> list[str]:
        """Ids of live resources a conditional query (any search parameter) selects, at most
        two: enough to tell none, one and many."""
        query = query.split("?", 1)[1] if "?" in query else query
        pairs = parse_qsl(query, keep_blank_values=True)
        if not pairs:
            raise InvalidRequest("The conditional request has no search criteria")
        request = parse_search(pairs, self._catalog.registry(), resource_type=self.resource_type,
                               strict=True, default_count=CONDITIONAL_LIMIT,
                               max_count=CONDITIONAL_LIMIT, base_url="")
        if not request.clauses:
            raise InvalidRequest("The conditional request has no search criteria")
        request.controls.count = CONDITIONAL_LIMIT
        page = await run_search(self._engine, self._source, request, {})
        return [resource["id"] for resource in page.resources]

    # ------------------------------------------------------------------ writes

    async def create(self, resource: dict[str, Any], *, facts: Any = None,
                     in_transaction: InTransaction | None = None,
                     resource_id: str | None = None) -> StoredResource:
        """A new resource with a server-assigned id (any id in the body is ignored)."""
        try:
            return await self._write(resource_id or str(uuid.uuid4()), resource,
                                     expected_version=None, method="POST", facts=facts,
                                     in_transaction=in_transaction)
        except VersionMoved:
            raise Conflict(f"{self.resource_type} was created concurrently") from None

    async def update(
        self, resource_id: str, resource: dict[str, Any], *, if_match: int | None,
        facts: Any = None, in_transaction: InTransaction | None = None,
    ) -> tuple[StoredResource, bool]:
        """(new version, created): creates the resource when the id is unknown or deleted."""
        name = f"{self.resource_type}/{resource_id}"
        for _ in range(WRITE_ATTEMPTS):
            current = await self.rows.select(resource_id)
            current_version = current.main["version_id"] if current else None
            if if_match is not None and if_match != current_version:
                raise PreconditionFailed(
                    f"If-Match version {if_match} does not match the current version "
                    f"{current_version if current_version is not None else '(none)'} of {name}")
            created = current is None or current.main["deleted_at"] is not None
            try:
                stored = await self._write(resource_id, resource,
                                           expected_version=current_version, method="PUT",
                                           facts=facts, in_transaction=in_transaction)
            except VersionMoved:
                if if_match is not None:
                    raise PreconditionFailed(f"{name} changed while it was being updated") \
                        from None
                continue
            return stored, created
        raise Conflict(f"{name} is being changed by others; try again")

    async def delete(self, resource_id: str, *,
                     in_transaction: InTransaction | None = None) -> StoredResource | None:
        """Soft delete: a new version marked deleted. None when it was deleted already."""
        name = f"{self.resource_type}/{resource_id}"
        current = await self.rows.select(resource_id)
        if current is None:
            raise NotFound(f"{name} is not known")
        if current.main["deleted_at"] is not None:
            return None
        version_id = current.main["version_id"] + 1
        moment = now()
        try:
            await self.rows.save_deletion(
                HistoryEntry(self.resource_type, resource_id, version_id, moment, "DELETE", None),
                expected_version=current.main["version_id"], in_transaction=in_transaction)
        except VersionMoved:
            raise Conflict(f"{name} changed while it was being deleted") from None
        return StoredResource(resource_id, version_id, moment, None, method="DELETE")

    async def _write(
        self, resource_id: str, resource: dict[str, Any], *, expected_version: int | None,
        method: str, facts: Any, in_transaction: InTransaction | None,
    ) -> StoredResource:
        if self._before_write is not None:
            await self._before_write(resource)
        moment = now()
        version_id = (expected_version or 0) + 1
        rows = self._mapping.to_rows(resource, resource_id=resource_id, version_id=version_id,
                                     last_updated=moment, facts=facts)
        entry = HistoryEntry(self.resource_type, resource_id, version_id, moment, method,
                             rows.to_snapshot(derived=self._mapping.search_only))
        try:
            await self.rows.save_version(rows, entry, expected_version=expected_version,
                                         in_transaction=in_transaction)
        except RowConflict:
            raise VersionMoved() from None
        if self._after_write is not None:
            after_commit(self._after_write)
        return StoredResource(resource_id, version_id, moment, self._mapping.to_resource(rows),
                              method=method)

    # ----------------------------------------------------------------- helpers

    def stored(self, rows: RowSet) -> StoredResource:
        """The version these rows (current or from a snapshot) hold."""
        return StoredResource(rows.main["id"], rows.main["version_id"],
                              as_datetime(rows.main["last_updated"]),
                              self._mapping.to_resource(rows))

    def _from_history(self, entry: HistoryEntry) -> StoredResource:
        resource = None
        if entry.snapshot is not None:
            resource = self._mapping.to_resource(RowSet.from_snapshot(entry.snapshot))
        return StoredResource(entry.resource_id, entry.version_id, entry.last_updated, resource,
                              method=entry.method)
