"""The Coverage repository: the mapped repository over ``patient_insurances`` with the PRM's
write rules: no reference to a merged patient, and one live Coverage per slot (order 1, 2, 3)
of a patient, so the PRM's primary, secondary and tertiary insurance stay unambiguous. Each
write refreshes its patients' insurance summary (storage/insurance_summary.py) in its own
transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fhir_server.errors import Conflict
from fhir_server.merging.guard import MergedInto, refuse_merged_references
from mappings.coverage import SLOTS, CoverageMapping
from mappings.patient import MappingContext
from storage.coverage_tables import PATIENT_INSURANCE_CHILD_TABLES, patient_insurances
from storage.insurance_summary import refresh
from storage.mapped_repository import MappedRepository
from storage.resource_rows import InTransaction, TableRows
from storage.search_pages import SearchCatalog
from storage.stored import StoredResource
from storage.unit_of_work import reading


class CoverageRepository(MappedRepository):
    """Coverage writes that keep the patients' insurance summary in step."""

    async def create(self, resource: dict[str, Any], *, facts: Any = None,
                     in_transaction: InTransaction | None = None,
                     resource_id: str | None = None) -> StoredResource:
        return await super().create(resource, facts=facts, resource_id=resource_id,
                                    in_transaction=self._refreshing(resource, None))

    async def update(self, resource_id: str, resource: dict[str, Any], *,
                     if_match: int | None, facts: Any = None,
                     in_transaction: InTransaction | None = None
                     ) -> tuple[StoredResource, bool]:
        previous = await self._patient_of(resource_id)
        return await super().update(resource_id, resource, if_match=if_match, facts=facts,
                                    in_transaction=self._refreshing(resource, previous))

    async def delete(self, resource_id: str, *,
                     in_transaction: InTransaction | None = None) -> StoredResource | None:
        previous = await self._patient_of(resource_id)
        return await super().delete(resource_id,
                                    in_transaction=self._refreshing(None, previous))

    async def _patient_of(self, resource_id: str) -> str | None:
        """The patient the stored Coverage belongs to now (before a write moves it)."""
        current = await self.rows.select(resource_id)
        return current.main.get("patient_id") if current is not None else None

    @staticmethod
    def _refreshing(resource: dict[str, Any] | None, previous: str | None) -> InTransaction:
        """Refresh the new beneficiary's summary and the one the Coverage leaves."""
        async def step(connection: AsyncConnection) -> None:
            await refresh(connection, [previous, beneficiary_of(resource or {})])
        return step


def beneficiary_of(resource: dict[str, Any]) -> str | None:
    reference = (resource.get("beneficiary") or {}).get("reference")
    if isinstance(reference, str) and reference.startswith("Patient/"):
        return reference.split("/", 1)[1]
    return None


SLOT_FREEING = ("cancelled", "entered-in-error")
"""Coverage statuses that leave the patient's slot free for another policy."""


def coverage_repository(engine: AsyncEngine, catalog: SearchCatalog, context: MappingContext,
                        merged_into: MergedInto) -> MappedRepository:
    async def before_write(resource: dict[str, Any]) -> None:
        await refuse_merged_references(resource, merged_into)
        await _refuse_taken_slot(engine, resource)

    return CoverageRepository(
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
                                      table.c.status.notin_(SLOT_FREEING))
             .where(table.c.id != (resource.get("id") or "")).limit(1))
    async with reading(engine) as connection:
        holder = (await connection.execute(query)).scalar()
    if holder is not None:
        raise Conflict(f"Patient/{patient_id} already has a {SLOTS[order]} insurance "
                       f"(Coverage/{holder}, order {order}); update or delete it first")
