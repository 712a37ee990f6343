"""What the interactions need from the storage of one resource type. Each served type has a
repository meeting this protocol (Patient, DocumentReference, Binary, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from fhir_server.search.query import SearchRequest
from mappings.search_backing import SearchParameter
from storage.stored import SearchResults, StoredResource


class ResourceRepository(Protocol):
    @property
    def resource_type(self) -> str: ...

    @property
    def search_parameters(self) -> dict[str, SearchParameter]: ...

    async def read(self, resource_id: str) -> StoredResource:
        """The current version; NotFound if it never existed, Gone if deleted."""

    async def vread(self, resource_id: str, version_id: int) -> StoredResource: ...

    async def history(
        self, *, resource_id: str | None, since: datetime | None, count: int, offset: int
    ) -> tuple[int, list[StoredResource]]: ...

    async def search(self, request: SearchRequest) -> SearchResults: ...

    async def find(self, query: str) -> list[str]:
        """Ids of live resources meeting a conditional query (at most two)."""

    async def create(self, resource: dict[str, Any], *,
                     resource_id: str | None = None) -> StoredResource:
        """A new resource; its id is ``resource_id`` when given (a transaction Bundle assigns
        ids before it writes, to rewrite references), else a new UUID."""

    async def update(
        self, resource_id: str, resource: dict[str, Any], *, if_match: int | None
    ) -> tuple[StoredResource, bool]: ...

    async def delete(self, resource_id: str) -> StoredResource | None: ...
