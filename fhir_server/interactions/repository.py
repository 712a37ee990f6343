"""What the interactions need from the storage of one resource type. Each served type has a
repository meeting this protocol (Patient, DocumentReference, Binary, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from fhir_server.errors import FhirError
from fhir_server.search.query import SearchRequest
from mappings.search_backing import SearchParameter
from storage.stored import SearchResults, StoredResource


class ItemFailed(Exception):
    """One resource of a many-at-once write was refused: ``position`` in the list, and why."""

    def __init__(self, position: int, error: FhirError) -> None:
        super().__init__(str(error))
        self.position = position
        self.error = error


@runtime_checkable
class CreatesMany(Protocol):
    """A repository that writes many new resources at once (a transaction's creates)."""

    async def create_many(self, items: list[tuple[str, dict[str, Any]]]) -> list[StoredResource]:
        """New resources (id, resource), written on the caller's unit of work; ItemFailed
        names the first one refused."""


class ResourceRepository(Protocol):
    @property
    def resource_type(self) -> str: ...

    @property
    def search_parameters(self) -> dict[str, SearchParameter]: ...

    async def read(self, resource_id: str) -> StoredResource:
        """The current version; NotFound if it never existed, Gone if deleted."""

    async def vread(self, resource_id: str, version_id: int) -> StoredResource: ...

    async def history(
        self, *, resource_id: str | None, since: datetime | None, count: int, offset: int,
        at: tuple[datetime, datetime] | None = None,
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
