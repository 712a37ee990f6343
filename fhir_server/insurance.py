"""The Coverage repository: the mapped repository over ``patient_insurances`` with the PRM's
write rules: no reference to a merged patient, and one live Coverage per slot (order 1, 2, 3)
of a patient, so the PRM's primary, secondary and tertiary insurance stay unambiguous."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.errors import Conflict
from fhir_server.merging.guard import MergedInto, refuse_merged_references
from mappings.coverage import SLOTS, CoverageMapping
from mappings.patient import MappingContext
from storage.coverage_tables import PATIENT_INSURANCE_CHILD_TABLES, patient_insurances
from storage.mapped_repository import MappedRepository
from storage.resource_rows import TableRows
from storage.search_pages import SearchCatalog
from storage.unit_of_work import reading


def coverage_repository(engine: AsyncEngine, catalog: SearchCatalog, context: MappingContext,
                        merged_into: MergedInto) -> MappedRepository:
    async def before_write(resource: dict[str, Any]) -> None:
        await refuse_merged_references(resource, merged_into)
        await _refuse_taken_slot(engine, resource)

    return MappedRepository(
        engine, TableRows(engine, patient_insurances, PATIENT_INSURANCE_CHILD_TABLES),
        CoverageMapping(), catalog, phone_region=context.phone_region, cipher=context.cipher,
        before_write=before_write)


async def _refuse_taken_slot(engine: AsyncEngine, resource: dict[str, Any]) -> None:
    order = resource.get("order")
    reference = (resource.get("beneficiary") or {}).get("reference")
    if order not in SLOTS or not isinstance(reference, str) or "/" not in reference:
        return
    patient_id = reference.split("/", 1)[1]
    table = patient_insurances
    query = (select(table.c.id).where(table.c.patient_id == patient_id,
                                      table.c.coverage_order == order,
                                      table.c.deleted_at.is_(None),
                                      table.c.status != "entered-in-error")
             .where(table.c.id != (resource.get("id") or "")).limit(1))
    async with reading(engine) as connection:
        holder = (await connection.execute(query)).scalar()
    if holder is not None:
        raise Conflict(f"Patient/{patient_id} already has a {SLOTS[order]} insurance "
                       f"(Coverage/{holder}, order {order}); update or delete it first")
