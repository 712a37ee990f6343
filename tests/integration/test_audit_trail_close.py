"""Shutting the audit trail down while a group commit is being written: the events are stored
and the connection goes back to the pool (a flush cancelled mid-statement lost its events and,
on SQLite, kept the write lock until the garbage collector found the connection)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import await_

from fhir_server.security.audit import Access, audit_event
from fhir_server.security.tokens import ANONYMOUS
from fhir_server.settings import Settings
from storage.audit_store import AuditTrail
from storage.audit_tables import audit_events
from storage.database import create_engine
from tests.conftest import empty_tables

SLOW_STATEMENT_SECONDS = 0.3
EVENTS = 3


def _events(count: int) -> list[dict[str, Any]]:
    moment = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    return [audit_event(Access("read", "Patient", entities=(f"Patient/p-{index}",)), ANONYMOUS,
                        address="203.0.113.9", recorded=moment) for index in range(count)]


async def _close_during_a_slow_flush(settings: Settings) -> int:
    """Queue events, let the flusher start a statement that takes a while, close the trail
    meanwhile; how many of the pool's connections are still checked out once it has closed."""
    engine = create_engine(settings)
    started = asyncio.Event()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _slow(*_: Any) -> None:
        started.set()
        await_(asyncio.sleep(SLOW_STATEMENT_SECONDS))

    trail = AuditTrail(engine)
    trail.record_later(_events(EVENTS))
    await asyncio.wait_for(started.wait(), timeout=10)
    await trail.close()
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)  # both backends' engines pool this way
    checked_out = pool.checkedout()
    event.remove(engine.sync_engine, "before_cursor_execute", _slow)
    await engine.dispose()
    return checked_out


def test_close_waits_for_the_flush_in_progress(settings: Settings, engine: Engine) -> None:
    empty_tables(engine)
    assert asyncio.run(_close_during_a_slow_flush(settings)) == 0
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(audit_events)).scalar_one()
    assert stored == EVENTS
    with engine.begin() as connection:  # nothing holds the write lock (SQLite) or the rows
        connection.execute(audit_events.delete())
