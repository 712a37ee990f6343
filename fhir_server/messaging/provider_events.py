"""What providers tell us after sending: a delivery status moves the message (and its
Communication) on; an inbound STOP records the sender's opt-out of that channel, START takes
it back (Twilio's standard opt-out keywords).

Status callbacks can arrive out of order and even before the worker has recorded the send
(the callback URL carries the message's key): a state only moves forward
(sending -> sent -> delivered | failed | undelivered)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.messaging.message_records import COMMUNICATIONS, REQUESTS
from fhir_server.messaging.records import completed_request, with_state
from storage.messaging_tables import message_deliveries
from storage.opt_outs import patients_with_phone, record_opt_out, remove_opt_out
from storage.outbox import finished_requests, set_state

TWILIO_STATES = {"sent": "sent", "delivered": "delivered", "read": "delivered",
                 "failed": "failed", "undelivered": "undelivered", "canceled": "failed"}
"""Twilio MessageStatus -> delivery state (queued, accepted, sending, ... change nothing)."""

RANK = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "failed": 3, "undelivered": 3}
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES", "OPTIN"})


async def apply_status(engine: AsyncEngine, *, key: str | None, provider_id: str | None,
                       status: str, error_code: str | None, now: datetime) -> bool:
    """Move the message on; False when the status is unknown, not newer, or the message is."""
    state = TWILIO_STATES.get(status.lower())
    if state is None:
        return False
    column = (message_deliveries.c.idempotency_key if key
              else message_deliveries.c.provider_message_id)
    async with engine.begin() as connection:
        found = (await connection.execute(
            select(message_deliveries).where(column == (key or provider_id)))).mappings().first()
        if found is None or RANK.get(found["state"], 3) >= RANK[state]:
            return False
        if provider_id and found["provider_message_id"] not in (None, provider_id):
            return False
        final = state in ("delivered", "failed", "undelivered")
        error = f"provider error {error_code}" if error_code else None
        if not await set_state(connection, found["communication_id"], expected=found["state"],
                               state=state, provider_message_id=provider_id
                               or found["provider_message_id"], lease_until=None,
                               sent_at=found["sent_at"] or now,
                               finished_at=now if final else None,
                               last_error=error or found["last_error"]):
            return False
        await COMMUNICATIONS.change(
            connection, [found["communication_id"]],
            lambda resource: with_state(resource, state, at=now, provider_id=provider_id,
                                        detail=error), now=now)
        if final:
            done = await finished_requests(connection, [found["request_id"]], now=now)
            await REQUESTS.change(connection, done, completed_request, now=now)
    return True


async def apply_inbound(engine: AsyncEngine, *, sender: str, body: str,
                        now: datetime) -> tuple[str, list[str]]:
    """(what was done: opt-out | opt-in | nothing, the patients it concerns)."""
    channel, number = (("whatsapp", sender[len("whatsapp:"):]) if sender.startswith("whatsapp:")
                       else ("sms", sender))
    keyword = body.strip().upper()
    if keyword not in STOP_WORDS and keyword not in START_WORDS:
        return "nothing", []
    async with engine.begin() as connection:
        patient_ids = await patients_with_phone(connection, number)
        if keyword in STOP_WORDS:
            await record_opt_out(connection, patient_ids, channel=channel, address=number,
                                 source="inbound-stop", now=now)
            return "opt-out", patient_ids
        await remove_opt_out(connection, patient_ids, channel=channel)
        return "opt-in", patient_ids
