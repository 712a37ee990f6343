"""One request's audit writer: turns Accesses into AuditEvents for this caller and address and
stores them; ``atomic()`` opens the transaction a write and its AuditEvent share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.security.audit import Access, audit_event
from fhir_server.security.tokens import Principal
from storage.audit_store import AuditTrail
from storage.unit_of_work import active_connection, unit_of_work


class Auditor:
    def __init__(self, trail: AuditTrail | None, engine: AsyncEngine, principal: Principal, *,
                 address: str | None, query: str | None, clock: Callable[[], datetime]) -> None:
        self._trail = trail
        self._engine = engine
        self.principal = principal
        self.address = address
        self.query = query
        """The request's query string (searches record it)."""
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self._trail is not None

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        """One transaction for a write and its AuditEvent (the running unit of work's, in a
        transaction Bundle); also without the audit trail, so the parts of one write (a
        document and the Binary of its inline data) commit or roll back together."""
        if active_connection(self._engine) is not None:
            yield
            return
        async with unit_of_work(self._engine):
            yield

    async def record(self, access: Access) -> None:
        await self.record_many([access])

    async def record_many(self, accesses: list[Access]) -> None:
        if self._trail is None or not accesses:
            return
        moment = self._clock()
        await self._trail.record([audit_event(access, self.principal, address=self.address,
                                              recorded=moment) for access in accesses])

    async def record_failure(self, access: Access) -> None:
        """A refused or failed access, always in a transaction of its own: a rolled-back
        write must not take the record of its failure with it. Inside a unit of work (a
        transaction Bundle) it is queued, not awaited: the unit may hold SQLite's lock."""
        if self._trail is None:
            return
        event = audit_event(access, self.principal, address=self.address,
                            recorded=self._clock())
        if active_connection(self._engine) is not None:
            self._trail.record_later([event])
        else:
            await self._trail.record([event])
