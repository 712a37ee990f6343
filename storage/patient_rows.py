"""Executors of the Patient row SQL. Each write of a version (rows and history together) is
atomic. ``SqlAlchemyPatientRows`` is the portable one (the embedded SQLite default);
``patient_rows_pg.PsycopgPatientRows`` is the PostgreSQL fast path. Both read with the one
statement of ``storage.patient_sql`` and give the same answers."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Text, bindparam, column, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.history import HistoryEntry
from storage.patient_sql import (
    MAIN_COLUMNS,
    READ_CHILD_KEYS,
    row_set_from_record,
    select_current_sql,
    select_many_sql,
)
from storage.resource_rows import TableSet, write_deletion, write_version
from storage.row_set import RowSet
from storage.stored import RowConflict, VersionMoved
from storage.tables import PATIENT_CHILD_TABLES, patients
from storage.unit_of_work import reading, writing

PATIENT_TABLES = TableSet(patients, PATIENT_CHILD_TABLES, owner="patient_id")

__all__ = ["PATIENT_TABLES", "PatientRowStore", "RowConflict", "SqlAlchemyPatientRows",
           "VersionMoved"]


class PatientRowStore(Protocol):
    async def select(self, resource_id: str) -> RowSet | None:
        """The current rows (deleted ones too), or None when the id was never used."""

    async def select_many(self, resource_ids: list[str], *,
                          search_rows: bool = True) -> list[RowSet]:
        """The current rows of these patients, in no particular order; without
        ``search_rows`` a store may leave the search-only columns and rows out."""

    async def mrn_taken(self, mrn: str, resource_id: str) -> bool:
        """True when another patient holds ``mrn``."""

    async def save_version(
        self, rows: RowSet, entry: HistoryEntry, *, expected_version: int | None
    ) -> None:
        """Insert (``expected_version`` None) or overwrite the rows and add the history entry,
        atomically; VersionMoved / RowConflict when another writer got there first."""

    async def save_deletion(self, entry: HistoryEntry, *, expected_version: int) -> None:
        """Mark the patient deleted at ``entry``'s version and time, with its history entry."""

    async def close(self) -> None: ...


class SqlAlchemyPatientRows:
    """The portable executor: SQLAlchemy Core on an async engine, one transaction per write."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        result_columns = (*(patients.c[name] for name in MAIN_COLUMNS),
                          *(column(key, Text) for key in READ_CHILD_KEYS))
        self._select = text(select_current_sql(engine.dialect.name, ":id")).columns(
            *result_columns)
        self._select_many = text(select_many_sql(engine.dialect.name)).bindparams(
            bindparam("ids", expanding=True)).columns(*result_columns)

    async def select(self, resource_id: str) -> RowSet | None:
        async with reading(self._engine) as connection:
            result = await connection.execute(self._select, {"id": resource_id})
            record = result.first()
        return row_set_from_record(tuple(record)) if record is not None else None

    async def select_many(self, resource_ids: list[str], *,
                          search_rows: bool = True) -> list[RowSet]:
        if not resource_ids:
            return []
        async with reading(self._engine) as connection:
            result = await connection.execute(self._select_many, {"ids": resource_ids})
            return [row_set_from_record(tuple(record)) for record in result]

    async def mrn_taken(self, mrn: str, resource_id: str) -> bool:
        async with reading(self._engine) as connection:
            result = await connection.execute(
                select(patients.c.id).where(patients.c.mrn == mrn, patients.c.id != resource_id))
            return result.first() is not None

    async def save_version(
        self, rows: RowSet, entry: HistoryEntry, *, expected_version: int | None
    ) -> None:
        try:
            async with writing(self._engine) as connection:
                await write_version(connection, PATIENT_TABLES, rows, entry,
                                    expected_version=expected_version)
        except IntegrityError as exc:
            raise RowConflict(str(exc.orig)) from exc

    async def save_deletion(self, entry: HistoryEntry, *, expected_version: int) -> None:
        async with writing(self._engine) as connection:
            await write_deletion(connection, PATIENT_TABLES, entry,
                                 expected_version=expected_version)

    async def close(self) -> None:
        return None
