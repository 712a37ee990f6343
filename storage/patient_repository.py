"""Versioned Patient repository: every write is a new version with a history snapshot, in one
database transaction; deletes are soft. Knows rows and versions, nothing of HTTP."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.conditional import parse_criteria
from fhir_server.errors import (
    Conflict,
    FhirError,
    Gone,
    InvalidResource,
    NotFound,
    PreconditionFailed,
)
from fhir_server.interactions.repository import ItemFailed
from fhir_server.merging.guard import refuse_merged_references
from fhir_server.search.query import SearchRequest
from mappings import patient as patient_mapping
from mappings.patient import MappingContext, PatientRuleError
from mappings.patient_search import PATIENT_SEARCH, SEARCH_ONLY, SORTS_FOLLOWING_MATCHES
from mappings.search_backing import SearchParameter
from storage.history import HistoryEntry, history_page, read_version
from storage.patient_lookup import find_patient_ids
from storage.patient_rows import PATIENT_TABLES, PatientRowStore
from storage.resource_rows import insert_versions
from storage.row_set import RowSet
from storage.search_pages import SearchCatalog, SearchSource, run_search
from storage.search_sql import SearchSql
from storage.sort_fence import sort_follows_matches
from storage.stored import RowConflict, SearchResults, StoredResource, VersionMoved, now
from storage.tables import PATIENT_CHILD_TABLES, patients
from storage.unit_of_work import reading, writing

RESOURCE_TYPE = "Patient"
WRITE_ATTEMPTS = 5


def generate_mrn(moment: datetime) -> str:
    """``MRN-{YEAR}{6 digits}``, random so concurrent creates need no shared counter."""
    return f"MRN-{moment.year}{secrets.randbelow(1_000_000):06d}"


class PatientRepository:
    """Reads and writes Patients over the PRM tables."""

    def __init__(
        self, engine: AsyncEngine, rows: PatientRowStore, context: MappingContext,
        catalog: SearchCatalog | None = None,
    ) -> None:
        self._engine = engine
        self._rows = rows
        self._context = context
        self._catalog = catalog or SearchCatalog()
        sql = SearchSql(RESOURCE_TYPE, patients, PATIENT_CHILD_TABLES, owner="patient_id",
                        cipher=context.cipher, phone_region=context.phone_region,
                        peers=self._catalog.compilers, parameters=PATIENT_SEARCH)
        self._source = SearchSource(sql, rows, self._to_resource, PATIENT_SEARCH)
        self._catalog.add(self._source)

    @property
    def resource_type(self) -> str:
        return RESOURCE_TYPE

    @property
    def search_parameters(self) -> dict[str, SearchParameter]:
        return PATIENT_SEARCH

    # ------------------------------------------------------------------- reads

    async def read(self, resource_id: str) -> StoredResource:
        """The current version; NotFound if it never existed, Gone if deleted."""
        rows = await self._rows.select(resource_id)
        if rows is None:
            raise NotFound(f"Patient/{resource_id} is not known")
        if rows.main["deleted_at"] is not None:
            raise Gone(f"Patient/{resource_id} was deleted",
                       headers={"ETag": f'W/"{rows.main["version_id"]}"'})
        return self._stored(rows)

    async def vread(self, resource_id: str, version_id: int) -> StoredResource:
        async with reading(self._engine) as connection:
            entry = await read_version(connection, RESOURCE_TYPE, resource_id, version_id)
        if entry is None:
            raise NotFound(f"Patient/{resource_id}/_history/{version_id} is not known")
        stored = self._from_history(entry)
        if stored.deleted:
            raise Gone(f"Patient/{resource_id} version {version_id} is a deletion")
        return stored

    async def history(
        self, *, resource_id: str | None, since: datetime | None, count: int, offset: int,
        at: tuple[datetime, datetime] | None = None,
    ) -> tuple[int, list[StoredResource]]:
        if resource_id is not None and await self._rows.select(resource_id) is None:
            raise NotFound(f"Patient/{resource_id} is not known")
        async with reading(self._engine) as connection:
            total, entries = await history_page(
                connection, resource_type=RESOURCE_TYPE, resource_id=resource_id,
                since=since, count=count, offset=offset, at=at,
            )
        return total, [self._from_history(entry) for entry in entries]

    async def search(self, request: SearchRequest) -> SearchResults:
        """One page of the Patients the search selects."""
        merged_asked = any(clause.name == "merged" for clause in request.clauses)
        fence = self._engine.dialect.name == "postgresql" and sort_follows_matches(
            request.clauses, (column for column, _ in request.controls.sort),
            SORTS_FOLLOWING_MATCHES)
        page = await run_search(
            self._engine, self._source, request, self._catalog.sources,
            default_conditions=() if merged_asked else (patients.c.merged_into_id.is_(None),),
            include_limit=self._catalog.include_limit, fence_sort=fence)
        return SearchResults(page.resources, page.next_token, page.previous_token, page.total,
                             page.included)

    async def merged_into(self, resource_ids: set[str]) -> dict[str, str]:
        """Which of these patients were merged, and into whom."""
        async with reading(self._engine) as connection:
            result = await connection.execute(
                select(patients.c.id, patients.c.merged_into_id).where(
                    patients.c.id.in_(sorted(resource_ids)),
                    patients.c.merged_into_id.is_not(None)))
            return {row[0]: row[1] for row in result}

    async def resources(self, resource_ids: list[str]) -> list[dict[str, Any]]:
        """The current resources of these live patients (unknown and deleted ids left out)."""
        return [self._to_resource(rows) for rows in await self.live_rows(resource_ids)]

    async def live_rows(self, resource_ids: list[str]) -> list[RowSet]:
        """The current rows of these live patients (unknown and deleted ids left out)."""
        return [rows for rows in await self._rows.select_many(resource_ids, search_rows=False)
                if rows.main["deleted_at"] is None]

    def to_resource(self, rows: RowSet) -> dict[str, Any]:
        return self._to_resource(rows)

    async def find(self, query: str) -> list[str]:
        """Ids of live Patients meeting every criterion of a conditional query (at most two)."""
        criteria = parse_criteria(query, self._context.phone_region)
        async with reading(self._engine) as connection:
            return await find_patient_ids(connection, criteria, self._context.cipher)

    # ------------------------------------------------------------------ writes

    async def create(self, resource: dict[str, Any], *,
                     resource_id: str | None = None) -> StoredResource:
        """A new Patient with a server-assigned id (any id in the body is ignored)."""
        if "link" in resource:
            await refuse_merged_references(resource, self.merged_into)
        resource_id = resource_id or str(uuid.uuid4())
        try:
            return await self._write(resource_id, resource, expected_version=None, method="POST")
        except VersionMoved:
            raise Conflict("Another Patient with the same MRN was created concurrently") from None

    async def create_many(self, items: list[tuple[str, dict[str, Any]]]) -> list[StoredResource]:
        """Many new Patients (id, resource) written together: mapped first, MRNs checked and
        drawn in one query, then every table filled in a few statements (COPY on PostgreSQL)
        on the caller's unit of work. A drawn MRN that a concurrent writer took meanwhile is
        drawn again. ItemFailed names the position of a refused resource."""
        moment = now()
        client_mrns = [patient_mapping.find_mrn(resource, self._context.mrn_system)
                       for _, resource in items]
        taken = await self._taken_mrns([mrn for mrn in client_mrns if mrn])
        for position, mrn in enumerate(client_mrns):
            if mrn and mrn in taken:
                raise ItemFailed(position, Conflict(f"MRN {mrn} already belongs to another "
                                                    "Patient"))
            if mrn:
                taken.add(mrn)  # a second Patient of the Bundle with it is refused
        mrns = [mrn or generate_mrn(moment) for mrn in client_mrns]
        redraw = list(range(len(items)))
        mapped: dict[int, tuple[RowSet, HistoryEntry]] = {}
        for _ in range(WRITE_ATTEMPTS):
            mrns = await self._draw_mrns(mrns, client_mrns, moment)
            for position in redraw:
                mapped[position] = await self._new_version(position, items[position],
                                                           mrns[position], moment)
            versions = [mapped[position] for position in range(len(items))]
            try:
                async with writing(self._engine) as connection:
                    await insert_versions(connection, PATIENT_TABLES, versions)
            except (IntegrityError, psycopg.errors.IntegrityError) as exc:
                clashes = await self._taken_mrns(mrns)
                redraw = [position for position, mrn in enumerate(mrns)
                          if mrn in clashes and not client_mrns[position]]
                if not redraw or any(client_mrns[p] in clashes for p in range(len(items))):
                    raise Conflict("A Patient of this Bundle clashes with one written "
                                   "concurrently (an id or MRN); send it again") from exc
                continue
            return [StoredResource(rows.main["id"], 1, moment, self._to_resource(rows),
                                   method="POST") for rows, _ in versions]
        raise Conflict("Could not allocate unique MRNs; try again")

    async def _draw_mrns(self, mrns: list[str], client_mrns: list[str | None],
                         moment: datetime) -> list[str]:
        """``mrns`` with each drawn one that is taken (or drawn twice) drawn again."""
        for _ in range(WRITE_ATTEMPTS):
            drawn = [mrn for mrn, sent in zip(mrns, client_mrns, strict=True) if not sent]
            clashes = await self._taken_mrns(drawn) | {m for m in drawn if drawn.count(m) > 1}
            if not clashes:
                return mrns
            mrns = [generate_mrn(moment) if mrn in clashes and not sent else mrn
                    for mrn, sent in zip(mrns, client_mrns, strict=True)]
        raise Conflict("Could not allocate unique MRNs; try again")

    async def _new_version(self, position: int, item: tuple[str, dict[str, Any]], mrn: str,
                           moment: datetime) -> tuple[RowSet, HistoryEntry]:
        resource_id, resource = item
        try:
            if "link" in resource:
                await refuse_merged_references(resource, self.merged_into)
            rows = patient_mapping.resource_to_rows(
                resource, resource_id=resource_id, version_id=1, last_updated=moment,
                mrn=mrn, context=self._context)
        except PatientRuleError as exc:
            raise ItemFailed(position, InvalidResource(str(exc), issues=exc.issues)) from exc
        except FhirError as exc:
            raise ItemFailed(position, exc) from exc
        return rows, HistoryEntry(RESOURCE_TYPE, resource_id, 1, moment, "POST",
                                  rows.to_snapshot(derived=SEARCH_ONLY))

    async def _taken_mrns(self, mrns: list[str]) -> set[str]:
        if not mrns:
            return set()
        async with reading(self._engine) as connection:
            result = await connection.execute(
                select(patients.c.mrn).where(patients.c.mrn.in_(sorted(set(mrns)))))
            return {row[0] for row in result}

    async def update(
        self, resource_id: str, resource: dict[str, Any], *, if_match: int | None
    ) -> tuple[StoredResource, bool]:
        """(new version, created): creates the Patient when the id is unknown or deleted."""
        if "link" in resource:
            await refuse_merged_references(resource, self.merged_into)
        for _ in range(WRITE_ATTEMPTS):
            current = await self._rows.select(resource_id)
            current_version = current.main["version_id"] if current else None
            if if_match is not None and if_match != current_version:
                raise PreconditionFailed(
                    f"If-Match version {if_match} does not match the current version "
                    f"{current_version if current_version is not None else '(none)'} of "
                    f"Patient/{resource_id}"
                )
            created = current is None or current.main["deleted_at"] is not None
            try:
                stored = await self._write(
                    resource_id, resource, expected_version=current_version,
                    method="PUT", current=current,
                )
            except VersionMoved:
                if if_match is not None:
                    raise PreconditionFailed(
                        f"Patient/{resource_id} changed while it was being updated"
                    ) from None
                continue
            return stored, created
        raise Conflict(f"Patient/{resource_id} is being changed by others; try again")

    async def delete(self, resource_id: str) -> StoredResource | None:
        """Soft delete: a new version marked deleted. None when it was deleted already."""
        current = await self._rows.select(resource_id)
        if current is None:
            raise NotFound(f"Patient/{resource_id} is not known")
        if current.main["deleted_at"] is not None:
            return None
        version_id = current.main["version_id"] + 1
        moment = now()
        try:
            await self._rows.save_deletion(
                HistoryEntry(RESOURCE_TYPE, resource_id, version_id, moment, "DELETE", None),
                expected_version=current.main["version_id"],
            )
        except VersionMoved:
            raise Conflict(f"Patient/{resource_id} changed while it was being deleted") from None
        return StoredResource(resource_id, version_id, moment, None, method="DELETE")

    async def _write(
        self,
        resource_id: str,
        resource: dict[str, Any],
        *,
        expected_version: int | None,
        method: str,
        current: RowSet | None = None,
    ) -> StoredResource:
        client_mrn = patient_mapping.find_mrn(resource, self._context.mrn_system)
        kept_mrn = current.main["mrn"] if current is not None else None
        for _ in range(WRITE_ATTEMPTS):
            moment = now()
            mrn = client_mrn or kept_mrn or generate_mrn(moment)
            version_id = (expected_version or 0) + 1
            try:
                rows = patient_mapping.resource_to_rows(
                    resource, resource_id=resource_id, version_id=version_id,
                    last_updated=moment, mrn=mrn, context=self._context,
                )
            except PatientRuleError as exc:
                raise InvalidResource(str(exc), issues=exc.issues) from exc
            if current is not None:
                rows.main["merged_into_id"] = current.main["merged_into_id"]
            if client_mrn and await self._rows.mrn_taken(mrn, resource_id):
                raise Conflict(f"MRN {mrn} already belongs to another Patient")
            entry = HistoryEntry(RESOURCE_TYPE, resource_id, version_id, moment, method,
                                 rows.to_snapshot(derived=SEARCH_ONLY))
            try:
                await self._rows.save_version(rows, entry, expected_version=expected_version)
            except RowConflict:
                if method == "POST" and not client_mrn:
                    continue  # a generated MRN collided with another patient's: draw again
                raise VersionMoved() from None
            return StoredResource(
                resource_id, version_id, moment,
                patient_mapping.rows_to_resource(rows, self._context), method=method,
            )
        raise Conflict("Could not allocate a unique MRN; try again")

    # ----------------------------------------------------------------- helpers

    def _to_resource(self, rows: RowSet) -> dict[str, Any]:
        return patient_mapping.rows_to_resource(rows, self._context)

    def _stored(self, rows: RowSet) -> StoredResource:
        return StoredResource(
            rows.main["id"], rows.main["version_id"], rows.main["last_updated"],
            patient_mapping.rows_to_resource(rows, self._context),
        )

    def _from_history(self, entry: HistoryEntry) -> StoredResource:
        resource = None
        if entry.snapshot is not None:
            resource = patient_mapping.rows_to_resource(
                RowSet.from_snapshot(entry.snapshot), self._context
            )
        return StoredResource(entry.resource_id, entry.version_id, entry.last_updated, resource,
                              method=entry.method)
