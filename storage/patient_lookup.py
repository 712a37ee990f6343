"""Exact lookups of Patients by a few parameters, for conditional interactions (If-None-Exist).

The full FHIR search engine is a separate concern; this answers equality criteria only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.crypto import FieldCipher
from storage.tables import patient_identifiers, patient_names, patient_telecoms, patients
from terminology import systems

SSN_SYSTEM = systems.SSN


@dataclass(frozen=True)
class Criterion:
    """``name`` is a FHIR search parameter; ``system`` only for tokens given as system|value."""

    name: str
    value: str
    system: str | None = None


def _condition(criterion: Criterion, cipher: FieldCipher):  # type: ignore[no-untyped-def]
    name, value, system = criterion.name, criterion.value, criterion.system
    if name == "_id":
        return patients.c.id == value
    if name == "identifier":
        ident = patient_identifiers
        if system == SSN_SYSTEM:
            match = ident.c.value_hash == cipher.search_hash(value)
        else:
            match = ident.c.value == value
        if system:
            match = and_(match, ident.c.system == system)
        return exists().where(ident.c.patient_id == patients.c.id, match)
    if name == "family":
        return exists().where(patient_names.c.patient_id == patients.c.id,
                              func.lower(patient_names.c.family) == value.lower())
    if name == "given":
        return func.lower(patients.c.given_name).like(value.lower() + "%")
    if name == "birthdate":
        return patients.c.birth_date == date.fromisoformat(value)
    if name == "gender":
        return patients.c.gender == value
    if name == "email":
        return exists().where(patient_telecoms.c.patient_id == patients.c.id,
                              patient_telecoms.c.system == "email",
                              func.lower(patient_telecoms.c.value) == value.lower())
    if name == "phone":
        return exists().where(patient_telecoms.c.patient_id == patients.c.id,
                              patient_telecoms.c.value_e164 == value)
    raise KeyError(name)


LOOKUP_PARAMETERS = ("_id", "identifier", "family", "given", "birthdate", "gender", "email",
                     "phone")


async def find_patient_ids(
    connection: AsyncConnection, criteria: list[Criterion], cipher: FieldCipher, limit: int = 2
) -> list[str]:
    """Ids of live Patients meeting every criterion (at most ``limit``)."""
    statement: Select[tuple[str]] = select(patients.c.id).where(
        patients.c.deleted_at.is_(None), *(_condition(c, cipher) for c in criteria)
    ).limit(limit)
    result = await connection.execute(statement)
    return [str(row[0]) for row in result]
