"""The PostgreSQL fast path for Patient rows: psycopg 3 on its own pool in autocommit mode.

A read is one statement returning one JSON text; a write is one statement (data-modifying
CTEs, atomic by themselves). Why not SQLAlchemy here: on this hardware its async execution
costs about half of a minimal psycopg app's throughput (README, Benchmarks), and a version
written as eight statements in a transaction costs eight driver calls. The row shapes are
the same as the portable executor's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Select, literal_column
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url

from storage.compiled_sql import CompiledSqlCache
from storage.history import HistoryEntry
from storage.patient_sql import (
    PostgresPatientSql,
    resource_json_for,
    row_json_for,
    row_set_from_json,
    row_set_from_resource_json,
    select_current_json_sql,
)
from storage.row_set import RowSet
from storage.stored import RowConflict, VersionMoved
from storage.unit_of_work import active_connection, driver_connection

_SQL = PostgresPatientSql()
_SELECT_MANY_LEAN = select_current_json_sql(search_rows=False).replace(
    "p.id = %(id)s", "p.id = ANY(%(ids)s)")
"""Several patients without their search-only columns and rows (what mapping needs)."""
_PAGE_JSON = resource_json_for("patients.id")
_PAGE_JSON_WITH_SEARCH_ROWS = row_json_for("patients.id", search_rows=True)
_COMPILED = CompiledSqlCache(PGDialect_psycopg())  # type: ignore[no-untyped-call]


def statement_timeout_option(milliseconds: int) -> str:
    """The libpq ``options`` that make the server cancel a statement running longer."""
    return f"-c statement_timeout={int(milliseconds)}"


def conninfo(database_url: str) -> str:
    """A libpq URI from an SQLAlchemy URL (``postgresql+psycopg://`` -> ``postgresql://``)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


def _json(value: Any) -> str:
    return orjson.dumps(value, default=_iso).decode()


def _iso(value: Any) -> str:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


class PsycopgPatientRows:
    """Patient rows on a psycopg connection pool."""

    def __init__(self, database_url: str, *, pool_size: int,
                 statement_timeout_ms: int = 0) -> None:
        kwargs: dict[str, Any] = {"autocommit": True}
        if statement_timeout_ms > 0:
            kwargs["options"] = statement_timeout_option(statement_timeout_ms)
        self._pool = AsyncConnectionPool(
            conninfo(database_url), min_size=1, max_size=max(pool_size, 1),
            kwargs=kwargs, open=False,
        )

    async def open(self) -> None:
        await self._pool.open()

    @property
    def pool(self) -> AsyncConnectionPool:
        """The autocommit connections (other single-statement writers share them)."""
        return self._pool

    async def close(self) -> None:
        await self._pool.close()

    @asynccontextmanager
    async def _connection(self, *, write: bool = False) -> AsyncIterator[Any]:
        """A pooled autocommit connection, or inside a unit of work the unit's own (a write
        there in a savepoint, so a refused one undoes only itself)."""
        unit = active_connection()
        if unit is not None and unit.dialect.name == "postgresql":
            if write:
                async with unit.begin_nested():
                    yield await driver_connection(unit)
            else:
                yield await driver_connection(unit)
            return
        async with self._pool.connection() as connection:
            yield connection

    async def select(self, resource_id: str) -> RowSet | None:
        async with self._connection() as connection:
            cursor = await connection.execute(_SQL.select_current, {"id": resource_id})
            record = await cursor.fetchone()
        return row_set_from_json(record[0]) if record is not None else None

    async def select_many(self, resource_ids: list[str], *,
                          search_rows: bool = True) -> list[RowSet]:
        if not resource_ids:
            return []
        statement = _SQL.select_many if search_rows else _SELECT_MANY_LEAN
        async with self._connection() as connection:
            cursor = await connection.execute(statement, {"ids": resource_ids})
            return [row_set_from_json(record[0], search_rows=search_rows)
                    for record in await cursor.fetchall()]

    async def select_page(
        self, statement: Select[Any], *, search_rows: bool
    ) -> list[tuple[list[Any], RowSet]]:
        """Run a search page query (its columns: the sort keys, the id last) with each
        patient's rows added as one more column: one statement, one round trip."""
        parse: Callable[[str], RowSet]
        if search_rows:  # _include reads the reference rows too
            query = statement.add_columns(literal_column(_PAGE_JSON_WITH_SEARCH_ROWS))
            parse = row_set_from_json
        else:  # only what the resources are built from
            query = statement.add_columns(literal_column(_PAGE_JSON))
            parse = row_set_from_resource_json
        sql, parameters = _COMPILED.render(query)
        async with self._connection() as connection:
            cursor = await connection.execute(sql, parameters)
            records = await cursor.fetchall()
        return [(list(record[:-1]), parse(record[-1])) for record in records]

    async def mrn_taken(self, mrn: str, resource_id: str) -> bool:
        async with self._connection() as connection:
            cursor = await connection.execute(_SQL.mrn_taken, {"mrn": mrn, "id": resource_id})
            return await cursor.fetchone() is not None

    async def save_version(
        self, rows: RowSet, entry: HistoryEntry, *, expected_version: int | None
    ) -> None:
        parameters = entry.as_row() | {
            "main": _json(rows.main),
            **{key: _json(child_rows) for key, child_rows in rows.children.items()},
        }
        statement = _SQL.insert_version
        if expected_version is not None:
            statement = _SQL.update_version
            parameters["expected_version"] = expected_version
            parameters |= {f"{key}_count": len(child_rows)
                           for key, child_rows in rows.children.items()}
        await self._execute_one(statement, parameters)

    async def save_deletion(self, entry: HistoryEntry, *, expected_version: int) -> None:
        await self._execute_one(
            _SQL.delete_version,
            entry.as_row() | {"expected_version": expected_version},
        )

    async def _execute_one(self, statement: str, parameters: dict[str, Any]) -> None:
        """Run a version-writing statement; it must write exactly one history row."""
        try:
            async with self._connection(write=True) as connection:
                cursor = await connection.execute(statement, parameters)
                written = cursor.rowcount
        except psycopg.errors.IntegrityError as exc:
            raise RowConflict(str(exc)) from exc
        if written != 1:
            raise VersionMoved()


