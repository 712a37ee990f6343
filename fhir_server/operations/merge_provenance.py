"""Each merge (and its undo) as a read-only FHIR Provenance (https://hl7.org/fhir/R4/provenance.html),
built from its ``patient_merges`` record: the resource versions it wrote as targets, when,
who asked (the client address until authentication exists), the ISO 21089 lifecycle event
(merge / unmerge), and the source's version before the merge as the revised entity."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.errors import MethodNotAllowed, NotFound
from fhir_server.search.query import SearchRequest
from fhir_server.search.values import DateValue, ReferenceValue, TokenValue
from mappings.fhir_dates import format_instant
from mappings.search_backing import DateRange, IdColumn, ReferenceRows, SearchParameter
from storage.stored import SearchResults, StoredResource
from storage.tables import patient_merges
from storage.unit_of_work import reading

LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
UNDO_SUFFIX = "-undo"
PROVENANCE_SEARCH: dict[str, SearchParameter] = {
    "_id": SearchParameter("token", IdColumn(), None, "Logical id (a merge id, or it + '-undo')"),
    "target": SearchParameter("reference", ReferenceRows(("Patient",)), None,
                              "Provenance.target: the merged or surviving patient"),
    "patient": SearchParameter("reference", ReferenceRows(("Patient",)), None,
                               "Provenance.target where it is a Patient"),
    "recorded": SearchParameter("date", DateRange("merged_at", "merged_at"), None,
                                "Provenance.recorded"),
}
MAX_RESULTS = 100


def _refused(action: str) -> MethodNotAllowed:
    return MethodNotAllowed(f"Provenance is read-only here: it records merges, {action} is "
                            "not allowed", headers={"Allow": "GET, HEAD"})


def provenances(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The merge's Provenance, and its undo's when it was undone."""
    detail = orjson.loads(record["detail"])
    source, target = record["source_id"], record["target_id"]
    moved = detail["moved"]

    def resource(suffix: str, moment: datetime, event: str, display: str,
                 targets: list[str]) -> dict[str, Any]:
        return {
            "resourceType": "Provenance", "id": record["id"] + suffix,
            "meta": {"versionId": "1", "lastUpdated": format_instant(moment)},
            "target": [{"reference": reference} for reference in targets],
            "recorded": format_instant(moment),
            "activity": {"coding": [{"system": LIFECYCLE, "code": event, "display": display}]},
            "agent": [{"type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "performer"}]},
                       "who": {"display": f"client {record['requested_by'] or 'unknown'}"}}],
            "entity": [{"role": "revision", "what": {
                "reference": f"Patient/{source}/_history/{detail['source']['version_before']}"}}],
        }

    merged = [f"Patient/{source}/_history/{detail['source']['version_after']}",
              f"Patient/{target}/_history/{detail['target']['version_after']}",
              *(f"{m['type']}/{m['id']}/_history/{m['version_after']}" for m in moved)]
    found = [resource("", record["merged_at"], "merge", "Merge Record Lifecycle Event", merged)]
    if record["undone_at"] is not None:
        found.append(resource(UNDO_SUFFIX, record["undone_at"], "unmerge",
                              "Unmerge Record Lifecycle Event", detail.get("undone", [])))
    return found


class ProvenanceRepository:
    """Provenance as a read-only ResourceRepository over ``patient_merges``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def resource_type(self) -> str:
        return "Provenance"

    @property
    def search_parameters(self) -> dict[str, SearchParameter]:
        return PROVENANCE_SEARCH

    async def read(self, resource_id: str) -> StoredResource:
        merge_id = resource_id.removesuffix(UNDO_SUFFIX)
        async with reading(self._engine) as connection:
            record = (await connection.execute(select(patient_merges).where(
                patient_merges.c.id == merge_id))).mappings().first()
        found = [p for p in provenances(dict(record)) if p["id"] == resource_id] if record else []
        if not found:
            raise NotFound(f"Provenance/{resource_id} is not known")
        moment = datetime.fromisoformat(found[0]["recorded"])
        return StoredResource(resource_id, 1, moment, found[0])

    async def vread(self, resource_id: str, version_id: int) -> StoredResource:
        if version_id != 1:
            raise NotFound(f"Provenance/{resource_id}/_history/{version_id} is not known")
        return await self.read(resource_id)

    async def history(self, *, resource_id: str | None, since: datetime | None, count: int,
                      offset: int, at: tuple[datetime, datetime] | None = None
                      ) -> tuple[int, list[StoredResource]]:
        raise _refused("history")

    async def search(self, request: SearchRequest) -> SearchResults:
        statement: Select[Any] = select(patient_merges)
        for clause in request.clauses:
            conditions = []
            for value in clause.values:
                if isinstance(value, TokenValue) and value.code:
                    conditions.append(patient_merges.c.id == value.code.removesuffix(UNDO_SUFFIX))
                elif isinstance(value, ReferenceValue):
                    conditions.append(or_(patient_merges.c.source_id == value.target_id,
                                          patient_merges.c.target_id == value.target_id))
                elif isinstance(value, DateValue):
                    conditions.append(_date(value))
            if conditions:
                statement = statement.where(or_(*conditions))
        statement = statement.order_by(patient_merges.c.merged_at.desc()).limit(MAX_RESULTS)
        async with reading(self._engine) as connection:
            records = [dict(row) for row in (await connection.execute(statement)).mappings()]
        resources = [p for record in records for p in provenances(record)]
        return SearchResults(resources[:request.controls.count], None, None,
                             len(resources), [])

    async def find(self, query: str) -> list[str]:
        raise _refused("conditional create")

    async def create(self, resource: dict[str, Any], *,
                     resource_id: str | None = None) -> StoredResource:
        raise _refused("create")

    async def update(self, resource_id: str, resource: dict[str, Any], *,
                     if_match: int | None) -> tuple[StoredResource, bool]:
        raise _refused("update")

    async def delete(self, resource_id: str) -> StoredResource | None:
        raise _refused("delete")


def _date(value: DateValue) -> Any:
    column = patient_merges.c.merged_at
    comparisons = {"eq": (column >= value.low) & (column <= value.high),
                   "ne": (column < value.low) | (column > value.high),
                   "gt": column > value.high, "sa": column > value.high,
                   "ge": column >= value.low, "lt": column < value.low,
                   "eb": column < value.low, "le": column <= value.high,
                   "ap": (column >= value.low) & (column <= value.high)}
    return comparisons[value.prefix]
