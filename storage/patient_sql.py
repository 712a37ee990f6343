"""The SQL of a Patient's rows, built once from the Core tables for one dialect.

The read is one statement: the ``patients`` row with each child table aggregated into a JSON
array (``select_current_sql`` for any dialect; on PostgreSQL the whole row as one JSON text).
PostgreSQL writes a version in one statement (``PostgresPatientSql``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from mappings.patient import RESOURCE_CHILD_COLUMNS, RESOURCE_COLUMNS
from mappings.patient_search import SEARCH_ONLY
from storage.row_set import RowSet, ValueRows
from storage.tables import PATIENT_CHILD_TABLES, patients

WRITE_ONLY_KEYS = frozenset({"match_keys", "identifier_types"})
"""Child tables written, never read back: the matching keys, the identifier type codings."""
READ_CHILD_KEYS = tuple(key for key in PATIENT_CHILD_TABLES if key not in WRITE_ONLY_KEYS)
"""Child tables a read loads."""
SEARCH_ROW_KEYS = ("tokens", "references")
"""Child tables that only serve search; they come last in ``READ_CHILD_KEYS``."""
KEPT_BY_OTHERS = frozenset({"insurance_types"})
"""Columns of ``patients`` that a Patient write leaves alone (the Coverage writes keep them)."""
MAIN_COLUMNS: list[str] = [column.name for column in patients.columns
                           if column.name not in KEPT_BY_OTHERS]
READ_COLUMNS: list[str] = [name for name in MAIN_COLUMNS if name not in SEARCH_ONLY]
"""The main columns a resource is built from (the search-only ones left out)."""
CHILD_COLUMNS: dict[str, list[str]] = {
    key: [column.name for column in table.columns if column.name not in ("row_id", "patient_id")]
    for key, table in PATIENT_CHILD_TABLES.items()
}
READ_CHILD_COLUMNS = {key: CHILD_COLUMNS[key] for key in READ_CHILD_KEYS}


def _child_aggregate(dialect_name: str, key: str, *, as_text: bool = True) -> str:
    """A scalar subquery: the patient's rows of one child table as a JSON array of arrays."""
    table = PATIENT_CHILD_TABLES[key].name
    columns = ", ".join(f"c.{name}" for name in CHILD_COLUMNS[key])
    if dialect_name == "postgresql":
        cast = "::text" if as_text else ""
        return (
            f"(SELECT coalesce(json_agg(json_build_array({columns}) ORDER BY c.position),"
            f" '[]'::json){cast} FROM {table} c WHERE c.patient_id = p.id)"
        )
    return (
        f"(SELECT json_group_array(json_array({columns})) FROM (SELECT * FROM {table}"
        f" WHERE patient_id = p.id ORDER BY position) c)"
    )


def select_current_sql(dialect_name: str, placeholder: str) -> str:
    """The whole patient by id; ``placeholder`` is the driver's (``:id`` or ``%(id)s``)."""
    main = ", ".join(f"p.{name}" for name in MAIN_COLUMNS)
    children = ", ".join(f"{_child_aggregate(dialect_name, key)} AS \"{key}\""
                         for key in READ_CHILD_KEYS)
    return f"SELECT {main}, {children} FROM patients p WHERE p.id = {placeholder}"


def select_many_sql(dialect_name: str) -> str:
    """Several patients by id: ``:ids`` expands to a list (SQLAlchemy), ``%(ids)s`` is an
    array (psycopg)."""
    if dialect_name == "postgresql":
        return select_current_json_sql().replace("p.id = %(id)s", "p.id = ANY(%(ids)s)")
    return select_current_sql(dialect_name, ":id").replace("p.id = :id", "p.id IN :ids")


def select_current_json_sql(*, search_rows: bool = True) -> str:
    """PostgreSQL: the whole patient as one JSON array text (main columns, then children;
    without ``search_rows`` the search-only columns and the token and reference rows are left
    out: two sub-queries and half the text less per patient).

    One text column costs the driver far less than forty typed ones; orjson parses it.
    """
    main = ", ".join(f"p.{name}" for name in (MAIN_COLUMNS if search_rows else READ_COLUMNS))
    children = ", ".join(
        _child_aggregate("postgresql", key, as_text=False) for key in READ_CHILD_KEYS
        if search_rows or key not in SEARCH_ROW_KEYS)
    return f"SELECT json_build_array({main}, {children})::text FROM patients p WHERE p.id = %(id)s"


def row_json_for(outer_id: str, *, search_rows: bool) -> str:
    """PostgreSQL: a correlated scalar subquery giving the patient ``outer_id`` names (an SQL
    expression such as ``patients.id``) as the JSON text of ``select_current_json_sql``."""
    statement = select_current_json_sql(search_rows=search_rows)
    return "(" + statement.replace("p.id = %(id)s", f"p.id = {outer_id}") + ")"


def resource_json_for(outer_id: str) -> str:
    """PostgreSQL: like ``row_json_for`` but only the columns and child rows a resource is
    built from (``RESOURCE_COLUMNS``, ``RESOURCE_CHILD_COLUMNS``): a search page needs no
    more, and PostgreSQL builds and Python parses about half the text."""
    main = ", ".join(f"p.{name}" for name in RESOURCE_COLUMNS)
    children = ", ".join(
        f"(SELECT coalesce(json_agg(json_build_array("
        f"{', '.join(f'c.{name}' for name in columns)}) ORDER BY c.position), '[]'::json)"
        f" FROM {PATIENT_CHILD_TABLES[key].name} c WHERE c.patient_id = p.id)"
        for key, columns in RESOURCE_CHILD_COLUMNS.items())
    return (f"(SELECT json_build_array({main}, {children})::text FROM patients p"
            f" WHERE p.id = {outer_id})")


def row_set_from_resource_json(text: str) -> RowSet:
    """A RowSet (only what ``rows_to_resource`` reads) from the text of ``resource_json_for``;
    its timestamps stay ISO text (the mapping formats them from text) and its child rows stay
    value lists, which the mapping joins without building a dict per row."""
    values = orjson.loads(text)
    width = len(RESOURCE_COLUMNS)
    return ValueRows(dict(zip(RESOURCE_COLUMNS, values[:width])),
                     dict(zip(RESOURCE_CHILD_COLUMNS, values[width:])), RESOURCE_CHILD_COLUMNS)


def row_set_from_json(text: str, *, search_rows: bool = True) -> RowSet:
    """A RowSet from the text of ``select_current_json_sql`` (timestamps as ISO strings)."""
    return _row_set(orjson.loads(text), MAIN_COLUMNS if search_rows else READ_COLUMNS,
                    READ_CHILD_COLUMNS)


def _row_set(values: list[Any], columns: Sequence[str],
             child_columns: Mapping[str, Sequence[str]]) -> RowSet:
    """The main row (``columns``, timestamps parsed) then each child table's rows."""
    width = len(columns)
    main = dict(zip(columns, values[:width]))
    for name in ("last_updated", "deleted_at"):
        if main[name] is not None:
            main[name] = datetime.fromisoformat(main[name]).astimezone(UTC)
    children = {key: [dict(zip(names, row)) for row in rows]
                for (key, names), rows in zip(child_columns.items(), values[width:])}
    return RowSet(main=main, children=children)


def row_set_from_record(record: tuple[Any, ...]) -> RowSet:
    """A RowSet from a record of ``select_current_sql`` (main columns, then child JSON)."""
    width = len(MAIN_COLUMNS)
    main = dict(zip(MAIN_COLUMNS, record[:width]))
    children = {
        key: [dict(zip(names, values)) for values in orjson.loads(text or "[]")]
        for (key, names), text in zip(READ_CHILD_COLUMNS.items(), record[width:])
    }
    return RowSet(main=main, children=children)


class PostgresPatientSql:
    """PostgreSQL statements that write a whole version in ONE statement (data-modifying CTEs
    fed by JSON parameters), so a create or update is one round trip and one atomic statement."""

    def __init__(self) -> None:
        self.select_current = select_current_json_sql()
        self.select_many = select_many_sql("postgresql")
        main_columns = ", ".join(MAIN_COLUMNS)
        history = (
            "INSERT INTO resource_history (resource_type, resource_id, version_id, last_updated,"
            " method, snapshot) SELECT %(resource_type)s, main.id, %(version_id)s,"
            " %(last_updated)s, %(method)s, %(snapshot)s FROM main"
        )
        self.insert_version = (
            f"WITH main AS (INSERT INTO patients ({main_columns}) SELECT {main_columns}"
            f" FROM json_populate_record(NULL::patients, %(main)s::json) RETURNING id)"
            f"{self._children(replace=False)} {history}"
        )
        assigned = ", ".join(name for name in MAIN_COLUMNS if name != "id")
        self.update_version = (
            f"WITH main AS (UPDATE patients SET ({assigned}) = (SELECT {assigned}"
            f" FROM json_populate_record(NULL::patients, %(main)s::json))"
            f" WHERE id = %(resource_id)s AND version_id = %(expected_version)s RETURNING id)"
            f"{self._children(replace=True)} {history}"
        )
        self.delete_version = (
            "WITH main AS (UPDATE patients SET version_id = %(version_id)s,"
            " last_updated = %(last_updated)s, deleted_at = %(last_updated)s"
            " WHERE id = %(resource_id)s AND version_id = %(expected_version)s RETURNING id)"
            f" {history}"
        )
        self.mrn_taken = "SELECT 1 FROM patients WHERE mrn = %(mrn)s AND id <> %(id)s"

    @staticmethod
    def _children(*, replace: bool) -> str:
        """CTEs writing each child table. On replace, rows are upserted by (patient, position)
        and rows past the new count deleted, so no statement part touches another's rows."""
        parts: list[str] = []
        for key, table in PATIENT_CHILD_TABLES.items():
            names = CHILD_COLUMNS[key]
            columns = ", ".join(names)
            upsert = ""
            if replace:
                assignments = ", ".join(f"{name} = EXCLUDED.{name}" for name in names
                                        if name != "position")
                upsert = f" ON CONFLICT (patient_id, position) DO UPDATE SET {assignments}"
                parts.append(f", trim_{key} AS (DELETE FROM {table.name}"
                             f" WHERE patient_id IN (SELECT id FROM main)"
                             f" AND position >= %({key}_count)s)")
            parts.append(
                f", write_{key} AS (INSERT INTO {table.name} (patient_id, {columns})"
                f" SELECT main.id, {columns} FROM main,"
                f" json_populate_recordset(NULL::{table.name}, %({key})s::json){upsert})"
            )
        return "".join(parts)
