"""What the operators' metrics read from the database at scrape time: messages by channel and
state, the oldest due message and the stored blob bytes, as three aggregate statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.media_tables import blobs
from storage.messaging_tables import message_deliveries
from storage.unit_of_work import reading


@dataclass(frozen=True)
class OperationsSnapshot:
    messages: dict[tuple[str, str], int]
    """Outbox messages by (channel, state)."""
    oldest_due: datetime | None
    """When the longest-waiting queued message fell due (None: nothing queued is due)."""
    blob_bytes: int
    blob_count: int


async def operations_snapshot(engine: AsyncEngine, *, now: datetime) -> OperationsSnapshot:
    """One short read-only connection; the due-message lookup uses the (state, next attempt)
    index, the other two scan their tables."""
    deliveries = message_deliveries.c
    async with reading(engine) as connection:
        by_state = await connection.execute(
            select(deliveries.channel, deliveries.state, func.count())
            .group_by(deliveries.channel, deliveries.state))
        messages = {(channel, state): count for channel, state, count in by_state}
        oldest_due = await connection.scalar(
            select(func.min(deliveries.next_attempt_at))
            .where(deliveries.state == "queued", deliveries.next_attempt_at <= now))
        blob_bytes, blob_count = (await connection.execute(
            select(func.coalesce(func.sum(blobs.c.size), 0), func.count())
            .select_from(blobs))).one()
    return OperationsSnapshot(messages, oldest_due, int(blob_bytes), int(blob_count))
