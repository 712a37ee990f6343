"""The version history: one row per version of every resource, with a snapshot of its rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.tables import resource_history


@dataclass(frozen=True)
class HistoryEntry:
    """One version: ``snapshot`` is the rows' JSON, None for a delete."""

    resource_type: str
    resource_id: str
    version_id: int
    last_updated: datetime
    method: str
    snapshot: str | None


    def as_row(self) -> dict[str, Any]:
        """The ``resource_history`` row (column name -> value)."""
        return {"resource_type": self.resource_type, "resource_id": self.resource_id,
                "version_id": self.version_id, "last_updated": self.last_updated,
                "method": self.method, "snapshot": self.snapshot}


async def record_version(connection: AsyncConnection, entry: HistoryEntry) -> None:
    await connection.execute(insert(resource_history), entry.as_row())


async def read_version(
    connection: AsyncConnection, resource_type: str, resource_id: str, version_id: int
) -> HistoryEntry | None:
    result = await connection.execute(
        select(resource_history).where(
            resource_history.c.resource_type == resource_type,
            resource_history.c.resource_id == resource_id,
            resource_history.c.version_id == version_id,
        )
    )
    row = result.mappings().first()
    return HistoryEntry(**row) if row else None


async def history_page(
    connection: AsyncConnection,
    *,
    resource_type: str,
    resource_id: str | None,
    since: datetime | None,
    count: int,
    offset: int,
    at: tuple[datetime, datetime] | None = None,
) -> tuple[int, list[HistoryEntry]]:
    """(total, entries) newest first, for one resource or a whole type: versions made at or
    after ``since``, and versions current at some point of ``at`` (first and last instant)."""
    conditions = [resource_history.c.resource_type == resource_type]
    if resource_id is not None:
        conditions.append(resource_history.c.resource_id == resource_id)
    if since is not None:
        conditions.append(resource_history.c.last_updated >= since)
    if at is not None:
        conditions += current_during(*at)
    total = (
        await connection.execute(select(func.count()).select_from(resource_history).where(*conditions))
    ).scalar_one()
    result = await connection.execute(
        select(resource_history)
        .where(*conditions)
        .order_by(resource_history.c.last_updated.desc(), resource_history.c.version_id.desc(),
                  resource_history.c.resource_id)
        .limit(count)
        .offset(offset)
    )
    return total, [HistoryEntry(**row) for row in result.mappings()]


def current_during(first: datetime, last: datetime) -> list[Any]:
    """Conditions on ``resource_history`` rows: the version was current at some instant from
    ``first`` to ``last``. A version is current from its own ``last_updated`` until the next
    version's, so it was made by ``last`` and no later version of it was made by ``first``."""
    later = resource_history.alias("later")
    superseded = exists().where(
        later.c.resource_type == resource_history.c.resource_type,
        later.c.resource_id == resource_history.c.resource_id,
        later.c.version_id > resource_history.c.version_id,
        later.c.last_updated <= first)
    return [resource_history.c.last_updated <= last, ~superseded]
