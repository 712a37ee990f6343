"""``patients.insurance_types``: what insurance each patient holds in force, kept beside the
patient so ``$demographics`` counts insured patients and insurance types in its one scan of
``patients`` (joining the insurance rows took seconds at a million patients).

NULL when the patient holds no live, active Coverage; else ``|code|code|`` of the distinct
Coverage.type codes, sorted, with an empty code for a Coverage without type (``||``). Every
write of a Coverage refreshes its patients in the write's own transaction, and so does
``$merge`` / ``$unmerge`` for the two patients whose Coverages moved."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.coverage_tables import patient_insurances
from storage.tables import patients


def summary(type_codes: Iterable[str | None]) -> str | None:
    codes = sorted({code or "" for code in type_codes})
    return "|" + "|".join(codes) + "|" if codes else None


def types_of(value: str | None) -> list[str]:
    """The type codes of a summary ("" for a Coverage without type); [] when uninsured."""
    return value[1:-1].split("|") if value else []


async def refresh(connection: AsyncConnection, patient_ids: Iterable[str | None]) -> None:
    """Recompute the summary of these patients from their Coverage rows."""
    table = patient_insurances.c
    for patient_id in sorted({found for found in patient_ids if found}):
        codes = (await connection.execute(
            select(table.type_code).where(table.patient_id == patient_id,
                                          table.deleted_at.is_(None),
                                          table.status == "active"))).scalars()
        await connection.execute(update(patients).where(patients.c.id == patient_id)
                                 .values(insurance_types=summary(codes)))
