"""Keyset page boundaries: a column that holds no nulls (the id) is bounded by a plain
comparison, so PostgreSQL starts its index scan at the boundary instead of reading every row
before it; nullable sort columns keep their nulls-last alternative."""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.dialects import postgresql

from storage.keyset import PageToken, SortKey, beyond

ROWS = Table("rows", MetaData(), Column("id", String, primary_key=True),
             Column("family", String, nullable=True))


def _sql(keys: list[SortKey], token: PageToken) -> str:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(beyond(keys, token).compile(dialect=dialect,
                                           compile_kwargs={"literal_binds": True}))


def test_the_id_boundary_is_a_plain_comparison() -> None:
    assert _sql([SortKey(ROWS.c.id, False)], PageToken(True, ["p-9"])) == "rows.id > 'p-9'"


def test_a_nullable_sort_key_still_reaches_the_nulls_after_it() -> None:
    sql = _sql([SortKey(ROWS.c.family, False), SortKey(ROWS.c.id, False)],
               PageToken(True, ["Rivera", "p-9"]))
    assert "rows.family IS NULL" in sql
    assert "rows.id > 'p-9'" in sql and "rows.id IS NULL" not in sql
