"""Graceful stop: on SIGTERM the process turns unready at once (``/health/ready`` answers 503)
while it keeps serving for ``FHIR_DRAIN_SECONDS``, so a load balancer stops sending it new
requests; then uvicorn's own shutdown runs (no new connections, in-flight requests finish,
then the lifespan stops the message dispatcher after the message it is sending). A second
SIGTERM skips the wait."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any


class Draining:
    def __init__(self, delay_seconds: float) -> None:
        self.delay_seconds = delay_seconds
        self.active = False

    def install(self) -> Callable[[], None]:
        """Put this handler in front of the server's SIGTERM handler; returns the undo. Only
        in the main thread (the served process), never under a test client's thread."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        previous: Any = signal.getsignal(signal.SIGTERM)

        def pass_on(signum: int, frame: FrameType | None) -> None:
            if callable(previous):
                previous(signum, frame)
            else:  # no server handler: the default action, as if we were not here
                signal.signal(signal.SIGTERM, previous)
                os.kill(os.getpid(), signum)

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self.active:
                pass_on(signum, frame)
                return
            self.active = True
            loop.call_soon_threadsafe(loop.call_later, self.delay_seconds, pass_on, signum,
                                      frame)

        signal.signal(signal.SIGTERM, on_sigterm)

        def undo() -> None:
            if signal.getsignal(signal.SIGTERM) is on_sigterm:
                signal.signal(signal.SIGTERM, previous)

        return undo
