"""The duplicates queue: the pairs of the latest ``fhir-server match scan`` (the CSV it writes to
``FHIR_DATA_DIR/match-scan.csv``, or the same scan run from the console), highest score first,
without the pairs a reviewer dismissed and those already resolved (a patient merged or
deleted)."""

from __future__ import annotations

import asyncio
import csv
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.console.patients import PatientRow, Repositories, patient_row, run_search
from fhir_server.operations.match import PatientMatcher
from fhir_server.operations.match_scan import DuplicatePair, scan, write_pairs
from fhir_server.settings import Settings
from storage.dismissals import DismissalStore, ordered
from storage.patient_repository import PatientRepository

logger = logging.getLogger("fhir_server")
SCAN_FILE = "match-scan.csv"
SCAN_GRADE = "probable"
PAGE_SIZE = 25
LOOKUP_CHUNK = 40
MAX_CHUNKS = 25
"""A page stops after this many lookups of pairs that all turned out resolved (the next page
goes on from there)."""


def scan_path(settings: Settings) -> Path:
    return settings.data_dir / SCAN_FILE


class ScanFile:
    """The pairs of the scan file, best first; read again only when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._pairs: list[DuplicatePair] = []
        self.written_at: datetime | None = None

    def pairs(self) -> list[DuplicatePair]:
        try:
            status = self.path.stat()
        except FileNotFoundError:
            self._seen, self._pairs, self.written_at = None, [], None
            return []
        if self._seen != (status.st_mtime_ns, status.st_size):
            self._pairs = _read(self.path)
            self._seen = (status.st_mtime_ns, status.st_size)
            self.written_at = datetime.fromtimestamp(status.st_mtime, UTC)
        return self._pairs


def _read(path: Path) -> list[DuplicatePair]:
    found: list[DuplicatePair] = []
    with path.open(newline="") as stream:
        for row in csv.DictReader(stream):
            try:
                found.append(DuplicatePair(row["first"], row["second"], float(row["score"]),
                                           row["grade"], row.get("reasons") or ""))
            except (KeyError, TypeError, ValueError):
                continue  # a line that is not a pair (a hand-edited file): left out
    return sorted(found, key=lambda pair: (-pair.score, pair.first, pair.second))


@dataclass
class ScanJob:
    """The console's 'scan now': one at a time per server process, in the background, writing
    the scan file whole when done (readers never see half a file)."""

    task: asyncio.Task[None] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    found: int | None = None
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self, *, engine: AsyncEngine, patients: PatientRepository,
              matcher: PatientMatcher, path: Path) -> bool:
        """False when a scan is running already."""
        if self.running:
            return False
        self.started_at, self.finished_at = datetime.now(UTC), None
        self.found = self.error = None
        self.task = asyncio.get_running_loop().create_task(
            self._run(engine, patients, matcher, path))
        return True

    async def _run(self, engine: AsyncEngine, patients: PatientRepository,
                   matcher: PatientMatcher, path: Path) -> None:
        try:
            pairs = await scan(engine, patients, matcher, minimum=SCAN_GRADE, progress=False)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".part")
            await asyncio.to_thread(write_pairs, pairs, partial)
            os.replace(partial, path)
            self.found = len(pairs)
        except Exception as error:  # reported on the queue page, and logged
            logger.exception("console duplicate scan failed")
            self.error = str(error)[:300]
        finally:
            self.finished_at = datetime.now(UTC)


@dataclass
class ConsoleState:
    """What the console keeps per server process: the scan file it reads and its scan job."""

    scan_file: ScanFile
    job: ScanJob = field(default_factory=ScanJob)


@dataclass(frozen=True)
class QueueRow:
    first: PatientRow
    second: PatientRow
    score: float
    grade: str
    reasons: str


@dataclass
class QueuePage:
    rows: list[QueueRow]
    start: int
    next_start: int | None
    in_scan: int
    dismissed: int
    scanned_at: datetime | None


async def _live(repositories: Repositories, ids: list[str], *, settings: Settings,
                base_url: str) -> Mapping[str, PatientRow]:
    """The patients of ``ids`` still live and unmerged (a Patient search leaves merged ones
    out), read as the caller may."""
    results = await run_search(repositories, "Patient",
                               [("_id", ",".join(ids)), ("_count", str(len(ids)))],
                               settings=settings, base_url=base_url)
    return {str(resource["id"]): patient_row(resource, settings.mrn_system)
            for resource in results.resources}


async def queue_page(repositories: Repositories, pairs: list[DuplicatePair], start: int, *,
                     dismissals: DismissalStore, scanned_at: datetime | None,
                     settings: Settings, base_url: str) -> QueuePage:
    """Up to a page of open pairs from position ``start`` of the scan on."""
    dismissed = await dismissals.among((pair.first, pair.second) for pair in pairs)
    rows: list[QueueRow] = []
    index = max(start, 0)
    chunks = 0
    while index < len(pairs) and len(rows) < PAGE_SIZE and chunks < MAX_CHUNKS:
        chunk = [pair for pair in pairs[index:index + LOOKUP_CHUNK]
                 if ordered(pair.first, pair.second) not in dismissed]
        live = await _live(repositories, sorted({i for p in chunk for i in (p.first, p.second)}),
                           settings=settings, base_url=base_url) if chunk else {}
        chunks += 1
        for position in range(index, min(index + LOOKUP_CHUNK, len(pairs))):
            index = position + 1
            pair = pairs[position]
            if ordered(pair.first, pair.second) in dismissed or pair.first not in live \
                    or pair.second not in live:
                continue
            rows.append(QueueRow(live[pair.first], live[pair.second], pair.score, pair.grade,
                                 pair.reasons))
            if len(rows) == PAGE_SIZE:
                break
    return QueuePage(rows, start, index if index < len(pairs) else None, len(pairs),
                     len(dismissed), scanned_at)

