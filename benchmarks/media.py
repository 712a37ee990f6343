"""Benchmark file upload and download through the FHIR server against plain transfers.

Run ``bash scripts/bench-media`` (or ``python -m benchmarks.media``) from the repository root.
For each blob store (files on disk; S3 on a moto server started here) a fresh server on a fresh
PostgreSQL database takes raw-byte ``POST /fhir/Binary`` uploads and serves them back with
``GET /fhir/Binary/{id}``; the same bytes are also moved without the server (plain file
write/read on the same filesystem, plain boto3 on the same S3 server), and the server's peak
resident memory growth during one 50 MiB upload is read from /proc.
Exit status: 0 when everything was measured (targets met or not), 1 when something broke.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from subprocess import SubprocessError
from types import FrameType
from typing import Any

import psycopg
import urllib3
from botocore.exceptions import BotoCoreError, ClientError

from benchmarks import databases, moto_s3
from benchmarks.media_report import Measurement, tables, write_results
from benchmarks.media_transfers import (
    CHUNK,
    MIB,
    Batch,
    FloorTarget,
    Payloads,
    PlainFileTarget,
    PlainS3Target,
    ServerTarget,
    Target,
    download_batch,
    upload_batch,
)
from benchmarks.proc_memory import PeakGrowth, peak_growth, serving_pid
from benchmarks.processes import Server, free_port, log_tail, run_checked, start
from benchmarks.run import fhir_server_command

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "media-latest.json"
SMALL, LARGE = 1 * MIB, 50 * MIB
MAX_UPLOAD_BYTES = 64 * MIB  # FHIR_MAX_UPLOAD_BYTES for the run: 50 MiB files fit
FLOOR_REQUESTS, FLOOR_BYTES = 20, 64  # tiny files: the per-file cost apart from the bytes
STORES = ("file", "s3")
BROKEN = (RuntimeError, OSError, ValueError, SubprocessError, psycopg.Error,
          urllib3.exceptions.HTTPError, BotoCoreError, ClientError)
# Settings the run depends on: never inherited from the caller's environment.
OWN_SETTINGS = ("FHIR_DATABASE_URL", "FHIR_DATA_DIR", "FHIR_BLOB_URL", "FHIR_MAX_UPLOAD_BYTES",
                "FHIR_ALLOWED_MEDIA_TYPES", "FHIR_BINARY_REDIRECT", "FHIR_BLOB_RETAIN_UNUSED")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bash scripts/bench-media", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--repeat", type=int, default=5,
                        help="batches per size and direction; the table shows the median")
    parser.add_argument("--small-count", type=int, default=50, help="1 MiB files per batch")
    parser.add_argument("--large-count", type=int, default=5, help="50 MiB files per batch")
    parser.add_argument("--stores", default=",".join(STORES),
                        help="comma-separated blob stores to measure: file, s3")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL URL used to create and drop the benchmark databases",
    )
    args = parser.parse_args(argv)
    if min(args.repeat, args.small_count, args.large_count) < 1:
        parser.error("--repeat, --small-count and --large-count must be >= 1")
    args.stores = [name.strip() for name in args.stores.split(",") if name.strip()]
    if not args.stores or set(args.stores) - set(STORES):
        parser.error(f"--stores takes a comma-separated subset of {', '.join(STORES)}")
    return args


@dataclass(frozen=True)
class StoreRun:
    """One blob store under test: the serving process, a client to it, the plain reference
    and, for the file store, the minimal HTTP file app (the floor)."""

    name: str
    pid: int
    client: ServerTarget
    plain: Target
    floor: FloorTarget | None = None

    def references(self) -> dict[str, Target]:
        return {"plain": self.plain} | ({"floor": self.floor} if self.floor else {})


@dataclass(frozen=True)
class StoreResults:
    """What one blob store gave: throughput rows, memory samples, the per-file fixed cost."""

    rows: list[Measurement]
    memory: list[PeakGrowth]
    floor: dict[str, float]


def start_server(*, store: str, args: argparse.Namespace, database: str, work: Path,
                 s3_env: dict[str, str]) -> Server:
    """Migrate the fresh database, then start ``fhir-server serve`` (one worker) on it."""
    exe = fhir_server_command()
    data_dir = work / "server-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if k not in OWN_SETTINGS and not k.startswith("AWS_")}
    env |= {
        "FHIR_DATABASE_URL": databases.database_url(args.postgres, database,
                                                    scheme="postgresql+psycopg"),
        "FHIR_DATA_DIR": str(data_dir),
        "FHIR_MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
        **s3_env,
    }
    run_checked([str(exe), "migrate"], env, REPO)
    port = free_port()
    argv = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    return start(f"FHIR server ({store} store)", argv, env, REPO, work / "server.log", port)


def start_floor(directory: Path, work: Path) -> Server:
    """``benchmarks/media_floor_app.py`` with the server's uvicorn settings (``fhir-server
    serve``: one worker, default loop and HTTP implementation, i.e. uvloop and httptools,
    no access log, proxy headers), writing into ``directory``."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "benchmarks.media_floor_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log",
            "--proxy-headers", "--log-level", "warning"]
    env = dict(os.environ) | {"MEDIA_FLOOR_DIR": str(directory)}
    return start("HTTP floor app", argv, env, REPO, work / "floor.log", port)


def measure_memory(run: StoreRun, payloads: Payloads) -> list[PeakGrowth]:
    """Peak RSS growth during one 50 MiB upload and its download, on a just-started server
    (after one small warm-up); the downloaded bytes are checked against the upload."""
    payload = payloads.make(LARGE)
    data = run.client.prepare(payload)
    ids: list[str] = []
    upload = peak_growth(run.pid, store=run.name, operation="upload",
                         action=lambda: ids.append(run.client.upload(data)))
    download = peak_growth(run.pid, store=run.name, operation="download",
                           action=lambda: _check_size(run.client.download(ids[0])))
    if run.client.read_all(ids[0]) != payload.to_bytes():
        raise RuntimeError(f"{run.name} store: the downloaded bytes differ from the upload")
    run.client.remove(ids[0])
    return [upload, download]


def _check_size(received: int) -> None:
    if received != LARGE:
        raise RuntimeError(f"download gave {received} bytes, not {LARGE}")


def measure_throughput(run: StoreRun, payloads: Payloads,
                       args: argparse.Namespace) -> list[Measurement]:
    """Per size, a warm-up round and ``--repeat`` rounds of: server uploads, then each
    reference's uploads, server downloads, then each reference's downloads (interleaved so
    drift hits all alike), then the files are removed (not timed)."""
    measurements: list[Measurement] = []
    targets: dict[str, Target] = {"server": run.client, **run.references()}
    for size, files in ((SMALL, args.small_count), (LARGE, args.large_count)):
        ups: dict[str, list[Batch]] = {name: [] for name in targets}
        downs: dict[str, list[Batch]] = {name: [] for name in targets}
        for round_number in range(args.repeat + 1):
            label = f"round {round_number}" if round_number else "warm-up round (not counted)"
            log(f"{run.name} store: {files} x {size // MIB} MiB, {label}")
            handles: dict[str, list[str]] = {}
            for name, target in targets.items():
                batch, handles[name] = upload_batch(target, payloads, size=size, files=files)
                if round_number:  # the warm-up round also touches fresh memory pages first
                    ups[name].append(batch)
            for name, target in targets.items():
                batch = download_batch(target, handles[name], size=size)
                if round_number:
                    downs[name].append(batch)
            for name, target in targets.items():
                for handle in handles[name]:
                    target.remove(handle)
        for direction, batches in (("upload", ups), ("download", downs)):
            measurements += [Measurement(run.name, size, direction, batches["server"],
                                         batches[name], reference=name)
                             for name in run.references()]
    return measurements


def warm_up(run: StoreRun, payloads: Payloads) -> None:
    """One small upload and download on every side: connections, thread pools, imports."""
    for target in (run.client, *run.references().values()):
        handle = target.upload(target.prepare(payloads.make(64 * 1024)))
        target.download(handle)
        target.remove(handle)


def request_floor(run: StoreRun, payloads: Payloads) -> dict[str, float]:
    """Median ms of a tiny (64-byte) upload and download through the server: the fixed cost
    of one file, whatever its size."""
    uploads: list[float] = []
    downloads: list[float] = []
    for _ in range(FLOOR_REQUESTS):
        payload = run.client.prepare(payloads.make(FLOOR_BYTES))
        started = time.perf_counter()
        handle = run.client.upload(payload)
        uploads.append(time.perf_counter() - started)
        started = time.perf_counter()
        run.client.download(handle)
        downloads.append(time.perf_counter() - started)
        run.client.remove(handle)
    return {"upload_ms": round(statistics.median(uploads) * 1000, 2),
            "download_ms": round(statistics.median(downloads) * 1000, 2)}


def benchmark_store(store: str, args: argparse.Namespace, payloads: Payloads, work: Path,
                    moto: Server | None) -> StoreResults:
    """Fresh database and server for ``store``; memory first (fresh process), then speed."""
    database = f"fhir_media_{store}_{secrets.token_hex(4)}"
    store_work = work / store
    store_work.mkdir()
    s3_env: dict[str, str] = {}
    plain: Target
    if store == "s3":
        assert moto is not None
        bucket = f"fhir-bench-{secrets.token_hex(4)}"
        moto_s3.create_bucket(moto.url, bucket)
        s3_env = {**moto_s3.environment(moto.url), "FHIR_BLOB_URL": f"s3://{bucket}/blobs"}
        plain = PlainS3Target(moto_s3.client(moto.url), bucket)
    else:
        plain = PlainFileTarget(store_work / "server-data" / "plain-reference")
    databases.create_database(args.postgres, database)
    server: Server | None = None
    floor_app: Server | None = None
    client: ServerTarget | None = None
    floor: FloorTarget | None = None
    try:
        server = start_server(store=store, args=args, database=database, work=store_work,
                              s3_env=s3_env)
        server.wait_ready()
        client = ServerTarget(server.url)
        if store == "file":  # the floor writes into the server's blob folder
            floor_app = start_floor(store_work / "server-data" / "blobs" / "floor-reference",
                                    store_work)
            floor_app.wait_ready()
            floor = FloorTarget(floor_app.url)
        run = StoreRun(store, serving_pid(server.process.pid), client, plain, floor)
        log(f"{store} store: server pid {run.pid} ready at {server.url}")
        warm_up(run, payloads)
        memory = measure_memory(run, payloads)
        fixed = request_floor(run, payloads)
        return StoreResults(measure_throughput(run, payloads, args), memory, fixed)
    except BROKEN:
        for process in (server, floor_app):
            if process is not None and log_tail(process.log_path):
                log(f"{store} store: the {process.name} log ends with:")
                print(log_tail(process.log_path), file=sys.stderr)
        raise
    finally:
        for target in (client, floor):
            if target is not None:
                target.close()
        for process in (server, floor_app):
            if process is not None:
                process.stop()
        try:
            databases.drop_database(args.postgres, database)
        except Exception as exc:  # noqa: BLE001 - report and keep cleaning up
            print(f"warning: could not drop database {database}: {exc}", file=sys.stderr)


def log(message: str) -> None:
    print(f"[bench-media] {message}", file=sys.stderr, flush=True)


def header(args: argparse.Namespace, pg_version: str) -> str:
    return (
        "FHIR Binary raw upload (POST) and download (GET) through the server vs plain transfers"
        f" | {os.cpu_count()} CPUs shared by the server, PostgreSQL {pg_version}, moto and the"
        f" client | one sequential client, urllib3 on every side (keep-alive, whole-body"
        f" uploads, {CHUNK // MIB} MiB reads)"
        f" | median of {args.repeat} batches of {args.small_count} x 1 MiB and"
        f" {args.large_count} x 50 MiB (1 MiB = 1,048,576 bytes)"
    )


def meta(args: argparse.Namespace, pg_version: str) -> dict[str, Any]:
    return {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "client": "one sequential urllib3 client per target, keep-alive",
        "chunk_bytes": CHUNK,
        "repeat": args.repeat,
        "small_bytes": SMALL, "small_count": args.small_count,
        "large_bytes": LARGE, "large_count": args.large_count,
        "max_upload_bytes": MAX_UPLOAD_BYTES,
        "stores": args.stores,
        "postgres_version": pg_version,
        "moto_version": version("moto") if "s3" in args.stores else None,
        "python": sys.version.split()[0],
    }


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        fhir_server_command()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _terminate)
    work = Path(tempfile.mkdtemp(prefix="fhir-bench-media-"))
    moto: Server | None = None
    try:
        pg_version = databases.server_version(args.postgres)
        payloads = Payloads(LARGE)
        if "s3" in args.stores:
            moto = moto_s3.start_moto(work)
        results = {store: benchmark_store(store, args, payloads, work, moto)
                   for store in args.stores}
        rows = [row for result in results.values() for row in result.rows]
        memory = [sample for result in results.values() for sample in result.memory]
        print(header(args, pg_version), flush=True)
        print(tables(rows, memory))
        print()
        print(f"Per-file fixed cost through the server (median of {FLOOR_REQUESTS} "
              f"{FLOOR_BYTES}-byte files): " + "; ".join(
                  f"{store} POST {result.floor['upload_ms']:.1f} ms, "
                  f"GET {result.floor['download_ms']:.1f} ms"
                  for store, result in results.items()))
        floors = {store: result.floor for store, result in results.items()}
        write_results(RESULTS, meta(args, pg_version), rows, memory, floors)
        print(f"results written to {RESULTS.relative_to(REPO)}", flush=True)
        return 0
    except BROKEN as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if moto is not None:
            moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
