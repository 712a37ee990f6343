"""Bulk loading into empty tables: drop their secondary indexes first and build them once the
rows are in (PostgreSQL builds a GIN trigram index from sorted input far faster than it
maintains one row by row). Indexes behind a constraint (primary keys, unique keys) and unique
indexes stay, so the load is checked as before. The indexes are rebuilt whatever happens to
the load (a ``finally``); if the loader itself is killed, ``fhir-server migrate`` does not
bring them back, so the definitions are printed before they are dropped."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import psycopg

REBUILD_MEMORY = "1GB"
"""maintenance_work_mem for the rebuild (the GIN indexes of a million rows fit)."""

_SECONDARY = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relname = ANY(%(tables)s) AND NOT i.indisunique AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ORDER BY 1"""


def secondary_indexes(connection: psycopg.Connection, tables: Sequence[str]
                      ) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of every secondary index on ``tables``."""
    return [(str(name), str(definition)) for name, definition in
            connection.execute(_SECONDARY, {"tables": list(tables)}).fetchall()]


def run_on_connections(conninfo: str, statements: Sequence[str], *, connections: int,
                       setup: Sequence[str] = ()) -> None:
    """Run ``statements`` (each in autocommit) on ``connections`` connections at once, in the
    order given as connections come free, after ``setup`` on each connection. Once the rows
    are in, nothing else uses the machine: one statement at a time (a GIN build or a VACUUM
    of one table runs on one core) would leave the others idle."""
    pending = list(statements)

    def work() -> None:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            for statement in setup:
                connection.execute(statement)
            while pending:
                try:
                    statement = pending.pop(0)
                except IndexError:  # another connection took the last one
                    return
                connection.execute(statement)

    with ThreadPoolExecutor(max_workers=connections) as pool:
        for future in [pool.submit(work) for _ in range(max(connections, 1))]:
            future.result()


@contextmanager
def indexes_deferred(connection: psycopg.Connection, tables: Sequence[str],
                     log: Callable[[str], None], *, conninfo: str,
                     connections: int = 2) -> Iterator[None]:
    """Drop the secondary indexes of ``tables`` (autocommit connection), run the block, then
    build them again on ``connections`` connections to ``conninfo`` at once."""
    indexes = secondary_indexes(connection, tables)
    log(f"dropping {len(indexes)} secondary indexes until the rows are in:")
    for name, definition in indexes:
        log(f"  {definition}")
        connection.execute(f"DROP INDEX {name}")  # names from the catalog, already quoted
    try:
        yield
    finally:
        started = time.monotonic()
        # GIN builds first: they take longest and run on one core each
        definitions = sorted((definition for _name, definition in indexes),
                             key=lambda definition: " USING gin " not in definition)
        run_on_connections(conninfo, definitions,
                           connections=connections,
                           setup=[f"SET maintenance_work_mem = '{REBUILD_MEMORY}'"])
        log(f"rebuilt {len(indexes)} indexes in {time.monotonic() - started:.1f} s"
            f" on {connections} connections")
