"""The compile cache renders exactly what a fresh compilation renders, whatever the values."""

from __future__ import annotations

import pytest
from sqlalchemy import Select, literal_column, select
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from storage.compiled_sql import CompiledSqlCache
from storage.tables import patients

DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]


def search(ids: list[str], name: str, count: int) -> Select[tuple[str, int]]:
    return (select(patients.c.id, literal_column("1"))
            .where(patients.c.id.in_(ids), patients.c.name_search.like(name))
            .order_by(patients.c.id).limit(count))


def fresh(statement: Select[tuple[str, int]]) -> tuple[str, dict[str, object]]:
    compiled = statement.compile(dialect=DIALECT, compile_kwargs={"render_postcompile": True})
    return compiled.string, dict(compiled.params)


@pytest.mark.parametrize(("ids", "name", "count"), [
    (["a"], "%|smi%", 20), (["b", "c", "d"], "%|jo%", 5), ([], "%|x%", 1),
    (["e", "f"], "%|smi%", 21)])
def test_a_cached_shape_renders_each_request_as_a_fresh_compilation_would(
        ids: list[str], name: str, count: int) -> None:
    cache = CompiledSqlCache(DIALECT)
    cache.render(search(["warm", "up"], "%|w%", 3))  # the shape is cached with other values
    assert cache.render(search(ids, name, count)) == fresh(search(ids, name, count))


def test_the_cache_keeps_at_most_its_size() -> None:
    cache = CompiledSqlCache(DIALECT, size=2)
    for width in range(1, 6):
        statement = select(*(literal_column(str(number)) for number in range(width)))
        cache.render(statement)
    assert len(cache._compiled) == 2
