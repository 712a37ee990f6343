"""End to end: files through the real server process over real HTTP. A 50 MB upload streams
to storage: the server's resident memory grows by far less than the file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server_process import running_server

pytestmark = pytest.mark.e2e

MB = 1024 * 1024
FIFTY_MB = 50 * MB


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def _pdf_chunks(total: int, chunk: int = MB) -> Iterator[bytes]:
    yield b"%PDF-1.7\n"
    sent = 9
    block = os.urandom(chunk)
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        sent += len(piece)
        yield piece


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_fifty_megabyte_upload_keeps_memory_flat_and_reads_back(
        tmp_path: Path, database_urls: dict[str, str]) -> None:
    with running_server("sqlite", tmp_path / "var", database_urls,
                        {"FHIR_MAX_UPLOAD_BYTES": str(64 * MB)}) as server, \
            httpx.Client(base_url=server.base, timeout=120) as http:
        assert http.post("/fhir/Binary", content=b"%PDF-1.7\nwarm-up",
                         headers={"Content-Type": "application/pdf"}).status_code == 201
        before = _status_kib(server.pid, "VmRSS")
        Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # reset the peak (VmHWM)
        response = http.post("/fhir/Binary", content=_pdf_chunks(FIFTY_MB),
                             headers={"Content-Type": "application/pdf"})
        assert response.status_code == 201, response.text
        growth_mb = (_status_kib(server.pid, "VmHWM") - before) / 1024
        print(f"peak RSS growth during a 50 MB upload: {growth_mb:.1f} MB")
        assert growth_mb < 20, f"peak RSS grew by {growth_mb:.1f} MB during a 50 MB upload"
        with http.stream("GET", f"/fhir/Binary/{response.json()['id']}") as download:
            assert download.status_code == 200
            received = sum(len(chunk) for chunk in download.iter_bytes())
        assert received == FIFTY_MB


def test_over_the_limit_is_refused_while_streaming(
        tmp_path: Path, database_urls: dict[str, str]) -> None:
    with running_server("sqlite", tmp_path / "var", database_urls,
                        {"FHIR_MAX_UPLOAD_BYTES": str(MB)}) as server, \
            httpx.Client(base_url=server.base, timeout=60) as http:
        response = http.post("/fhir/Binary", content=_pdf_chunks(3 * MB),
                             headers={"Content-Type": "application/pdf"})
        assert response.status_code == 413
        assert response.json()["resourceType"] == "OperationOutcome"
        staging = tmp_path / "var" / "blobs" / ".staging"
        assert not staging.exists() or not list(staging.iterdir())
