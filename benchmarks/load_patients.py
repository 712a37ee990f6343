"""Load N synthetic US Patients straight into the PRM tables with PostgreSQL COPY.

    .venv/bin/python -m benchmarks.load_patients \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/DB --count 1000000

Every patient goes through the product's own mapping (``mappings.patient.resource_to_rows``,
the same keys, phone region and MRN system as the server, from the ``FHIR_*`` environment),
so each column and child table is filled as a create over the API would fill it, plus one
``resource_history`` row (POST, version 1). Worker processes generate, map and format the
rows as COPY text; the main process streams each batch into the tables in one transaction, or,
into empty tables, the whole load in one transaction that TRUNCATEs them first and COPYs
``WITH (FREEZE)`` (the rows go in frozen and all-visible; the closing VACUUM has little left).
Run the server with the same ``FHIR_DATA_DIR`` / ``FHIR_ENCRYPTION_KEYS`` / ``FHIR_HASH_KEY``
so it can decrypt the SSNs.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from multiprocessing.pool import AsyncResult, Pool
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Table

from benchmarks import synthetic_patients
from benchmarks.deferred_indexes import indexes_deferred, run_on_connections
from fhir_server.settings import Settings
from mappings.patient import MappingContext, resource_to_rows
from mappings.patient_search import SEARCH_ONLY
from storage.crypto import ensure_local_keys, load_cipher
from storage.history import HistoryEntry
from storage.migrate import upgrade_to_head
from storage.patient_rows_pg import conninfo
from storage.row_set import RowSet
from storage.tables import PATIENT_CHILD_TABLES, patients, resource_history

RESOURCE_TYPE = "Patient"
PROGRESS_SECONDS = 10.0
VALIDATED_SAMPLE = 200
MAINTENANCE_CONNECTIONS = min(max(os.cpu_count() or 1, 2), 4)
"""Index builds and VACUUMs run this many at a time once the rows are in."""
TABLES: tuple[Table, ...] = (patients, *PATIENT_CHILD_TABLES.values(), resource_history)


# ------------------------------------------------------------------ rows -> COPY text


@dataclass(frozen=True)
class CopyPlan:
    """The column list COPY writes for each table, from the SQLAlchemy table definitions."""

    columns: dict[str, tuple[str, ...]]

    @classmethod
    def from_tables(cls, tables: Sequence[Table]) -> CopyPlan:
        """Every column except those the database fills itself (server default, identity)."""
        return cls({
            table.name: tuple(
                column.name for column in table.columns
                if column.server_default is None and column.identity is None
            )
            for table in tables
        })


def copy_value(value: Any) -> str:
    """One field in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    kind = type(value)
    if kind is str:
        text: str = value
        if "\\" in text or not text.isprintable():
            return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                    .replace("\r", "\\r"))
        return text
    if kind is bool:
        return "t" if value else "f"
    if kind is int:
        return str(value)
    if kind is datetime or kind is date:
        return str(value.isoformat())
    raise TypeError(f"no COPY text form for {kind.__name__} value {value!r:.80}")


class CopyBuffers:
    """COPY text per table for one batch of patients."""

    def __init__(self, plan: CopyPlan) -> None:
        self._plan = plan
        self._lines: dict[str, list[str]] = {name: [] for name in plan.columns}

    def add(self, table: str, row: dict[str, Any]) -> None:
        get = row.get
        self._lines[table].append(
            "\t".join([copy_value(get(name)) for name in self._plan.columns[table]]) + "\n")

    def add_patient(self, rows: RowSet, entry: HistoryEntry) -> None:
        """The patient's main row, its child rows (``patient_id`` set) and its history row."""
        self.add(patients.name, rows.main)
        patient_id = rows.main["id"]
        for key, child_rows in rows.children.items():
            table = PATIENT_CHILD_TABLES[key].name
            for child in child_rows:
                child["patient_id"] = patient_id  # the rows are not used after this
                self.add(table, child)
        self.add(resource_history.name, entry.as_row())

    def encoded(self) -> dict[str, bytes]:
        return {table: "".join(lines).encode() for table, lines in self._lines.items() if lines}


# --------------------------------------------------------------- generate and map a batch


@dataclass(frozen=True)
class BatchJob:
    seed: int
    first: int
    count: int
    newest_index: int
    newest: datetime
    """``last_updated`` of patient ``newest_index``; each earlier one is a millisecond older."""


@dataclass(frozen=True)
class BatchRows:
    first: int
    count: int
    copy_text: dict[str, bytes]


_context: MappingContext | None = None
_plan: CopyPlan | None = None


def mapping_context(settings: Settings) -> MappingContext:
    """What the server's mapping uses: its keys, phone region and MRN system."""
    return MappingContext(cipher=load_cipher(settings), phone_region=settings.phone_default_region,
                          mrn_system=settings.mrn_system)


def init_worker(plan: CopyPlan) -> None:
    """Build the mapping context once per process (keys from the ``FHIR_*`` environment)."""
    global _context, _plan
    _context, _plan = mapping_context(Settings()), plan


def make_batch(job: BatchJob) -> BatchRows:
    """Generate, map and format one batch (runs in a worker process)."""
    assert _context is not None and _plan is not None, "init_worker was not called"
    buffers = CopyBuffers(_plan)
    for offset, patient in enumerate(synthetic_patients.batch(job.seed, job.first, job.count)):
        moment = job.newest - timedelta(milliseconds=job.newest_index - job.first - offset)
        rows = resource_to_rows(patient.resource, resource_id=patient.resource_id, version_id=1,
                                last_updated=moment, mrn=patient.mrn, context=_context)
        # as PatientRepository._write: search-only values are left out of the snapshot
        entry = HistoryEntry(RESOURCE_TYPE, patient.resource_id, 1, moment, "POST",
                             rows.to_snapshot(derived=SEARCH_ONLY))
        buffers.add_patient(rows, entry)
    return BatchRows(job.first, job.count, buffers.encoded())


def batch_results(jobs: list[BatchJob], workers: int, plan: CopyPlan) -> Iterator[BatchRows]:
    """The batches in order; ``workers`` processes work ahead by a few batches at most."""
    if workers == 0:
        init_worker(plan)
        yield from map(make_batch, jobs)
        return
    with multiprocessing.get_context("fork").Pool(workers, init_worker, (plan,)) as pool:
        yield from _bounded(pool, jobs, ahead=2 * workers)


def _bounded(pool: Pool, jobs: list[BatchJob], ahead: int) -> Iterator[BatchRows]:
    pending: deque[AsyncResult[BatchRows]] = deque()
    queue = iter(jobs)
    for job in queue:
        pending.append(pool.apply_async(make_batch, (job,)))
        if len(pending) >= ahead:
            break
    while pending:
        result = pending.popleft().get()
        following = next(queue, None)
        if following is not None:
            pending.append(pool.apply_async(make_batch, (following,)))
        yield result


# ------------------------------------------------------------------------- database side


def copy_batch(connection: psycopg.Connection[Any], plan: CopyPlan, rows: BatchRows, *,
               freeze: bool = False) -> None:
    """COPY one batch into every table (parents first): in a transaction of its own, or with
    ``freeze`` in the caller's, which emptied the tables with TRUNCATE (see ``freezable``)."""
    with (contextlib.nullcontext() if freeze else connection.transaction()), \
            connection.cursor() as cursor:
        for table in TABLES:
            data = rows.copy_text.get(table.name)
            if not data:
                continue
            statement = sql.SQL("COPY {} ({}) FROM STDIN" + (" WITH (FREEZE)" if freeze else "")
                                ).format(
                sql.Identifier(table.name),
                sql.SQL(", ").join(map(sql.Identifier, plan.columns[table.name])))
            with cursor.copy(statement) as copy:
                copy.write(data)


_REFERENCED_FROM_ELSEWHERE = """
SELECT 1 FROM pg_constraint c
WHERE c.contype = 'f' AND c.confrelid::regclass::text = ANY(%(tables)s)
  AND NOT c.conrelid::regclass::text = ANY(%(tables)s)"""


def freezable(connection: psycopg.Connection[Any]) -> bool:
    """Whether the whole load may run as one transaction that TRUNCATEs the tables first and
    COPYs ``WITH (FREEZE)``: the rows go in frozen and marked all-visible, so the closing
    VACUUM has next to nothing to do. Only when every table is empty (TRUNCATE then removes
    nothing) and no other table has a foreign key into them (TRUNCATE would refuse)."""
    names = [table.name for table in TABLES]
    for name in names:
        query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(name))
        row = connection.execute(query).fetchone()
        if row is None or row[0]:
            return False
    return connection.execute(_REFERENCED_FROM_ELSEWHERE, {"tables": names}).fetchone() is None


# ---------------------------------------------------------------------------- command


def log(message: str) -> None:
    print(f"[load] {message}", file=sys.stderr, flush=True)


def now_ms() -> datetime:
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def key_source(settings: Settings) -> str:
    if settings.encryption_keys and settings.hash_key:
        return "FHIR_ENCRYPTION_KEYS and FHIR_HASH_KEY"
    return f"{(settings.data_dir / 'keys').resolve()} (FHIR_DATA_DIR; created if missing)"


def validate_sample(seed: int, start: int, count: int) -> None:
    """Check the first patients against the R4 model, as the API would before mapping."""
    from fhir_server.validation.resource import validate_resource

    for patient in synthetic_patients.batch(seed, start, min(count, VALIDATED_SAMPLE)):
        validate_resource(patient.resource, RESOURCE_TYPE)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load_patients", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url", required=True,
                        help="postgresql+psycopg://user@host:port/db (the schema is migrated)")
    parser.add_argument("--count", type=int, required=True, help="patients to load")
    parser.add_argument("--batch", type=int, default=5000, help="patients per transaction")
    parser.add_argument("--seed", type=int, default=1, help="population seed")
    parser.add_argument("--start", type=int, default=0,
                        help="index of the first patient (to extend a population loaded before)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes generating rows (0: in the main process)")
    parser.add_argument("--keep-indexes", action="store_true",
                        help="maintain every index during the load (the default drops the "
                             "secondary ones when the patients table is empty and rebuilds "
                             "them after the last batch)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.batch < 1 or args.start < 0 or args.workers < 0:
        parser.error("--count and --batch must be >= 1, --start and --workers >= 0")
    if not args.database_url.startswith(("postgresql", "postgres")):
        parser.error("--database-url must be a PostgreSQL URL (the loader uses COPY)")
    return args


def load(args: argparse.Namespace, started: float) -> float:
    """Migrate, COPY every batch (secondary indexes deferred into an empty database), VACUUM
    (ANALYZE); the seconds spent in COPY and the index rebuild."""
    upgrade_to_head(args.database_url)
    plan = CopyPlan.from_tables(TABLES)
    end = args.start + args.count
    newest = now_ms()
    jobs = [BatchJob(args.seed, first, min(args.batch, end - first), end - 1, newest)
            for first in range(args.start, end, args.batch)]
    loaded = 0
    with psycopg.connect(conninfo(args.database_url), autocommit=True) as connection:
        load_started = last_report = time.monotonic()
        empty = connection.execute("SELECT NOT EXISTS (SELECT 1 FROM patients)").fetchone()
        defer = not args.keep_indexes and bool(empty and empty[0])
        freeze = defer and freezable(connection)
        with (indexes_deferred(connection, [table.name for table in TABLES], log,
                               conninfo=conninfo(args.database_url),
                               connections=MAINTENANCE_CONNECTIONS) if defer
              else contextlib.nullcontext()), \
                (connection.transaction() if freeze else contextlib.nullcontext()):
            if freeze:
                log("one transaction: TRUNCATE, then COPY ... WITH (FREEZE)")
                connection.execute(sql.SQL("TRUNCATE {}").format(
                    sql.SQL(", ").join(sql.Identifier(table.name) for table in TABLES)))
            for rows in batch_results(jobs, args.workers, plan):
                copy_batch(connection, plan, rows, freeze=freeze)
                loaded += rows.count
                moment = time.monotonic()
                if moment - last_report >= PROGRESS_SECONDS or loaded == args.count:
                    last_report = moment
                    rate = loaded / (moment - load_started)
                    log(f"{loaded:,}/{args.count:,} ({loaded / args.count:.0%}) {rate:,.0f}/s,"
                        f" {moment - started:.0f} s, about {(args.count - loaded) / rate:.0f} s"
                        " to go")
        copy_seconds = time.monotonic() - load_started
        # statistics for the planner, and the visibility map and hint bits set once now rather
        # than by the first queries or autovacuum in the middle of a benchmark
        log(f"VACUUM (ANALYZE), {MAINTENANCE_CONNECTIONS} tables at a time")
        largest_first = [str(name) for name, in connection.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%(tables)s) AND relkind = 'r'"
            " ORDER BY pg_total_relation_size(oid) DESC",
            {"tables": [table.name for table in TABLES]}).fetchall()]
        run_on_connections(
            conninfo(args.database_url),
            [sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(name)).as_string(connection)
             for name in largest_first],
            connections=MAINTENANCE_CONNECTIONS)
    return copy_seconds


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings()
    ensure_local_keys(settings)  # before the workers start, so they all read the same keys
    log(f"encryption and hash keys: {key_source(settings)}")
    validate_sample(args.seed, args.start, args.count)
    started = time.monotonic()
    try:
        copy_seconds = load(args, started)
    except psycopg.errors.UniqueViolation as exc:
        print(f"error: {exc.diag.message_primary}; patient ids and MRNs come from the index,"
              " so extend a loaded population with --start (its size) rather than loading"
              " the same indexes again", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    total = time.monotonic() - started
    print(f"loaded {args.count:,} patients in {total:.1f} s ({args.count / total:,.0f} patients/s)"
          f" with {args.workers} workers: COPY (and index build) {copy_seconds:.1f} s, migration and VACUUM"
          f" {total - copy_seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
