"""Opt-outs by channel: who asked not to be messaged on a channel, and the patients a phone
number belongs to (an inbound STOP names a number, not a patient)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.messaging_tables import messaging_opt_outs
from storage.tables import patient_telecoms, patients


async def opted_out(connection: AsyncConnection, patient_ids: Sequence[str],
                    channel: str) -> set[tuple[str, str]]:
    """(patient id, channel) for those of ``patient_ids`` who opted out of ``channel``."""
    if not patient_ids:
        return set()
    result = await connection.execute(
        select(messaging_opt_outs.c.patient_id)
        .where(messaging_opt_outs.c.patient_id.in_(list(patient_ids)),
               messaging_opt_outs.c.channel == channel))
    return {(row[0], channel) for row in result}


async def patients_with_phone(connection: AsyncConnection, e164: str) -> list[str]:
    """Live patients having this E.164 number among their telecoms."""
    result = await connection.execute(
        select(patient_telecoms.c.patient_id).distinct()
        .join(patients, patients.c.id == patient_telecoms.c.patient_id)
        .where(patient_telecoms.c.value_e164 == e164, patients.c.deleted_at.is_(None)))
    return sorted(row[0] for row in result)


async def record_opt_out(connection: AsyncConnection, patient_ids: Sequence[str], *,
                         channel: str, address: str | None, source: str,
                         now: datetime) -> None:
    for patient_id in patient_ids:
        try:
            async with connection.begin_nested():
                await connection.execute(insert(messaging_opt_outs), {
                    "patient_id": patient_id, "channel": channel, "address": address,
                    "source": source, "recorded_at": now})
        except IntegrityError:
            continue  # opted out already


async def remove_opt_out(connection: AsyncConnection, patient_ids: Sequence[str], *,
                         channel: str) -> None:
    if patient_ids:
        await connection.execute(
            delete(messaging_opt_outs)
            .where(messaging_opt_outs.c.patient_id.in_(list(patient_ids)),
                   messaging_opt_outs.c.channel == channel))
