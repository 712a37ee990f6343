"""``fhir-server worker``: the dispatcher without the HTTP API, for scale (run several, on
several machines, against one PostgreSQL) or for cron-style runs (``--once`` drains what is
due and exits)."""

from __future__ import annotations

import asyncio
import logging
import signal

from fhir_server.messaging.channels.registry import channels_from_settings
from fhir_server.messaging.dispatcher import PassReport
from fhir_server.messaging.setup import build_dispatcher
from fhir_server.settings import Settings
from fhir_server.standalone import open_patient_store
from storage.stored import now
from storage.template_store import TemplateStore

logger = logging.getLogger("fhir_server.messaging")


async def run_worker(settings: Settings, *, once: bool) -> PassReport | None:
    """One drain (``once``), or passes until SIGINT/SIGTERM."""
    channels = channels_from_settings(settings)
    async with open_patient_store(settings) as store:
        dispatcher = build_dispatcher(settings, store.engine,
                                      templates=TemplateStore(store.engine),
                                      patients=store.patients.resources, channels=channels,
                                      clock=now)
        if once:
            return await dispatcher.run_once()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signal_number, stop.set)
        logger.info("message worker started")
        await dispatcher.run_forever(stop)
        return None
