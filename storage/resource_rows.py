"""The portable row store of a mapped type: a main table and child tables whose rows point at
their resource through an owner column. Each version (rows and history) is written in one
transaction; an optional step runs inside it, after the rows are written (a Binary
claims its blob there)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, TypeDecorator, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.history import HistoryEntry, record_version
from storage.pooled_reads import pool_for, select_rows_on_pool
from storage.row_set import RowSet
from storage.stored import RowConflict, VersionMoved
from storage.tables import resource_history
from storage.unit_of_work import active_connection, reading, writing

InTransaction = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True)
class TableSet:
    """A mapped type's tables: the main table, its child tables, and the child tables' column
    naming the resource they belong to."""

    main: Table
    children: Mapping[str, Table]
    owner: str = "resource_id"


async def write_version(connection: AsyncConnection, tables: TableSet, rows: RowSet,
                        entry: HistoryEntry, *, expected_version: int | None) -> None:
    """Insert (``expected_version`` None) or overwrite one resource's rows and add its history
    entry on ``connection`` (the caller's transaction); VersionMoved when the row is not at
    ``expected_version``. A taken key raises the driver's IntegrityError."""
    resource_id = rows.main["id"]
    if expected_version is None:
        await connection.execute(insert(tables.main), rows.main)
    else:
        result = await connection.execute(
            update(tables.main).where(tables.main.c.id == resource_id,
                                      tables.main.c.version_id == expected_version),
            rows.main)
        if result.rowcount != 1:
            raise VersionMoved()
        for table in tables.children.values():
            await connection.execute(delete(table).where(table.c[tables.owner] == resource_id))
    for key, table in tables.children.items():
        child_rows: list[dict[str, Any]] = rows.children.get(key) or []
        if child_rows:
            await connection.execute(
                insert(table), [row | {tables.owner: resource_id} for row in child_rows])
    await record_version(connection, entry)


BATCH = 500


async def write_versions(connection: AsyncConnection, tables: TableSet,
                         versions: list[tuple[RowSet, HistoryEntry, int]]) -> None:
    """Overwrite many resources' rows at once (rows, history entry, expected version), a few
    statements per 500 resources: the versions are checked under row locks first (PostgreSQL
    ``FOR UPDATE``; SQLite writers hold the database), VersionMoved if any moved."""
    main = tables.main
    for start in range(0, len(versions), BATCH):
        chunk = versions[start:start + BATCH]
        ids = [rows.main["id"] for rows, _, _ in chunk]
        locked = select(main.c.id, main.c.version_id).where(main.c.id.in_(ids))
        if connection.dialect.name == "postgresql":
            locked = locked.with_for_update()
        current = dict((await connection.execute(locked)).tuples().all())
        if any(current.get(rows.main["id"]) != expected for rows, _, expected in chunk):
            raise VersionMoved()
        columns = [column.name for column in main.columns if column.name != "id"]
        await connection.execute(
            update(main).where(main.c.id == bindparam("match_id"))
            .values({name: bindparam(name) for name in columns}),
            [{"match_id": rows.main["id"], **{name: rows.main.get(name) for name in columns}}
             for rows, _, _ in chunk])
        for key, table in tables.children.items():
            await connection.execute(delete(table).where(table.c[tables.owner].in_(ids)))
            await insert_rows(connection, table, [
                row | {tables.owner: rows.main["id"]}
                for rows, _, _ in chunk for row in rows.children.get(key) or []])
        await insert_rows(connection, resource_history, [entry.as_row() for _, entry, _ in chunk])


async def insert_versions(connection: AsyncConnection, tables: TableSet,
                          versions: list[tuple[RowSet, HistoryEntry]]) -> None:
    """Insert many new resources (first versions) at once."""
    await insert_rows(connection, tables.main, [rows.main for rows, _ in versions])
    for key, table in tables.children.items():
        await insert_rows(connection, table, [row | {tables.owner: rows.main["id"]}
                                              for rows, _ in versions
                                              for row in rows.children.get(key) or []])
    await insert_rows(connection, resource_history, [entry.as_row() for _, entry in versions])


async def insert_rows(connection: AsyncConnection, table: Table,
                      rows: list[dict[str, Any]]) -> None:
    """Many rows into ``table`` on the caller's transaction: ``COPY`` on PostgreSQL (an
    executemany runs and adapts one INSERT per row, about ten times slower for thousands of
    rows), an executemany elsewhere."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        await connection.execute(insert(table), rows)
        return
    columns = [column.name for column in table.columns]
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    names = ", ".join(f'"{name}"' for name in columns)
    # COPY bypasses SQLAlchemy's types: bind what they would (UTC datetimes)
    decorated: list[tuple[int, TypeDecorator[Any]]] = []
    for index, name in enumerate(columns):
        column_type = table.c[name].type
        if isinstance(column_type, TypeDecorator):
            decorated.append((index, column_type))
    async with driver.cursor() as cursor, cursor.copy(
            f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        for row in rows:
            values = [row.get(name) for name in columns]
            for index, decorator in decorated:
                if values[index] is not None:
                    values[index] = decorator.process_bind_param(values[index],
                                                                 connection.dialect)
            await copy.write_row(values)


async def write_deletion(connection: AsyncConnection, tables: TableSet, entry: HistoryEntry,
                         *, expected_version: int) -> None:
    result = await connection.execute(
        update(tables.main)
        .where(tables.main.c.id == entry.resource_id,
               tables.main.c.version_id == expected_version)
        .values(version_id=entry.version_id, last_updated=entry.last_updated,
                deleted_at=entry.last_updated))
    if result.rowcount != 1:
        raise VersionMoved()
    await record_version(connection, entry)


class TableRows:
    def __init__(self, engine: AsyncEngine, main: Table, children: Mapping[str, Table],
                 *, owner: str = "resource_id") -> None:
        self.engine = engine
        self.tables = TableSet(main, children, owner)

    @property
    def main(self) -> Table:
        return self.tables.main

    @property
    def children(self) -> Mapping[str, Table]:
        return self.tables.children

    @property
    def owner(self) -> str:
        return self.tables.owner

    async def select(self, resource_id: str, *, children: bool = True) -> RowSet | None:
        found = await self.select_many([resource_id], children=children)
        return found[0] if found else None

    async def select_many(self, resource_ids: list[str], *,
                          children: bool = True) -> list[RowSet]:
        """The current rows of these ids (deleted ones too), in no particular order;
        ``children=False``: the main rows only (child lists left empty)."""
        if not resource_ids:
            return []
        pool = pool_for(self.engine)
        if pool is not None and active_connection(self.engine) is None:
            return await select_rows_on_pool(pool, self.tables, resource_ids, children=children)
        async with reading(self.engine) as connection:
            return await select_rows(connection, self.tables, resource_ids, children=children)

    async def save_version(
        self, rows: RowSet, entry: HistoryEntry, *, expected_version: int | None,
        in_transaction: InTransaction | None = None,
    ) -> None:
        """Insert (``expected_version`` None) or overwrite the rows and add the history entry,
        atomically; VersionMoved / RowConflict when another writer got there first."""
        try:
            async with writing(self.engine) as connection:
                await write_version(connection, self.tables, rows, entry,
                                    expected_version=expected_version)
                if in_transaction is not None:
                    await in_transaction(connection)
        except IntegrityError as exc:
            raise RowConflict(str(exc.orig)) from exc

    async def save_deletion(
        self, entry: HistoryEntry, *, expected_version: int,
        in_transaction: InTransaction | None = None,
    ) -> None:
        async with writing(self.engine) as connection:
            await write_deletion(connection, self.tables, entry,
                                 expected_version=expected_version)
            if in_transaction is not None:
                await in_transaction(connection)


async def select_rows(connection: AsyncConnection, tables: TableSet,
                      resource_ids: list[str], *, children: bool = True) -> list[RowSet]:
    """The current rows of these ids on ``connection`` (deleted ones too); ``children=False``:
    the main rows only, for a caller that needs nothing from the child tables."""
    result = await connection.execute(select(tables.main).where(tables.main.c.id.in_(resource_ids)))
    by_id = {row["id"]: RowSet(dict(row), {key: [] for key in tables.children})
             for row in result.mappings()}
    if not by_id or not children:
        return list(by_id.values())
    for key, table in tables.children.items():
        owner = table.c[tables.owner]
        child_result = await connection.execute(
            select(table).where(owner.in_(list(by_id))).order_by(owner, table.c.position))
        for child in child_result.mappings():
            row = dict(child)
            by_id[row.pop(tables.owner)].children[key].append(row)
    return list(by_id.values())
