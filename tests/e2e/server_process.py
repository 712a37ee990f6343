"""Start the real ``fhir-server`` process for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_ENCRYPTION_KEYS, TEST_HASH_KEY


@dataclass(frozen=True)
class RunningServer:
    base: str
    pid: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _command() -> list[str]:
    script = shutil.which("fhir-server", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "fhir_server.cli"]


@contextmanager
def running_server(backend: str, data_dir: Path, database_urls: dict[str, str],
                   extra_environment: dict[str, str] | None = None) -> Iterator[RunningServer]:
    """A served process on the backend (one worker) until the block ends."""
    if backend not in database_urls:
        pytest.skip("PostgreSQL tests need FHIR_TEST_POSTGRES_URL")
    environment = os.environ | {
        "FHIR_DATA_DIR": str(data_dir),
        "FHIR_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEYS,
        "FHIR_HASH_KEY": TEST_HASH_KEY,
        "FHIR_LOG_LEVEL": "warning",
    } | (extra_environment or {})
    if backend == "postgresql":
        environment["FHIR_DATABASE_URL"] = database_urls["postgresql"]
        subprocess.run([*_command(), "migrate"], env=environment, check=True,
                       capture_output=True, timeout=120)
    else:
        environment.pop("FHIR_DATABASE_URL", None)
    port = free_port()
    process = subprocess.Popen(
        [*_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"fhir-server exited with {process.returncode}:\n{output}")
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("fhir-server did not become ready within 60 s")
            time.sleep(0.2)
        yield RunningServer(base, process.pid)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
