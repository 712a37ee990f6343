"""The durable outbox in SQL: which requests are due, claiming messages to send (PostgreSQL
``FOR UPDATE SKIP LOCKED``, so workers on several machines never take the same row; SQLite
has one writer at a time), and recording what happened, only while the claim is still ours."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.messaging_tables import (
    message_deliveries,
    notification_requests,
    request_dispatches,
)
from storage.resource_rows import insert_rows

PENDING = ("queued", "sending")
"""Delivery states that still need a worker."""


def _skip_locked(statement: Any, connection: AsyncConnection, *tables: Any) -> Any:
    if connection.dialect.name == "postgresql":
        return statement.with_for_update(skip_locked=True, of=list(tables) or None)
    return statement


async def due_requests(connection: AsyncConnection, *, now: datetime, limit: int) -> list[str]:
    """Active requests whose time has come and that were not fanned out yet (locked for this
    transaction on PostgreSQL; others skip them)."""
    requests = notification_requests
    statement = (
        select(requests.c.id)
        .where(requests.c.status == "active", requests.c.deleted_at.is_(None),
               or_(requests.c.occurrence_low.is_(None), requests.c.occurrence_low <= now),
               ~exists().where(request_dispatches.c.request_id == requests.c.id))
        .order_by(requests.c.occurrence_low, requests.c.id)
        .limit(limit))
    result = await connection.execute(_skip_locked(statement, connection, requests))
    return [row[0] for row in result]


async def record_dispatch(connection: AsyncConnection, *, request_id: str, version_id: int,
                          now: datetime, count: int, finished: bool) -> None:
    """The request's fan-out (its primary key refuses a second one)."""
    await connection.execute(insert(request_dispatches), {
        "request_id": request_id, "request_version": version_id, "dispatched_at": now,
        "message_count": count, "finished_at": now if finished else None})


async def queue_messages(connection: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await insert_rows(connection, message_deliveries, list(rows))


async def claim(connection: AsyncConnection, *, worker: str, now: datetime,
                lease_until: datetime, limit: int, stale: bool) -> list[dict[str, Any]]:
    """Take up to ``limit`` messages for this worker: queued ones whose attempt is due, or
    (``stale``) ones another worker was sending when its lease ran out. Each claimed row comes
    back with its state set to ``sending`` and ``attempts`` counted. Two statements: on
    PostgreSQL an ``UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`` may
    run its subquery more than once and take more than ``n`` rows; SQLite transactions begin
    IMMEDIATE here, so the select already holds the write lock."""
    deliveries = message_deliveries
    if stale:
        wanted = and_(deliveries.c.state == "sending", deliveries.c.lease_until < now)
    else:
        wanted = and_(deliveries.c.state == "queued", deliveries.c.next_attempt_at <= now)
    chosen = _skip_locked(
        select(deliveries.c.communication_id).where(wanted)
        .order_by(deliveries.c.next_attempt_at).limit(limit), connection)
    ids = [row[0] for row in await connection.execute(chosen)]
    if not ids:
        return []
    result = await connection.execute(
        update(deliveries)
        .where(deliveries.c.communication_id.in_(ids), wanted)
        .values(state="sending", worker=worker, lease_until=lease_until,
                attempts=deliveries.c.attempts + (0 if stale else 1))
        .returning(*deliveries.c))
    return [dict(row) for row in result.mappings()]


async def record(connection: AsyncConnection, communication_id: str, *, worker: str,
                 **changes: Any) -> bool:
    """Apply ``changes`` to a message this worker holds; False when its claim was lost."""
    deliveries = message_deliveries
    result = await connection.execute(
        update(deliveries)
        .where(deliveries.c.communication_id == communication_id,
               deliveries.c.worker == worker, deliveries.c.state == "sending")
        .values(**changes))
    return bool(result.rowcount == 1)


RECORDED = ("state", "last_error", "lease_until", "next_attempt_at", "provider_message_id",
            "sent_at", "finished_at")
"""The columns a worker sets when it records what became of a message."""


async def record_many(connection: AsyncConnection, outcomes: Sequence[dict[str, Any]], *,
                      worker: str) -> set[str]:
    """Apply each outcome (``communication_id`` and every ``RECORDED`` column) to the messages
    this worker still holds, in two statements; the ids recorded."""
    if not outcomes:
        return set()
    deliveries = message_deliveries
    held_query = _locked(
        select(deliveries.c.communication_id)
        .where(deliveries.c.communication_id.in_([item["communication_id"]
                                                  for item in outcomes]),
               deliveries.c.worker == worker, deliveries.c.state == "sending"), connection)
    held = {row[0] for row in await connection.execute(held_query)}
    rows = [{"match_id": item["communication_id"], **{name: item[name] for name in RECORDED}}
            for item in outcomes if item["communication_id"] in held]
    if rows:
        await connection.execute(
            update(deliveries).where(deliveries.c.communication_id == bindparam("match_id"))
            .values({name: bindparam(name) for name in RECORDED}), rows)
    return held


def _locked(statement: Any, connection: AsyncConnection) -> Any:
    if connection.dialect.name == "postgresql":
        return statement.with_for_update()
    return statement


async def by_provider_id(connection: AsyncConnection,
                         provider_message_id: str) -> dict[str, Any] | None:
    result = await connection.execute(
        select(message_deliveries)
        .where(message_deliveries.c.provider_message_id == provider_message_id))
    row = result.mappings().first()
    return dict(row) if row else None


async def set_state(connection: AsyncConnection, communication_id: str, *, expected: str,
                    **changes: Any) -> bool:
    """Move a message on from state ``expected`` (a provider's status callback)."""
    result = await connection.execute(
        update(message_deliveries)
        .where(message_deliveries.c.communication_id == communication_id,
               message_deliveries.c.state == expected)
        .values(**changes))
    return bool(result.rowcount == 1)


async def finished_requests(connection: AsyncConnection, request_ids: Sequence[str], *,
                            now: datetime) -> list[str]:
    """Of these fanned-out requests, the ones with no message left to send; their dispatch
    is marked finished (once: a request is returned by one caller only)."""
    if not request_ids:
        return []
    pending = (select(message_deliveries.c.request_id)
               .where(message_deliveries.c.request_id.in_(list(request_ids)),
                      message_deliveries.c.state.in_(PENDING)).distinct())
    busy = {row[0] for row in await connection.execute(pending)}
    done = [request_id for request_id in request_ids if request_id not in busy]
    finished: list[str] = []
    for request_id in done:
        result = await connection.execute(
            update(request_dispatches)
            .where(request_dispatches.c.request_id == request_id,
                   request_dispatches.c.finished_at.is_(None))
            .values(finished_at=now))
        if result.rowcount == 1:
            finished.append(request_id)
    return finished


async def cancel_queued(connection: AsyncConnection, request_id: str, *,
                        now: datetime) -> list[str]:
    """Cancel the queued messages of a revoked request; their Communication ids."""
    deliveries = message_deliveries
    result = await connection.execute(
        update(deliveries)
        .where(deliveries.c.request_id == request_id, deliveries.c.state == "queued")
        .values(state="cancelled", finished_at=now)
        .returning(deliveries.c.communication_id))
    return [row[0] for row in result]


async def counts_by_state(connection: AsyncConnection) -> dict[str, int]:
    result = await connection.execute(
        select(message_deliveries.c.state, func.count()).group_by(message_deliveries.c.state))
    return {state: count for state, count in result.tuples()}
