"""One database transaction shared by many repository calls (a transaction Bundle).

Inside ``unit_of_work(engine)`` every read and write the repositories make on that engine runs
on the unit's one connection, so a transaction Bundle's entries see each other's rows and are
committed (or rolled back) together; readers elsewhere see all of it or none. Outside a unit,
``reading`` and ``writing`` open their own connection and transaction as before.

Each write inside a unit runs in a SAVEPOINT: a refused write (a unique key taken, a version
moved) undoes only itself, so a repository may retry it (a generated MRN drawn again) on
PostgreSQL, whose transactions are otherwise dead after an error.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fhir_server.errors import Conflict


@dataclass(frozen=True)
class _Unit:
    engine: AsyncEngine
    connection: AsyncConnection
    committed: list[Callable[[], Awaitable[None] | None]] = field(default_factory=list)
    """What to run once the unit has committed (a write's wake-up calls, blob removals)."""
    rolled_back: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """What to run once the unit has rolled back (bytes placed for writes that are gone)."""


logger = logging.getLogger("fhir_server")
RETRY_LATER = frozenset({"40P01", "40001"})
"""PostgreSQL deadlock and serialization failures: the unit is rolled back, a retry works."""
_current: ContextVar[_Unit | None] = ContextVar("fhir_unit_of_work", default=None)


def active_connection(engine: AsyncEngine | None = None) -> AsyncConnection | None:
    """The connection of the unit of work running here (on ``engine``, when given), or None."""
    unit = _current.get()
    if unit is None:
        return None
    if engine is not None and unit.engine.sync_engine is not engine.sync_engine:
        return None
    return unit.connection


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction for every repository call made inside; committed when the block ends,
    rolled back when it raises. Units do not nest."""
    if _current.get() is not None:
        raise RuntimeError("a unit of work is already running in this context")
    unit: _Unit | None = None
    try:
        async with engine.begin() as connection:
            unit = _Unit(engine, connection)
            token = _current.set(unit)
            try:
                yield connection
            finally:
                _current.reset(token)
    except (DBAPIError, psycopg.Error) as exc:
        await _run_after(unit.rolled_back if unit is not None else [], "rolled back")
        state = getattr(getattr(exc, "orig", None) or exc, "sqlstate", None)
        if state in RETRY_LATER:
            raise Conflict("The transaction collided with another one writing the same "
                           "resources and was rolled back; send it again") from exc
        raise
    except BaseException:
        await _run_after(unit.rolled_back if unit is not None else [], "rolled back")
        raise
    await _run_after(unit.committed if unit is not None else [], "committed")


async def _run_after(callbacks: Sequence[Callable[[], Awaitable[None] | None]],
                     ended: str) -> None:
    """Each callback in turn; a failure is logged, never raised (the transaction has ended,
    and what follows it must not change its answer)."""
    for callback in callbacks:
        try:
            result = callback()
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("a step after a %s transaction failed", ended)


async def when_rolled_back(callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` if what was just written is undone: when the running unit rolls back
    inside one; at once outside (the caller calls this when its own write has failed)."""
    unit = _current.get()
    if unit is None:
        await callback()
    else:
        unit.rolled_back.append(callback)


def after_commit(callback: Callable[[], None]) -> None:
    """Run ``callback`` once what was just written is visible to others: at once outside a
    unit of work, after the unit's commit inside one (a dispatcher woken before the commit
    would look, find nothing, and sleep until its next poll)."""
    unit = _current.get()
    if unit is None:
        callback()
    else:
        unit.committed.append(callback)


async def when_committed(callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` once what was just written has committed: after the unit's commit
    inside one, at once outside (a write outside a unit has committed when it returns)."""
    unit = _current.get()
    if unit is None:
        await callback()
    else:
        unit.committed.append(callback)


READ_ONLY = "fhir_read_only"
"""Execution option of a connection that only reads: on SQLite its transaction begins
deferred (a snapshot beside the writer, WAL), not ``BEGIN IMMEDIATE`` (``storage.database``)."""


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection to read on: the unit's (its uncommitted rows visible), else a new one
    that only reads (never write on it: on SQLite it holds no write lock)."""
    connection = active_connection(engine)
    if connection is not None:
        yield connection
        return
    async with engine.connect() as opened:
        yield await opened.execution_options(**{READ_ONLY: True})


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction to write in: a savepoint of the unit's, else a transaction of its own."""
    connection = active_connection(engine)
    if connection is not None:
        async with connection.begin_nested():
            yield connection
        return
    async with engine.begin() as opened:
        yield opened


async def driver_connection(connection: AsyncConnection) -> Any:
    """The DBAPI driver's own connection under ``connection`` (psycopg's, on PostgreSQL)."""
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def serialize(key: str) -> None:
    """Inside a unit of work on PostgreSQL, wait for any other unit holding ``key`` (a
    transaction-scoped advisory lock), so two transactions that both create "if none exists"
    cannot both find none. SQLite units hold the one write lock from their start already."""
    connection = active_connection()
    if connection is not None and connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                                 {"key": key})
