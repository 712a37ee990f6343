"""The dispatcher: fans out the requests whose time has come, sends what the outbox holds and
completes the requests whose messages are all done. ``run_once`` drains what is due now
(``fhir-server worker --once``, tests with a controlled clock); ``run_forever`` is the loop
inside ``fhir-server serve`` and ``fhir-server worker``, woken early when a request is
written."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.messaging.delivery import Deliverer
from fhir_server.messaging.fan_out import FanOut
from fhir_server.messaging.message_records import REQUESTS
from fhir_server.messaging.records import completed_request
from storage.outbox import finished_requests

logger = logging.getLogger("fhir_server.messaging")

Clock = Callable[[], datetime]


@dataclass
class PassReport:
    """What one ``run_once`` did."""

    requests: int = 0
    queued: int = 0
    not_sendable: int = 0
    states: dict[str, int] = field(default_factory=dict)

    def count(self, state: str) -> None:
        self.states[state] = self.states.get(state, 0) + 1


class Dispatcher:
    def __init__(self, engine: AsyncEngine, *, fan_out: FanOut, deliverer: Deliverer,
                 clock: Clock, poll_seconds: float) -> None:
        self._engine = engine
        self._fan_out = fan_out
        self._deliverer = deliverer
        self.clock = clock
        self._poll_seconds = poll_seconds
        self.wake = asyncio.Event()

    async def run_once(self) -> PassReport:
        """Everything due at the clock's time: fan-outs first, then batches until the outbox
        has nothing due (messages put back for a retry later are left for later)."""
        report = PassReport()
        await self.fan_out_due(report)
        await self.deliver_due(report)
        return report

    async def fan_out_due(self, report: PassReport) -> None:
        """Queue the messages of every request whose time has come."""
        for request_id in await self._fan_out.due(self.clock()):
            result = await self._fan_out.fan_out(request_id, self.clock())
            if result is not None:
                report.requests += 1
                report.queued += result.queued
                report.not_sendable += result.not_sent

    async def deliver_due(self, report: PassReport) -> None:
        """Send batch after batch until nothing in the outbox is due."""
        while True:
            outcomes = await self._deliverer.deliver_batch(self.clock())
            if not outcomes:
                return
            for outcome in outcomes:
                report.count(outcome.state)
            await self._complete_requests({outcome.row["request_id"] for outcome in outcomes})
            if all(outcome.state == "queued" for outcome in outcomes):
                return  # only retries left, none due yet

    async def _complete_requests(self, request_ids: set[str]) -> None:
        now = self.clock()
        async with self._engine.begin() as connection:
            done = await finished_requests(connection, sorted(request_ids), now=now)
            await REQUESTS.change(connection, done, completed_request, now=now)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Pass after pass until ``stop`` is set; a failed pass is logged and retried."""
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                logger.exception("message dispatch pass failed; retrying")
            self.wake.clear()
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            await asyncio.wait(waiters, timeout=self._poll_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

