"""Benchmark the Bulk Data export: time and server memory while ``GET /fhir/$export`` writes
every patient of a large population, and while its NDJSON files are downloaded.

    .venv/bin/python -m benchmarks.export \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB --sizes 100000,1000000

For each size (ascending) the database is filled up to that many patients with
``benchmarks.load_patients`` (only the missing ones are loaded, so a database loaded before is
reused), then a ``fhir-server serve`` process (one worker, on the same data folder so it reads
the loader's SSN keys) runs ``$export?_type=Patient`` while this command polls the status URL
and samples the serving process's resident memory (VmRSS every 0.1 s, and VmHWM after resetting
it through ``clear_refs`` where the kernel allows). Then every file is downloaded (streamed,
lines counted) with the same sampling. Memory that stays flat shows as the same peak at every
size. The figures are printed as a table; nothing is written to the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from benchmarks.proc_memory import KIB_PER_MIB, reset_peak, serving_pid, status_kib
from benchmarks.processes import Server, free_port, run_checked, start
from benchmarks.report import format_table
from benchmarks.run import fhir_server_command
from storage.patient_rows_pg import conninfo

REPO = Path(__file__).resolve().parent.parent
OWN_SETTINGS = ("FHIR_DATABASE_URL", "FHIR_DATA_DIR", "FHIR_BLOB_URL", "FHIR_AUTH_JWKS",
                "FHIR_AUTH_ISSUER", "FHIR_AUTH_AUDIENCE", "FHIR_EXPORT_PAGE_SIZE",
                "FHIR_EXPORT_FILE_RESOURCES")


def log(message: str) -> None:
    print(f"[export] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Result:
    patients: int
    files: int
    mib: float
    export_seconds: float
    rss_before_mib: float
    export_peak_mib: float
    download_seconds: float
    download_peak_mib: float
    peak_source: str
    read_idle_ms: tuple[float, float]
    read_during_ms: tuple[float, float]

    def cells(self) -> list[str]:
        return [f"{self.patients:,}", str(self.files), f"{self.mib:,.0f}",
                f"{self.export_seconds:,.1f}", f"{self.patients / self.export_seconds:,.0f}",
                f"{self.rss_before_mib:,.0f}", f"{self.export_peak_mib:,.0f}",
                f"{self.export_peak_mib - self.rss_before_mib:+,.0f}",
                f"{self.download_seconds:,.1f}", f"{self.mib / self.download_seconds:,.0f}",
                f"{self.download_peak_mib:,.0f}",
                f"{self.read_idle_ms[0]:,.0f} / {self.read_idle_ms[1]:,.0f}",
                f"{self.read_during_ms[0]:,.0f} / {self.read_during_ms[1]:,.0f}",
                self.peak_source]


HEADER = ["patients", "files", "NDJSON MiB", "export s", "patients/s", "RSS before MiB",
          "peak during export MiB", "growth MiB", "download s", "download MiB/s",
          "peak during download MiB", "read p50 / p99 ms idle",
          "read p50 / p99 ms during export", "peak from"]


class LatencyProbe:
    """Reads of one patient every 50 ms in a thread while a block runs: what an export costs
    the requests served beside it."""

    def __init__(self, url: str, path: str) -> None:
        self.url = url
        self.path = path
        self.seconds: list[float] = []

    @contextmanager
    def probing(self) -> Iterator[None]:
        self.seconds = []
        done = threading.Event()

        def probe() -> None:
            with httpx.Client(base_url=self.url, timeout=60) as client:
                while not done.wait(0.05):
                    started = time.monotonic()
                    client.get(self.path).raise_for_status()
                    self.seconds.append(time.monotonic() - started)

        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def percentile(self, share: float) -> float:
        ordered = sorted(self.seconds) or [0.0]
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000


class RssSampler:
    """The highest VmRSS of a process, sampled in a thread while a block runs."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.highest = 0

    @contextmanager
    def sampling(self) -> Iterator[None]:
        self.highest = status_kib(self.pid, "VmRSS")
        done = threading.Event()

        def sample() -> None:
            while not done.wait(self.interval):
                self.highest = max(self.highest, status_kib(self.pid, "VmRSS"))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self.highest = max(self.highest, status_kib(self.pid, "VmRSS"))


def patients_held(database_url: str) -> int:
    with psycopg.connect(conninfo(database_url)) as connection:
        row = connection.execute(
            "SELECT count(*) FROM patients WHERE deleted_at IS NULL").fetchone()
        return int(row[0]) if row else 0


def forget_exports(database_url: str) -> None:
    """Drop the jobs of earlier runs (an interrupted one would be resumed first)."""
    with psycopg.connect(conninfo(database_url)) as connection:
        connection.execute("DELETE FROM bulk_export_files")
        connection.execute("DELETE FROM bulk_export_jobs")


def fill(database_url: str, size: int, env: dict[str, str]) -> None:
    """Load patients until the database holds ``size`` (never fewer than it has)."""
    held = patients_held(database_url)
    if held >= size:
        log(f"{held:,} patients held already")
        return
    log(f"loading {size - held:,} patients (from index {held:,})")
    run_checked([sys.executable, "-m", "benchmarks.load_patients", "--database-url",
                 database_url, "--count", str(size - held), "--start", str(held)],
                env, REPO, timeout=3600)


def start_server(env: dict[str, str], work: Path) -> Server:
    exe = fhir_server_command()
    port = free_port()
    server = start("FHIR server", [str(exe), "serve", "--host", "127.0.0.1", "--port",
                                   str(port), "--workers", "1"], env, REPO,
                   work / "server.log", port)
    server.wait_ready()
    return server


def peak_of(pid: int, sampler: RssSampler, action: Callable[[], None]) -> tuple[float, str]:
    """Run ``action``; the peak RSS during it in MiB (VmHWM when resettable, else sampled)."""
    note = reset_peak(pid)
    with sampler.sampling():
        action()
    if note is None:
        return status_kib(pid, "VmHWM") / KIB_PER_MIB, "VmHWM"
    return sampler.highest / KIB_PER_MIB, "VmRSS sampled every 0.1 s"


def run_export(server: Server, patients: int) -> Result:
    pid = serving_pid(server.process.pid)
    sampler = RssSampler(pid)
    client = httpx.Client(base_url=server.url, timeout=600)
    first = client.get("/fhir/Patient?_count=10")  # warm: imports, pools
    first.raise_for_status()
    probe = LatencyProbe(server.url, f"/fhir/Patient/{first.json()['entry'][0]['resource']['id']}")
    with probe.probing():
        time.sleep(3)
    idle = (probe.percentile(0.5), probe.percentile(0.99))
    before = status_kib(pid, "VmRSS") / KIB_PER_MIB
    manifest: dict[str, object] = {}
    timing: dict[str, float] = {}
    timing_urls: dict[str, str] = {}

    def export() -> None:
        started = time.monotonic()
        kicked = client.get("/fhir/$export?_type=Patient", headers={"Prefer": "respond-async"})
        if kicked.status_code != 202:
            raise RuntimeError(f"kick-off answered {kicked.status_code}: {kicked.text[:300]}")
        status_url = timing_urls["status"] = kicked.headers["Content-Location"]
        last = 0.0
        while True:
            polled = client.get(status_url)
            if polled.status_code == 200:
                manifest.update(polled.json())
                break
            if polled.status_code != 202:
                raise RuntimeError(f"status answered {polled.status_code}: {polled.text[:300]}")
            if time.monotonic() - last > 10:
                last = time.monotonic()
                log(f"  {polled.headers.get('X-Progress')}")
            time.sleep(0.5)
        timing["export"] = time.monotonic() - started

    with probe.probing():
        export_peak, source = peak_of(pid, sampler, export)
    during = (probe.percentile(0.5), probe.percentile(0.99))
    outputs = manifest["output"]
    assert isinstance(outputs, list)
    received = {"bytes": 0, "lines": 0}

    def download() -> None:
        started = time.monotonic()
        for output in outputs:
            with client.stream("GET", output["url"]) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes(1024 * 1024):
                    received["bytes"] += len(chunk)
                    received["lines"] += chunk.count(b"\n")
        timing["download"] = time.monotonic() - started

    download_peak, _ = peak_of(pid, sampler, download)
    exported = sum(int(output["count"]) for output in outputs)
    if exported != patients or received["lines"] != patients:
        raise RuntimeError(f"{patients:,} patients held, the manifest counts {exported:,}, "
                           f"the files hold {received['lines']:,} lines")
    client.delete(timing_urls["status"]).raise_for_status()  # the files go
    return Result(patients, len(outputs), received["bytes"] / (1024 * 1024), timing["export"],
                  before, export_peak, timing["download"], download_peak, source, idle, during)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.export",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", required=True,
                        help="postgresql+psycopg://user@host:port/db (created beforehand)")
    parser.add_argument("--sizes", default="100000",
                        help="comma-separated patient counts, exported in turn (ascending)")
    parser.add_argument("--page-size", type=int, default=None,
                        help="FHIR_EXPORT_PAGE_SIZE of the server (default: its own)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="FHIR_DATA_DIR shared by the loader and the server (its keys "
                             "encrypt the SSNs); default: a temporary folder")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(part) for part in args.sizes.split(",") if part.strip()})
    except ValueError:
        parser.error("--sizes takes comma-separated integers")
    if not args.sizes or args.sizes[0] < 1:
        parser.error("--sizes needs positive counts")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    data_dir = args.data_dir or work / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in OWN_SETTINGS}
    env |= {"FHIR_DATABASE_URL": args.database_url, "FHIR_DATA_DIR": str(data_dir.resolve()),
            "FHIR_MESSAGING_WORKER": "false", "FHIR_LOG_LEVEL": "warning"}
    if args.page_size:
        env["FHIR_EXPORT_PAGE_SIZE"] = str(args.page_size)
    results: list[Result] = []
    try:
        run_checked([str(fhir_server_command()), "migrate"], env, REPO)
        for size in args.sizes:
            fill(args.database_url, size, env)
            patients = patients_held(args.database_url)
            forget_exports(args.database_url)
            shutil.rmtree(data_dir / "blobs", ignore_errors=True)
            server = start_server(env, work)
            try:
                log(f"exporting {patients:,} patients")
                results.append(run_export(server, patients))
            finally:
                server.stop()
            shutil.rmtree(data_dir / "blobs", ignore_errors=True)
    except (RuntimeError, OSError, psycopg.Error, httpx.HTTPError,
            subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(data_dir / "blobs", ignore_errors=True)
        if args.data_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(format_table(HEADER, [result.cells() for result in results], left={len(HEADER) - 1}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
