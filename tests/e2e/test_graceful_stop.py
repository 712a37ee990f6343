"""SIGTERM on a served process: unready at once, still serving during FHIR_DRAIN_SECONDS, a
slow request in flight finishes, then the process stops."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.e2e.server_process import running_server

PDF_HEAD = b"%PDF-1.7\n"


def _slow_pdf(chunks: int, pause: float) -> Iterator[bytes]:
    yield PDF_HEAD
    for _ in range(chunks):
        time.sleep(pause)
        yield b"x" * 10_000


def test_sigterm_drains_then_stops(backend: str, tmp_path: Path,
                                   database_urls: dict[str, str]) -> None:
    with running_server(backend, tmp_path / "var", database_urls,
                        {"FHIR_DRAIN_SECONDS": "2", "FHIR_MESSAGING_WORKER": "false"}) as server:
        outcome: dict[str, int] = {}

        def upload() -> None:
            response = httpx.post(f"{server.base}/fhir/Binary", timeout=30,
                                  content=_slow_pdf(8, 0.5),
                                  headers={"Content-Type": "application/pdf"})
            outcome["status"] = response.status_code

        uploading = threading.Thread(target=upload)
        uploading.start()
        time.sleep(0.5)
        os.kill(server.pid, signal.SIGTERM)
        time.sleep(0.2)
        ready = httpx.get(f"{server.base}/health/ready", timeout=5)
        assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
        assert httpx.get(f"{server.base}/fhir/metadata", timeout=5).status_code == 200
        uploading.join(timeout=30)
        assert outcome == {"status": 201}  # sent over ~4 s, past the 2 s drain
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{server.base}/health", timeout=1)
            except httpx.ConnectError:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the server still answers 15 s after SIGTERM")
