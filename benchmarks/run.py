"""Benchmark Patient create and read: the FHIR server against a minimal psycopg baseline.

Run ``bash scripts/bench`` (or ``python -m benchmarks.run``) from the repository root.
Both servers run on PostgreSQL in fresh databases that are dropped afterwards; wrk drives
them from a separate process, interleaving the targets so drift affects both alike.
Exit status: 0 when everything was measured (targets met or not), 1 when something broke
(a server did not start, wrk failed, or any response was not 2xx).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from subprocess import SubprocessError
from types import FrameType
from typing import Any

import httpx
import psycopg

from benchmarks import databases, wrk
from benchmarks.patient_payload import patient_body
from benchmarks.processes import Server, free_port, log_tail, run_checked, start
from benchmarks.report import Row, table, write_json

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "latest.json"
WARMUP_SECONDS = 2.0
TARGETS = ("server", "baseline")
BROKEN = (RuntimeError, OSError, ValueError, SubprocessError, psycopg.Error, httpx.HTTPError)
UVICORN_FLAGS = ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bash scripts/bench", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers for both servers")
    parser.add_argument(
        "--preload", type=int, default=2000, help="patients created before the read test"
    )
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL URL used to create and drop the benchmark databases",
    )
    args = parser.parse_args(argv)
    if args.duration < 1 or args.connections < 1 or args.workers < 1 or args.preload < 1:
        parser.error("--duration, --connections, --workers and --preload must be >= 1")
    if not 1 <= args.threads <= args.connections:
        parser.error("--threads must be between 1 and --connections")
    return args


def fhir_server_command() -> Path:
    """The ``fhir-server`` console script next to this interpreter."""
    exe = Path(sys.executable).parent / "fhir-server"
    if not exe.exists():
        raise RuntimeError(f"{exe} not found; install the project: .venv/bin/pip install -e .")
    return exe


def start_fhir_server(args: argparse.Namespace, database: str, work: Path) -> Server:
    """Migrate the database, then start ``fhir-server serve`` on a free port."""
    exe = fhir_server_command()
    url = databases.database_url(args.postgres, database, scheme="postgresql+psycopg")
    data_dir = work / "server-data"
    data_dir.mkdir()
    env = {**os.environ, "FHIR_DATABASE_URL": url, "FHIR_DATA_DIR": str(data_dir)}
    run_checked([str(exe), "migrate"], env, REPO)
    port = free_port()
    argv = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(args.workers)]
    return start("FHIR server", argv, env, REPO, work / "server.log", port)


def start_baseline(args: argparse.Namespace, database: str, work: Path) -> Server:
    """Start the baseline app under uvicorn with the server's settings."""
    env = {**os.environ, "BASELINE_DATABASE_URL": databases.database_url(args.postgres, database)}
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "benchmarks.baseline_app:app"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    argv += [*UVICORN_FLAGS, "--log-level", "warning"]
    return start("baseline", argv, env, REPO, work / "baseline.log", port)


def _created_id(response: httpx.Response) -> str:
    """The new Patient id from the response body, else from the Location header."""
    try:
        body = response.json()
        new_id = body.get("id") if isinstance(body, dict) else None
        if isinstance(new_id, str):
            return new_id
    except ValueError:
        pass
    match = re.search(r"/Patient/([^/?#]+)", response.headers.get("location", ""))
    if match is None:
        raise RuntimeError("create response has neither a body id nor a Location header")
    return match.group(1)


async def _preload(base_url: str, count: int, concurrency: int, tag: str) -> list[str]:
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    limits = httpx.Limits(max_connections=concurrency)
    queue = iter(range(count))
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            for i in queue:
                body = patient_body(f"preload-{tag}-{i}")
                response = await client.post(
                    f"{wrk.FHIR_BASE}/Patient", content=body, headers=headers
                )
                if not response.is_success:
                    raise RuntimeError(
                        f"preload create got HTTP {response.status_code}: {response.text[:500]}"
                    )
                ids.append(_created_id(response))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ids


def preload(server: Server, count: int, concurrency: int, tag: str) -> list[str]:
    """Create ``count`` patients over HTTP and return their ids."""
    return asyncio.run(_preload(server.url, count, concurrency, tag))


def benchmark(args: argparse.Namespace, servers: dict[str, Server], work: Path) -> list[Row]:
    """Warm up, measure create, preload, warm up and measure read, alternating targets."""
    tag = secrets.token_hex(4)

    def script(name: str, text: str) -> Path:
        path = work / name
        path.write_text(text)
        return path

    def measure(target: str, label: str, lua: Path, duration: float) -> wrk.WrkResult:
        log(f"{label} {target} ({duration:g} s)")
        return wrk.run(
            servers[target].url,
            lua,
            duration=duration,
            connections=args.connections,
            threads=args.threads,
        )

    warm_create = script("warm-create.lua", wrk.create_script(f"warm-{tag}"))
    create = script("create.lua", wrk.create_script(f"bench-{tag}"))
    for target in TARGETS:
        measure(target, "warm-up create", warm_create, WARMUP_SECONDS)
    creates = {t: measure(t, "create", create, args.duration) for t in TARGETS}

    reads: dict[str, Path] = {}
    for target in TARGETS:
        log(f"preload {args.preload} patients into {target}")
        ids = preload(servers[target], args.preload, args.connections, f"{tag}-{target}")
        ids_file = work / f"{target}-ids.txt"
        ids_file.write_text("\n".join(ids) + "\n")
        reads[target] = script(f"read-{target}.lua", wrk.read_script(ids_file))
    for target in TARGETS:
        measure(target, "warm-up read", reads[target], WARMUP_SECONDS)
    read_results = {t: measure(t, "read", reads[t], args.duration) for t in TARGETS}

    return [
        Row("create", creates["server"], creates["baseline"]),
        Row("read", read_results["server"], read_results["baseline"]),
    ]


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def header(args: argparse.Namespace, pg_version: str) -> str:
    return (
        f"Patient create/read, FHIR server vs FastAPI+psycopg baseline on PostgreSQL {pg_version}"
        f" | {os.cpu_count()} CPUs shared by both servers, PostgreSQL and wrk"
        f" | workers={args.workers} connections={args.connections} wrk threads={args.threads}"
        f" | {args.duration:g} s per measurement, {args.preload} preloaded patients"
    )


def meta(args: argparse.Namespace, pg_version: str) -> dict[str, Any]:
    return {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "workers": args.workers,
        "connections": args.connections,
        "wrk_threads": args.threads,
        "duration_s": args.duration,
        "preload": args.preload,
        "postgres_version": pg_version,
        "python": sys.version.split()[0],
    }


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("error: wrk is not on PATH (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
        return 1
    try:
        fhir_server_command()
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _terminate)
    suffix = secrets.token_hex(4)
    names = {"server": f"fhir_bench_{suffix}", "baseline": f"fhir_baseline_{suffix}"}
    work = Path(tempfile.mkdtemp(prefix="fhir-bench-"))
    created: list[str] = []
    servers: dict[str, Server] = {}
    try:
        pg_version = databases.server_version(args.postgres)
        for name in names.values():
            databases.create_database(args.postgres, name)
            created.append(name)
        servers["baseline"] = start_baseline(args, names["baseline"], work)
        servers["server"] = start_fhir_server(args, names["server"], work)
        for server in servers.values():
            server.wait_ready()
        print(header(args, pg_version), flush=True)
        rows = benchmark(args, servers, work)
        print(table(rows), flush=True)
        write_json(RESULTS, meta(args, pg_version), rows)
        print(f"results written to {RESULTS.relative_to(REPO)}")
        broken = [row for row in rows if row.failures]
        for row in broken:
            for side in ("server", "baseline"):
                tail = log_tail(servers[side].log_path)
                if getattr(row, side).problem() and tail:
                    log(f"{row.operation} failed on {side}; its log ends with:")
                    print(tail, file=sys.stderr)
        return 1 if broken else 0
    except BROKEN as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers.values():
            server.stop()
        for name in created:
            try:
                databases.drop_database(args.postgres, name)
            except Exception as exc:  # noqa: BLE001 - report and keep cleaning up
                print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
