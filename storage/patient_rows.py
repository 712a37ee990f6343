"""SQL for a Patient's rows: the ``patients`` row and its child rows, read in one statement."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Table, TextClause, delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Text

from storage.row_set import RowSet
from storage.tables import PATIENT_CHILD_TABLES, patients

CHILD_COLUMNS: dict[str, list[str]] = {
    key: [column.name for column in table.columns if column.name not in ("row_id", "patient_id")]
    for key, table in PATIENT_CHILD_TABLES.items()
}


def _child_aggregate(dialect: str, key: str, table: Table) -> str:
    columns = ", ".join(f"c.{name}" for name in CHILD_COLUMNS[key])
    if dialect == "postgresql":
        return (
            f"(SELECT coalesce(json_agg(json_build_array({columns}) ORDER BY c.position),"
            f" '[]'::json)::text FROM {table.name} c WHERE c.patient_id = p.id) AS {key}"
        )
    return (
        f"(SELECT json_group_array(json_array({columns})) FROM (SELECT * FROM {table.name}"
        f" WHERE patient_id = p.id ORDER BY position) c) AS {key}"
    )


class PatientRowsSql:
    """Reads and writes a Patient's rows; the read is one statement, children as JSON arrays."""

    def __init__(self, dialect: str) -> None:
        main_columns = ", ".join(f"p.{column.name}" for column in patients.columns)
        aggregates = ", ".join(
            _child_aggregate(dialect, key, table) for key, table in PATIENT_CHILD_TABLES.items()
        )
        self._select_current: TextClause = text(
            f"SELECT {main_columns}, {aggregates} FROM patients p WHERE p.id = :id"
        ).columns(*patients.columns, *(
            _typed(key) for key in PATIENT_CHILD_TABLES
        ))

    async def select(self, connection: AsyncConnection, resource_id: str) -> RowSet | None:
        """The current rows of the patient (deleted ones too), or None."""
        result = await connection.execute(self._select_current, {"id": resource_id})
        row = result.mappings().first()
        if row is None:
            return None
        main = {column.name: row[column.name] for column in patients.columns}
        children = {
            key: [dict(zip(names, values)) for values in orjson.loads(row[key] or "[]")]
            for key, names in CHILD_COLUMNS.items()
        }
        return RowSet(main=main, children=children)

    async def insert(self, connection: AsyncConnection, rows: RowSet) -> None:
        await connection.execute(insert(patients), rows.main)
        await self._insert_children(connection, rows)

    async def replace(self, connection: AsyncConnection, rows: RowSet, expected_version: int) -> bool:
        """Overwrite the patient if it is still at ``expected_version``; False if it moved on."""
        result = await connection.execute(
            update(patients)
            .where(patients.c.id == rows.main["id"], patients.c.version_id == expected_version),
            rows.main,
        )
        if result.rowcount != 1:
            return False
        for table in PATIENT_CHILD_TABLES.values():
            await connection.execute(delete(table).where(table.c.patient_id == rows.main["id"]))
        await self._insert_children(connection, rows)
        return True

    async def mark_deleted(
        self, connection: AsyncConnection, *, resource_id: str, version_id: int,
        last_updated: Any, expected_version: int,
    ) -> bool:
        result = await connection.execute(
            update(patients)
            .where(patients.c.id == resource_id, patients.c.version_id == expected_version)
            .values(version_id=version_id, last_updated=last_updated, deleted_at=last_updated)
        )
        return result.rowcount == 1

    async def mrn_taken(self, connection: AsyncConnection, mrn: str, resource_id: str) -> bool:
        result = await connection.execute(
            select(patients.c.id).where(patients.c.mrn == mrn, patients.c.id != resource_id)
        )
        return result.first() is not None

    async def _insert_children(self, connection: AsyncConnection, rows: RowSet) -> None:
        patient_id = rows.main["id"]
        for key, table in PATIENT_CHILD_TABLES.items():
            child_rows = rows.children.get(key) or []
            if child_rows:
                await connection.execute(
                    insert(table), [row | {"patient_id": patient_id} for row in child_rows]
                )


def _typed(key: str) -> Any:
    from sqlalchemy import column

    return column(key, Text)
