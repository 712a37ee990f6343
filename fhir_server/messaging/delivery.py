"""Sending what the outbox holds: claim a batch (the Communications go in-progress), send each
message on its channel in worker threads, record every outcome and the Communications' new
versions in one transaction.

A message found ``sending`` with its lease run out was claimed by a worker that died; the
channel is asked whether it went out (the provider's records), so a crash between sending and
recording never sends twice. Transient provider errors are retried with exponential backoff up
to the configured number of attempts; permanent ones fail the message at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from fhir_server.messaging.channels.base import (
    CannotReconcile,
    Channel,
    OutgoingMessage,
    PermanentSendError,
    SendReceipt,
    TransientSendError,
)
from fhir_server.messaging.message_records import COMMUNICATIONS
from fhir_server.messaging.records import with_reason, with_state
from storage.messaging_tables import notification_requests
from storage.outbox import cancel_queued, claim, record, record_many

logger = logging.getLogger("fhir_server.messaging")

STOPPED_REQUEST = frozenset({"revoked", "entered-in-error", "completed"})


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed message."""

    row: dict[str, Any]
    state: str
    receipt: SendReceipt | None = None
    error: str | None = None
    retry_at: datetime | None = None


@dataclass(frozen=True)
class DeliveryPolicy:
    lease: timedelta
    max_attempts: int
    retry_base: timedelta
    concurrency: int
    batch: int = 100


class Deliverer:
    def __init__(self, engine: AsyncEngine, *, channels: Mapping[str, Channel],
                 policy: DeliveryPolicy, worker: str,
                 status_callback: Callable[[str, str], str | None]) -> None:
        self._engine = engine
        self._channels = channels
        self._policy = policy
        self._worker = worker
        self._status_callback = status_callback
        self._slots = asyncio.Semaphore(policy.concurrency)

    async def deliver_batch(self, now: datetime) -> list[Outcome]:
        """Claim, send and record up to one batch; [] when nothing is due."""
        claimed = await self._claim(now)
        if not claimed:
            return []
        outcomes = list(await asyncio.gather(*(self._send(row, now) for row in claimed)))
        await self._record(outcomes, now)
        return outcomes

    async def _claim(self, now: datetime) -> list[dict[str, Any]]:
        lease_until = now + self._policy.lease
        async with self._engine.begin() as connection:
            rows = await claim(connection, worker=self._worker, now=now, lease_until=lease_until,
                               limit=self._policy.batch, stale=True)
            for row in rows:
                row["stale"] = True
            rows += await claim(connection, worker=self._worker, now=now,
                                lease_until=lease_until, limit=self._policy.batch, stale=False)
            if not rows:
                return []
            rows = await self._hold_stopped_requests(connection, rows, now)
            fresh = [row["communication_id"] for row in rows if not row.get("stale")]
            await COMMUNICATIONS.change(connection, fresh, _in_progress, now=now)
        return rows

    async def _hold_stopped_requests(self, connection: AsyncConnection,
                                     rows: list[dict[str, Any]],
                                     now: datetime) -> list[dict[str, Any]]:
        """Messages of revoked requests are cancelled, of requests on hold put back."""
        request_ids = sorted({row["request_id"] for row in rows})
        result = await connection.execute(
            select(notification_requests.c.id, notification_requests.c.status,
                   notification_requests.c.deleted_at)
            .where(notification_requests.c.id.in_(request_ids)))
        status = {row.id: ("revoked" if row.deleted_at is not None else row.status)
                  for row in result}
        kept: list[dict[str, Any]] = []
        for row in rows:
            request_status = status.get(row["request_id"], "revoked")
            if request_status in STOPPED_REQUEST and not row.get("stale"):
                await record(connection, row["communication_id"], worker=self._worker,
                             state="queued")
                cancelled = await cancel_queued(connection, row["request_id"], now=now)
                await COMMUNICATIONS.change(
                    connection, cancelled,
                    lambda resource: with_state(resource, "cancelled",
                                                detail="the request was revoked"), now=now)
            elif request_status == "on-hold" and not row.get("stale"):
                await record(connection, row["communication_id"], worker=self._worker,
                             state="queued", attempts=row["attempts"] - 1,
                             next_attempt_at=now + self._policy.retry_base)
            else:
                kept.append(row)
        return kept

    async def _send(self, row: dict[str, Any], now: datetime) -> Outcome:
        channel = self._channels[row["channel"]]
        message = OutgoingMessage(
            channel=row["channel"], address=row["address"], body=row["body"],
            subject=row["subject"], idempotency_key=row["idempotency_key"],
            status_callback=self._status_callback(row["channel"], row["idempotency_key"]))
        async with self._slots:
            if row.get("stale"):
                try:
                    found = await asyncio.to_thread(channel.find_sent, message,
                                                    row["created_at"])
                except CannotReconcile as exc:
                    return Outcome(row, "failed", error=f"unknown-outcome: {exc}")
                except Exception as exc:  # the provider cannot be asked now: ask again later
                    logger.warning("reconciling message %s failed", row["communication_id"],
                                   exc_info=True)
                    return self._retry(row, now, f"reconciling: {exc}")
                if found is not None:
                    return Outcome(row, found.state, receipt=found)
            try:
                receipt = await asyncio.to_thread(channel.send, message)
            except PermanentSendError as exc:
                return Outcome(row, "failed", error=str(exc))
            except TransientSendError as exc:
                return self._retry(row, now, str(exc))
            except Exception as exc:  # an unexpected failure: counted like a transient one
                logger.exception("sending message %s failed", row["communication_id"])
                return self._retry(row, now, f"{type(exc).__name__}: {exc}")
        return Outcome(row, receipt.state, receipt=receipt)

    def _retry(self, row: dict[str, Any], now: datetime, error: str) -> Outcome:
        attempts = max(1, int(row["attempts"]))
        if attempts >= self._policy.max_attempts:
            return Outcome(row, "failed", error=f"gave up after {attempts} attempts: {error}")
        delay = self._policy.retry_base * (2 ** (attempts - 1))
        return Outcome(row, "queued", error=error, retry_at=now + delay)

    async def _record(self, outcomes: list[Outcome], now: datetime) -> None:
        rows = [_recorded(outcome, now) for outcome in outcomes]
        async with self._engine.begin() as connection:
            held = await record_many(connection, rows, worker=self._worker)
            changes = {outcome.row["communication_id"]: _moved(outcome, now)
                       for outcome in outcomes
                       if outcome.row["communication_id"] in held and outcome.state != "queued"}
            await COMMUNICATIONS.change(connection, list(changes), _by_id(changes), now=now)


def _recorded(outcome: Outcome, now: datetime) -> dict[str, Any]:
    """The outbox columns that record ``outcome`` (a message a status callback or another
    worker moved on meanwhile is not ours any more and is left alone)."""
    row = outcome.row
    provider_id = outcome.receipt.provider_message_id if outcome.receipt else None
    return {
        "communication_id": row["communication_id"], "state": outcome.state,
        "last_error": outcome.error, "lease_until": None,
        "next_attempt_at": outcome.retry_at or row["next_attempt_at"],
        "provider_message_id": provider_id or row["provider_message_id"],
        "sent_at": now if outcome.state in ("sent", "delivered") else row["sent_at"],
        "finished_at": now if outcome.state not in ("queued", "sent") else None,
    }


def _in_progress(resource: dict[str, Any]) -> dict[str, Any] | None:
    return with_state(resource, "sending") if resource.get("status") == "preparation" else None


def _moved(outcome: Outcome, now: datetime) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    def change(resource: dict[str, Any]) -> dict[str, Any]:
        provider_id = outcome.receipt.provider_message_id if outcome.receipt else None
        changed = with_state(resource, outcome.state, at=now, provider_id=provider_id,
                             detail=outcome.error)
        if outcome.error and outcome.error.startswith("unknown-outcome"):
            changed = with_reason(changed, "unknown-outcome", outcome.error)
        return changed
    return change


def _by_id(changes: Mapping[str, Callable[[dict[str, Any]], dict[str, Any] | None]]
           ) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    def change(resource: dict[str, Any]) -> dict[str, Any] | None:
        return changes[resource["id"]](resource)
    return change
