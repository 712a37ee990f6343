"""What an export job reads: each type as an ordinary search returns it (the same mapping, the
same rows: merged patients and deleted resources left out), keyset-paged so memory holds one
page at a time, with ``_lastUpdated`` bounded by the job's ``transactionTime`` (and after
``_since``). A Patient-level export keeps, of the other types, those in some patient's
compartment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.bulk_export.kickoff import PATIENT
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.search.query import SearchRequest, parse_search
from fhir_server.security.compartment import MEMBERSHIP
from fhir_server.security.ssn_mask import mask_patient
from mappings.fhir_dates import format_instant
from storage.export_jobs import ExportJob
from storage.media_tables import binaries, media_assets
from storage.search_pages import SearchCatalog, run_search
from storage.search_sql import SearchSql
from storage.stored import SearchResults
from storage.unit_of_work import reading


def in_a_patient_compartment(sql: SearchSql) -> ColumnElement[bool]:
    """The resource is in some patient's compartment: it refers to a Patient through one of
    its compartment parameters, names one as securityContext, or (a Binary) is the content
    of a live DocumentReference about a patient."""
    membership = MEMBERSHIP.get(sql.resource_type)
    members: list[ColumnElement[bool]] = []
    if membership is not None and membership.params:
        refs = sql.children["references"]
        members.append(exists().where(refs.c[sql.owner] == sql.main.c.id,
                                      refs.c.param.in_(membership.params),
                                      refs.c.target_type == "Patient"))
    if membership is not None and membership.column:
        column = sql.main.c[membership.column]
        members.append(or_(column.like("Patient/%"), column.like("%/Patient/%")))
    if sql.resource_type == "Binary":
        members.append(exists().where(and_(media_assets.c.binary_id == sql.main.c.id,
                                           media_assets.c.deleted_at.is_(None),
                                           media_assets.c.patient_id.is_not(None))))
    return or_(*members) if members else false()


class ExportReader:
    def __init__(self, *, engine: AsyncEngine, catalog: SearchCatalog,
                 repositories: Mapping[str, ResourceRepository]) -> None:
        self._engine = engine
        self._catalog = catalog
        self._repositories = repositories

    def _request(self, job: ExportJob, kind: str, *, token: str | None, count: int,
                 summary: bool = False) -> SearchRequest:
        pairs = [("_lastUpdated", f"le{format_instant(job.transaction_time)}")]
        if job.since:
            pairs.append(("_lastUpdated", f"gt{job.since}"))
        if token:
            pairs.append(("_page", token))
        if summary:
            pairs.append(("_summary", "count"))
        return parse_search(pairs, self._catalog.registry(), resource_type=kind, strict=True,
                            default_count=count, max_count=count, base_url="")

    async def _search(self, job: ExportJob, kind: str, request: SearchRequest) -> SearchResults:
        if job.level != PATIENT or kind == "Patient":
            return await self._repositories[kind].search(request)
        source = self._catalog.sources[kind]
        page = await run_search(self._engine, source, request, {},
                                default_conditions=(in_a_patient_compartment(source.sql),))
        return SearchResults(page.resources, page.next_token, page.previous_token, page.total,
                             [])

    async def count(self, job: ExportJob, kind: str) -> int:
        """How many resources of ``kind`` the job will export (for its progress)."""
        found = await self._search(job, kind, self._request(job, kind, token=None, count=1,
                                                            summary=True))
        return found.total or 0

    async def page(self, job: ExportJob, kind: str, *, token: str | None,
                   count: int) -> SearchResults:
        """The page starting at ``token`` (the type's first page when None)."""
        return await self._search(job, kind, self._request(job, kind, token=token, count=count))

    async def binary_hashes(self, ids: list[str]) -> dict[str, str]:
        """The blob of each Binary's current version."""
        if not ids:
            return {}
        async with reading(self._engine) as connection:
            rows = await connection.execute(select(binaries.c.id, binaries.c.sha256)
                                            .where(binaries.c.id.in_(ids)))
            return {row.id: row.sha256 for row in rows}


def masked_if(resource: dict[str, Any], *, reveal: bool) -> dict[str, Any]:
    """A Patient with its SSN masked unless the job may reveal it (decided at kick-off)."""
    if reveal or resource.get("resourceType") != "Patient":
        return resource
    return mask_patient(resource)
