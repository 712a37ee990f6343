"""Benchmark Patient search on a loaded database: single-client latency per query, and
name-prefix throughput under wrk against a minimal psycopg app running the same SQL.

    .venv/bin/python -m benchmarks.search \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB [--duration 10]

Load the database first (``python -m benchmarks.load_patients``) and run this with the same
``FHIR_*`` environment (``FHIR_DATA_DIR`` or the key variables) so the server reads the
loaded SSNs. The database is only read; nothing is created or dropped.
Exit status: 0 when every query was measured, 1 when any failed or a server did not start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, LiteralString
from urllib.parse import urlencode

import httpx
import psycopg

from benchmarks import databases, proc_cpu, wrk
from benchmarks.processes import Server, free_port, log_tail, run_checked, start
from benchmarks.report import format_table
from benchmarks.run import BROKEN, UVICORN_FLAGS, _terminate, fhir_server_command
from benchmarks.synthetic_patients import EHR_MRN_SYSTEM, SSN_SYSTEM
from fhir_server.settings import Settings
from mappings.search_text import normalise
from storage.crypto import KeyConfigurationError, load_cipher
from storage.patient_rows_pg import conninfo

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "search-latest.json"
HEADERS = {"Accept": "application/fhir+json"}
WARMUP_REQUESTS = 5
WARMUP_SECONDS = 2.0
DEEP_PAGE = 10
THROUGHPUT_COUNT = 20

DEFAULT_BASELINE_SQL = """\
WITH page AS (
  SELECT p.id FROM patients p
  WHERE p.deleted_at IS NULL AND p.name_search LIKE '%%|' || lower(%(value)s) || '%%'
  ORDER BY p.id LIMIT %(count)s
)
SELECT json_build_object(
  'resourceType', 'Patient', 'id', p.id, 'gender', p.gender, 'birthDate', p.birth_date,
  'identifier', (SELECT json_agg(json_build_object('system', i.system, 'value', i.value)
                 ORDER BY i.position) FROM patient_identifiers i WHERE i.patient_id = p.id),
  'name', (SELECT json_agg(json_build_object('family', n.family, 'given', n.given::json)
           ORDER BY n.position) FROM patient_names n WHERE n.patient_id = p.id),
  'telecom', (SELECT json_agg(json_build_object('system', t.system, 'value', t.value,
              'use', t.use) ORDER BY t.position) FROM patient_telecoms t
              WHERE t.patient_id = p.id),
  'address', (SELECT json_agg(json_build_object('line', a.line::json, 'city', a.city,
              'state', a.state, 'postalCode', a.postal_code) ORDER BY a.position)
              FROM patient_addresses a WHERE a.patient_id = p.id)
)::text
FROM page JOIN patients p ON p.id = page.id ORDER BY p.id"""
"""Name-prefix search by hand, as the server's compiler writes its condition (``|``-delimited
normalised haystack, ``LIKE '%|abc%'``, live rows, id order), plus one statement building the
page's resources from the patient and child rows. Placeholders: ``%(value)s``, ``%(count)s``."""


# ------------------------------------------------------------------- values to search for


@dataclass(frozen=True)
class Picked:
    """Real values from the loaded database; one sample patient supplies most of them."""

    patients: int
    common_family: str
    common_family_count: int
    name_prefix: str
    family: str
    family_count: int
    given: str
    birth_date: str
    identifier_system: str
    identifier_value: str
    ssn: str | None
    phone: str
    postal_code: str


def pick_values(database_url: str) -> Picked:
    """Values of live patients: the most common family name, and a patient of the median
    family name (by frequency) with a given name, birth date, phone, postcode and a clear
    identifier."""
    with psycopg.connect(conninfo(database_url)) as conn:
        total = _one(conn, "SELECT count(*) FROM patients WHERE deleted_at IS NULL")
        families = conn.execute(
            "SELECT family_name, count(*) FROM patients WHERE deleted_at IS NULL"
            " AND family_name IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
        if not families:
            raise RuntimeError("the database holds no patients with a family name; load some"
                               " first (python -m benchmarks.load_patients)")
        common, median = families[0], families[len(families) // 2]
        sample = conn.execute(
            "SELECT p.id, p.family_name, n.given::json->>0, p.birth_date::text,"
            " p.address_postal_code FROM patients p JOIN patient_names n"
            " ON n.patient_id = p.id AND n.position = 0"
            " WHERE p.deleted_at IS NULL AND p.family_name = %s AND n.given IS NOT NULL"
            " AND p.birth_date IS NOT NULL AND p.primary_phone IS NOT NULL"
            " AND p.address_postal_code IS NOT NULL ORDER BY p.id LIMIT 1",
            (median[0],)).fetchone()
        if sample is None:
            raise RuntimeError("the database holds no suitable patients; load some first"
                               " (python -m benchmarks.load_patients)")
        patient_id = sample[0]
        identifier = conn.execute(
            "SELECT system, value FROM patient_identifiers WHERE patient_id = %s"
            " AND value IS NOT NULL AND system IS NOT NULL ORDER BY system <> %s, position"
            " LIMIT 1", (patient_id, EHR_MRN_SYSTEM)).fetchone()
        phone = conn.execute(
            "SELECT value FROM patient_telecoms WHERE patient_id = %s AND system = 'phone'"
            " AND value_e164 IS NOT NULL ORDER BY position LIMIT 1", (patient_id,)).fetchone()
        ciphertext = conn.execute(
            "SELECT ssn_ciphertext FROM patients WHERE deleted_at IS NULL"
            " AND ssn_ciphertext IS NOT NULL ORDER BY id LIMIT 1").fetchone()
    if identifier is None or phone is None:
        raise RuntimeError(f"sample patient {patient_id} has no clear identifier or phone")
    return Picked(
        patients=total, common_family=common[0], common_family_count=common[1],
        name_prefix=normalise(common[0])[:3], family=sample[1], family_count=median[1],
        given=sample[2],
        birth_date=sample[3], identifier_system=identifier[0], identifier_value=identifier[1],
        ssn=_decrypt(ciphertext[0]) if ciphertext else None, phone=phone[0],
        postal_code=sample[4],
    )


def audit_trail_size(database_url: str) -> tuple[int, int]:
    """(AuditEvents, their reference rows) stored now: every audited search adds one event and
    a reference row per patient on its page, and a larger trail costs each insert more, so
    runs on one database are compared with this beside them."""
    with psycopg.connect(conninfo(database_url)) as conn:
        return (int(_one(conn, "SELECT count(*) FROM audit_events")),
                int(_one(conn, "SELECT count(*) FROM audit_events_references")))


def _one(conn: psycopg.Connection[Any], statement: LiteralString) -> Any:
    row = conn.execute(statement).fetchone()
    return row[0] if row else None


def _decrypt(ciphertext: str) -> str | None:
    """The SSN in clear with this environment's keys (the server's), None if they differ."""
    try:
        return load_cipher(Settings()).decrypt(ciphertext)
    except KeyConfigurationError:
        log("warning: the stored SSNs do not decrypt with this environment's keys (FHIR_DATA_DIR"
            " / FHIR_ENCRYPTION_KEYS); use the loader's; the SSN query is skipped")
        return None


# ---------------------------------------------------------------- single-client latency


@dataclass(frozen=True)
class Query:
    label: str
    path: str


def path(**parameters: str) -> str:
    """``/fhir/Patient?...`` with the parameters URL-encoded (``address_postalcode`` names
    ``address-postalcode``)."""
    pairs = {key.replace("_", "-") if not key.startswith("_") else key: value
             for key, value in parameters.items()}
    return f"{wrk.FHIR_BASE}/Patient?{urlencode(pairs)}"


def queries(picked: Picked) -> list[Query]:
    """The single-client queries (the deep-page pair is added once its link is known)."""
    family_given = f"family={picked.family}&given={picked.given}"
    found = [
        Query(f"name={picked.name_prefix} (3 letters)", path(name=picked.name_prefix)),
        Query(family_given, path(family=picked.family, given=picked.given)),
        Query(f"birthdate={picked.birth_date}&family={picked.family}",
              path(birthdate=picked.birth_date, family=picked.family)),
        Query("identifier=system|value (EHR)",
              path(identifier=f"{picked.identifier_system}|{picked.identifier_value}")),
    ]
    if picked.ssn is not None:
        found.append(Query("identifier=us-ssn|value (hash)",
                           path(identifier=f"{SSN_SYSTEM}|{picked.ssn}")))
    found += [
        Query(f"phone={picked.phone}", path(phone=picked.phone)),
        Query(f"address-postalcode={picked.postal_code}",
              path(address_postalcode=picked.postal_code)),
        Query(f"{family_given}&_total=accurate",
              path(family=picked.family, given=picked.given, _total="accurate")),
        Query(f"family={picked.common_family}&_total=accurate",
              path(family=picked.common_family, _total="accurate")),
    ]
    return found


@dataclass(frozen=True)
class Latency:
    """One query from one sequential client; latencies in milliseconds."""

    label: str
    path: str
    requests: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    results: str
    error: str | None

    def cells(self) -> list[str]:
        if self.error:
            return [self.label, str(self.requests), "-", "-", "-", "-", f"FAILED {self.error}"]
        return [self.label, str(self.requests), _ms(self.p50_ms), _ms(self.p95_ms),
                _ms(self.p99_ms), self.results, "ok"]


LATENCY_COLUMNS = ("query", "requests", "p50", "p95", "p99", "results", "status")


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of ascending values."""
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def describe_failure(response: httpx.Response) -> str:
    """``HTTP 404: <first OperationOutcome diagnostics>``, plus a hint when search is absent."""
    detail = ""
    try:
        body = response.json()
        issues = (body.get("issue") or []) if isinstance(body, dict) else []
        detail = (issues[0].get("diagnostics") or "") if issues else ""
    except ValueError:
        detail = response.text[:200]
    hint = " (is search served by this build?)" if response.status_code in (404, 405) else ""
    return f"HTTP {response.status_code}{hint}: {detail[:200]}".rstrip(": ")


def result_count(bundle: dict[str, Any]) -> str:
    """Bundle.total when given, else the page's entries (``+`` when a next page exists)."""
    if isinstance(bundle.get("total"), int):
        return f"{bundle['total']:,}"
    more = any(link.get("relation") == "next" for link in bundle.get("link") or ())
    return f"{len(bundle.get('entry') or [])}{'+' if more else ''}"


def measure(client: httpx.Client, query: Query, requests: int, max_seconds: float) -> Latency:
    """``requests`` sequential GETs (after a short warm-up), or fewer if ``max_seconds`` pass."""
    timings: list[float] = []
    bundle: dict[str, Any] = {}
    deadline = time.monotonic() + max_seconds
    for n in range(WARMUP_REQUESTS + requests):
        started = time.perf_counter()
        response = client.get(query.path)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            return Latency(query.label, query.path, len(timings), 0, 0, 0, "",
                           describe_failure(response))
        if n >= WARMUP_REQUESTS:
            timings.append(elapsed * 1000)
        else:
            bundle = response.json()
        if time.monotonic() > deadline and timings:
            break
    timings.sort()
    return Latency(query.label, query.path, len(timings), percentile(timings, 50),
                   percentile(timings, 95), percentile(timings, 99), result_count(bundle), None)


def deep_page(client: httpx.Client, first: str, page: int) -> str:
    """The link to page ``page`` of a search, following ``next`` links from ``first``."""
    url = first
    for number in range(1, page):
        response = client.get(url)
        if response.status_code != 200:
            raise SearchFailed(f"page {number}: {describe_failure(response)}")
        links = {link.get("relation"): link.get("url") for link in response.json().get("link", [])}
        if not links.get("next"):
            raise SearchFailed(f"only {number} pages (no next link on page {number})")
        url = links["next"]
    return url


class SearchFailed(RuntimeError):
    pass


def latencies(client: httpx.Client, picked: Picked, args: argparse.Namespace) -> list[Latency]:
    """Every query in turn; a failing query is reported and the others still run."""
    found: list[Latency] = []

    def run(query: Query) -> None:
        log(f"latency: {query.label}")
        try:
            result = measure(client, query, args.requests, args.max_seconds)
        except (httpx.HTTPError, ValueError) as exc:
            result = Latency(query.label, query.path, 0, 0, 0, 0, "",
                             f"{type(exc).__name__}: {exc}")
        if result.error:
            log(f"FAILED {query.label}: GET {query.path} -> {result.error}")
        found.append(result)

    for query in queries(picked):
        run(query)
    common = f"family={picked.common_family}&_count=50"
    first = Query(f"{common} page 1", path(family=picked.common_family, _count="50"))
    run(first)
    deep = f"{common} page {DEEP_PAGE}"
    try:
        run(Query(deep, deep_page(client, first.path, DEEP_PAGE)))
    except (SearchFailed, httpx.HTTPError, ValueError) as exc:
        log(f"FAILED {deep}: following next links from {first.path} -> {exc}")
        found.append(Latency(deep, first.path, 0, 0, 0, 0, "", f"next links: {exc}"))
    return found


# ------------------------------------------------------------------ throughput under wrk


@dataclass(frozen=True)
class CpuPerRequest:
    """Milliseconds of CPU per request during a wrk run: the app's processes, PostgreSQL's."""

    app_ms: float
    postgres_ms: float


@dataclass(frozen=True)
class Throughput:
    label: str
    path: str
    server: wrk.WrkResult
    baseline: wrk.WrkResult
    cpu: dict[str, CpuPerRequest]
    round_ratios: tuple[float, ...]
    """server/baseline of each round (a server run, then a baseline run)."""
    problems: tuple[str, ...] = ()
    """What went wrong in any run of any round."""

    @property
    def ratio(self) -> float:
        """The median of the rounds' ratios."""
        return statistics.median(self.round_ratios) if self.round_ratios else 0.0

    @property
    def failures(self) -> list[str]:
        return list(self.problems)

    def cells(self) -> list[str]:
        verdict = "FAILED " + "; ".join(self.failures) if self.failures else "ok"
        return [self.label, f"{self.server.requests_per_sec:,.0f}", _ms(self.server.p50_ms),
                _ms(self.server.p99_ms), _cpu(self.cpu["server"]),
                f"{self.baseline.requests_per_sec:,.0f}", _ms(self.baseline.p50_ms),
                _ms(self.baseline.p99_ms), _cpu(self.cpu["baseline"]), self._ratio_cell(),
                verdict]

    def _ratio_cell(self) -> str:
        if len(self.round_ratios) < 2:
            return f"{self.ratio:.2f}"
        return (f"{self.ratio:.2f} ({min(self.round_ratios):.2f}-"
                f"{max(self.round_ratios):.2f})")

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "path": self.path, "server": self.server.to_json(),
                "baseline": self.baseline.to_json(), "ratio": round(self.ratio, 4),
                "round_ratios": [round(ratio, 4) for ratio in self.round_ratios],
                "cpu_ms_per_request": {side: asdict(cpu) for side, cpu in self.cpu.items()},
                "failures": self.failures}


def _cpu(cpu: CpuPerRequest) -> str:
    return f"{cpu.app_ms:.2f} + {cpu.postgres_ms:.2f}"


THROUGHPUT_COLUMNS = ("search", "server req/s", "server p50", "server p99",
                      "server CPU ms/req (app + PostgreSQL)", "baseline req/s", "baseline p50",
                      "baseline p99", "baseline CPU ms/req (app + PostgreSQL)", "ratio",
                      "status")


def check_baseline(client: httpx.Client, server: httpx.Client, query: str) -> None:
    """Fail early when the baseline SQL breaks; warn when its page differs from the server's."""
    response = client.get(query)
    if response.status_code != 200:
        raise RuntimeError(f"baseline search failed: {describe_failure(response)}")
    baseline_ids = [(entry.get("resource") or {}).get("id")
                    for entry in response.json().get("entry", [])]
    answer = server.get(query)
    if answer.status_code == 200:
        server_ids = [entry["resource"]["id"] for entry in answer.json().get("entry", [])]
        if server_ids != baseline_ids:
            log(f"warning: the baseline's page ({len(baseline_ids)} ids) differs from the"
                f" server's ({len(server_ids)} ids); is --baseline-sql the server's query?")


def throughput(servers: dict[str, Server], picked: Picked, args: argparse.Namespace,
               work: Path) -> Throughput:
    """wrk on the name-prefix search, server and baseline interleaved (warm-ups first)."""
    query = path(name=picked.name_prefix, _count=str(THROUGHPUT_COUNT))
    with httpx.Client(base_url=servers["baseline"].url, headers=HEADERS, timeout=30) as base, \
            httpx.Client(base_url=servers["server"].url, headers=HEADERS, timeout=30) as real:
        check_baseline(base, real, query)
    script = work / "search.lua"
    script.write_text(wrk.get_script([query]))

    def run(target: str, duration: float) -> wrk.WrkResult:
        return wrk.run(servers[target].url, script, duration=duration,
                       connections=args.connections, threads=args.threads)

    for target in servers:
        log(f"warm-up {target} ({WARMUP_SECONDS:g} s)")
        run(target, WARMUP_SECONDS)
    runs: dict[str, list[tuple[wrk.WrkResult, CpuPerRequest]]] = {
        target: [] for target in servers}
    for round_number in range(1, args.rounds + 1):
        for target, target_server in servers.items():
            log(f"wrk {target}, round {round_number}/{args.rounds}: GET {query}"
                f" ({args.duration:g} s, {args.connections} connections)")
            pid = target_server.process.pid
            app_before, postgres_before = proc_cpu.tree_cpu_seconds(pid), \
                proc_cpu.postgres_cpu_seconds()
            result = run(target, args.duration)
            served = max(result.requests, 1)
            runs[target].append((result, CpuPerRequest(
                (proc_cpu.tree_cpu_seconds(pid) - app_before) * 1000 / served,
                (proc_cpu.postgres_cpu_seconds() - postgres_before) * 1000 / served)))
    ratios = tuple(server.requests_per_sec / baseline.requests_per_sec
                   if baseline.requests_per_sec else 0.0
                   for (server, _), (baseline, _) in zip(runs["server"], runs["baseline"]))
    problems = tuple(f"{target} round {number}: {problem}"
                     for target, target_runs in runs.items()
                     for number, (result, _) in enumerate(target_runs, 1)
                     if (problem := result.problem()))
    median = {target: _median_run(target_runs) for target, target_runs in runs.items()}
    label = f"name={picked.name_prefix}&_count={THROUGHPUT_COUNT}"
    return Throughput(label, query, median["server"][0], median["baseline"][0],
                      {target: run_cpu for target, (_, run_cpu) in median.items()}, ratios,
                      problems)


def _median_run(runs: list[tuple[wrk.WrkResult, CpuPerRequest]]
                ) -> tuple[wrk.WrkResult, CpuPerRequest]:
    """The run with the median throughput (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda run: run[0].requests_per_sec)
    return ordered[(len(ordered) - 1) // 2]


# ---------------------------------------------------------------------------- command


def log(message: str) -> None:
    print(f"[search] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.search", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", required=True,
                        help="the loaded database, postgresql+psycopg://user@host:port/db")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--requests", type=int, default=200,
                        help="sequential requests per latency query")
    parser.add_argument("--max-seconds", type=float, default=60.0,
                        help="stop a latency query early after this many seconds")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=3,
                        help="throughput rounds, each a server run then a baseline run; the"
                             " ratio is the median of the rounds' ratios")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers for both apps")
    parser.add_argument("--baseline-sql", default=DEFAULT_BASELINE_SQL,
                        help="SQL the baseline runs for name=VALUE&_count=N (psycopg"
                             " placeholders %%(value)s and %%(count)s; %% doubled)")
    parser.add_argument("--skip-throughput", action="store_true",
                        help="only the single-client latencies (no wrk, no baseline)")
    args = parser.parse_args(argv)
    if min(args.duration, args.requests, args.connections, args.workers, args.rounds) < 1:
        parser.error("--duration, --requests, --connections, --workers and --rounds must be"
                     " >= 1")
    if not 1 <= args.threads <= args.connections:
        parser.error("--threads must be between 1 and --connections")
    return args


def start_fhir_server(args: argparse.Namespace, work: Path) -> Server:
    """``fhir-server serve`` on the loaded database, keys from this environment."""
    exe = fhir_server_command()
    env = {**os.environ, "FHIR_DATABASE_URL": args.database_url}
    run_checked([str(exe), "migrate"], env, REPO)  # a no-op on a loader-made database
    port = free_port()
    argv = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(args.workers)]
    return start("FHIR server", argv, env, REPO, work / "server.log", port)


def start_baseline(args: argparse.Namespace, work: Path) -> Server:
    env = {**os.environ, "BASELINE_DATABASE_URL": conninfo(args.database_url),
           "BASELINE_SEARCH_SQL": args.baseline_sql}
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "benchmarks.search_baseline_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
            *UVICORN_FLAGS, "--log-level", "warning"]
    return start("baseline", argv, env, REPO, work / "baseline.log", port)


def write_json(args: argparse.Namespace, picked: Picked, rows: list[Latency],
               load: Throughput | None, broken: str | None,
               audit_trail: tuple[int, int]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": {
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cpu_count": os.cpu_count(), "workers": args.workers,
            "connections": args.connections, "wrk_threads": args.threads,
            "duration_s": args.duration, "rounds": args.rounds,
            "requests_per_query": args.requests,
            "postgres_version": databases.server_version(conninfo(args.database_url)),
            "python": sys.version.split()[0], "baseline_sql": args.baseline_sql,
            "audit_events_before": audit_trail[0],
            "audit_reference_rows_before": audit_trail[1],
        },
        "values": asdict(picked),
        "latency": [asdict(row) for row in rows],
        "throughput": [load.to_json()] if load else [],
        "throughput_error": broken,
    }
    text = json.dumps(payload, indent=2) + "\n"
    if picked.ssn:  # synthetic, but an SSN is not written anywhere in clear
        text = text.replace(picked.ssn, "***-**-" + picked.ssn[-4:])
    RESULTS.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.skip_throughput and shutil.which("wrk") is None:
        print("error: wrk is not on PATH (Debian/Ubuntu: apt-get install wrk)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _terminate)
    work = Path(tempfile.mkdtemp(prefix="fhir-search-bench-"))
    servers: dict[str, Server] = {}
    try:
        picked = pick_values(args.database_url)
        log(f"{picked.patients:,} live patients; most common family {picked.common_family}"
            f" ({picked.common_family_count:,}), median family {picked.family}"
            f" ({picked.family_count:,})")
        audit_trail = audit_trail_size(args.database_url)
        log(f"audit trail before this run: {audit_trail[0]:,} AuditEvents with"
            f" {audit_trail[1]:,} reference rows")
        servers["server"] = start_fhir_server(args, work)
        if not args.skip_throughput:
            servers["baseline"] = start_baseline(args, work)
        for server in servers.values():
            server.wait_ready()
        with httpx.Client(base_url=servers["server"].url, headers=HEADERS, timeout=60) as client:
            rows = latencies(client, picked, args)
        print(f"Patient search on {picked.patients:,} patients | {os.cpu_count()} CPUs shared by"
              f" the server, PostgreSQL and the client | workers={args.workers}"
              f" | one sequential client, {args.requests} requests per query", flush=True)
        print(format_table(LATENCY_COLUMNS, [row.cells() for row in rows], {0, 6}), flush=True)
        load, broken = None, None
        if not args.skip_throughput:
            try:
                load = throughput(servers, picked, args, work)
            except BROKEN as exc:
                broken = f"throughput not measured: {exc}"
                print(f"error: {broken}", file=sys.stderr)
        if load is not None:
            print(f"\nthroughput: wrk, {args.connections} connections, {args.rounds} rounds of"
                  f" {args.duration:g} s each, server vs FastAPI+psycopg running the same search"
                  " SQL (the median round; ratio: median and range of the rounds)", flush=True)
            print(format_table(THROUGHPUT_COLUMNS, [load.cells()],
                               {0, len(THROUGHPUT_COLUMNS) - 1}), flush=True)
        write_json(args, picked, rows, load, broken, audit_trail)
        print(f"results written to {RESULTS.relative_to(REPO)}")
        failed = [row.label for row in rows if row.error]
        failed += [load.label] if load and load.failures else []
        if failed:
            log(f"{len(failed)} searches failed; the server log ends with:")
            print(log_tail(servers["server"].log_path, 20), file=sys.stderr)
        return 1 if failed or broken else 0
    except BROKEN as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
