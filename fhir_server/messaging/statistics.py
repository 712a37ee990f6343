"""``Communication/$stats``: the PRM's messaging statistics over the messages the server
queued in a time window (by when they were queued): how many were sent, delivered and failed,
the delivery rate (delivered / sent, where sent counts every message the provider accepted),
counts by channel and by state, and the most used templates. Answered as a FHIR Parameters
resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.messaging_tables import message_deliveries
from storage.unit_of_work import reading

SENT_STATES = ("sent", "delivered", "undelivered")
"""States of messages the provider accepted (undelivered ones were sent, then lost)."""
FAILED_STATES = ("failed", "undelivered")
TOP_TEMPLATES = 10


async def message_statistics(engine: AsyncEngine, *, start: datetime | None,
                             end: datetime | None) -> dict[str, Any]:
    deliveries = message_deliveries
    window = [condition for condition in (
        deliveries.c.created_at >= start if start is not None else None,
        deliveries.c.created_at < end if end is not None else None) if condition is not None]
    async with reading(engine) as connection:
        by_channel_state = (await connection.execute(
            select(deliveries.c.channel, deliveries.c.state, func.count()).where(*window)
            .group_by(deliveries.c.channel, deliveries.c.state)
            .order_by(deliveries.c.channel, deliveries.c.state))).tuples().all()
        templates = (await connection.execute(
            select(deliveries.c.template_name, func.count().label("uses"))
            .where(*window, deliveries.c.template_name.is_not(None))
            .group_by(deliveries.c.template_name)
            .order_by(func.count().desc(), deliveries.c.template_name)
            .limit(TOP_TEMPLATES))).tuples().all()
    by_state: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    for channel, state, count in by_channel_state:
        by_state[state] = by_state.get(state, 0) + count
        by_channel[channel] = by_channel.get(channel, 0) + count
    sent = sum(by_state.get(state, 0) for state in SENT_STATES)
    delivered = by_state.get("delivered", 0)
    failed = sum(by_state.get(state, 0) for state in FAILED_STATES)
    parameters: list[dict[str, Any]] = [
        {"name": "total", "valueInteger": sum(by_state.values())},
        {"name": "sent", "valueInteger": sent},
        {"name": "delivered", "valueInteger": delivered},
        {"name": "failed", "valueInteger": failed},
        {"name": "deliveryRate", "valueDecimal": round(delivered / sent, 4) if sent else 0},
    ]
    parameters += [_group("byChannel", value, count) for value, count in sorted(by_channel.items())]
    parameters += [_group("byStatus", value, count) for value, count in sorted(by_state.items())]
    parameters += [_group("byChannelAndStatus", f"{channel}|{state}", count)
                   for channel, state, count in by_channel_state]
    parameters += [_group("topTemplates", name, count) for name, count in templates]
    return {"resourceType": "Parameters", "parameter": parameters}


def _group(name: str, value: str, count: int) -> dict[str, Any]:
    return {"name": name, "part": [{"name": "value", "valueString": value},
                                   {"name": "count", "valueInteger": count}]}
