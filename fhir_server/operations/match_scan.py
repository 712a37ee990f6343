"""Whole-database matching for operators: ``fhir-server match scan`` lists likely duplicate
pairs for a reviewer, ``fhir-server match train`` re-estimates the weights (EM) from the
candidate pairs blocking finds. Both use the same blocking and scoring as ``$match``."""

from __future__ import annotations

import csv
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.matching.compare import Comparison, compare
from fhir_server.matching.keys import query_keys
from fhir_server.matching.training import estimate
from fhir_server.matching.weights import MatchWeights
from fhir_server.operations.match import PatientMatcher, load_weights
from fhir_server.settings import Settings
from fhir_server.standalone import open_patient_store
from storage.match_candidates import candidate_ids
from storage.patient_repository import PatientRepository
from storage.tables import patients
from storage.unit_of_work import reading

BATCH = 500


@dataclass(frozen=True)
class Matching:
    """The matcher and what it stands on, opened outside the HTTP app (commands, benchmarks)."""

    engine: AsyncEngine
    patients: PatientRepository
    matcher: PatientMatcher


@asynccontextmanager
async def open_matching(settings: Settings) -> AsyncIterator[Matching]:
    async with open_patient_store(settings) as store:
        yield Matching(store.engine, store.patients, PatientMatcher(
            store.engine, store.patients, store.context, load_weights(settings),
            candidate_limit=settings.match_candidate_limit))


@dataclass(frozen=True)
class DuplicatePair:
    first: str
    second: str
    score: float
    grade: str
    reasons: str


class Progress:
    """A text progress bar on stderr."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total, self.label, self.done = max(total, 1), label, 0
        self.stream = stream or sys.stderr

    def advance(self, count: int) -> None:
        self.done += count
        share = min(self.done / self.total, 1.0)
        bar = "#" * int(share * 30)
        self.stream.write(f"\r{self.label} [{bar:<30}] {share:6.1%} {self.done:,}/{self.total:,}")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")


async def live_patients(engine: AsyncEngine, patients_repo: PatientRepository
                        ) -> AsyncIterator[list[dict[str, Any]]]:
    """Every live, unmerged patient, in id order, a batch at a time."""
    last = ""
    while True:
        async with reading(engine) as connection:
            ids = [row[0] for row in await connection.execute(
                select(patients.c.id).where(patients.c.id > last, patients.c.deleted_at.is_(None),
                                            patients.c.merged_into_id.is_(None))
                .order_by(patients.c.id).limit(BATCH))]
        if not ids:
            return
        yield await patients_repo.resources(ids)
        last = ids[-1]


async def count_live(engine: AsyncEngine) -> int:
    async with reading(engine) as connection:
        return int((await connection.execute(select(func.count()).select_from(patients).where(
            patients.c.deleted_at.is_(None), patients.c.merged_into_id.is_(None)))).scalar_one())


async def scan(engine: AsyncEngine, patients_repo: PatientRepository, matcher: PatientMatcher,
               *, minimum: str = "possible", progress: bool = True) -> list[DuplicatePair]:
    """Each pair of live patients graded ``minimum`` or better, once, highest score first."""
    wanted = {"certain": 0, "probable": 1, "possible": 2}[minimum]
    order = {"certain": 0, "probable": 1, "possible": 2}
    bar = Progress(await count_live(engine), "match scan") if progress else None
    pairs: dict[tuple[str, str], DuplicatePair] = {}
    async for batch in live_patients(engine, patients_repo):
        for resource in batch:
            outcome = await matcher.match(resource, exclude=resource["id"])
            for result in outcome.results:
                other = result.candidate.resource_id or ""
                if order.get(result.grade, 3) > wanted:
                    continue
                key = (min(resource["id"], other), max(resource["id"], other))
                reasons = "; ".join(f"{f.field} {f.outcome} ({f.weight:+.1f})"
                                    for f in result.fields)
                found = DuplicatePair(*key, round(result.probability, 6), result.grade, reasons)
                if key not in pairs or pairs[key].score < found.score:
                    pairs[key] = found
        if bar:
            bar.advance(len(batch))
    if bar:
        bar.close()
    return sorted(pairs.values(), key=lambda pair: (-pair.score, pair.first, pair.second))


def write_pairs(pairs: list[DuplicatePair], destination: Path | None) -> None:
    stream = destination.open("w", newline="") if destination else sys.stdout
    try:
        writer = csv.writer(stream)
        writer.writerow(["first", "second", "score", "grade", "reasons"])
        for pair in pairs:
            writer.writerow([pair.first, pair.second, f"{pair.score:.6f}", pair.grade,
                             pair.reasons])
    finally:
        if destination:
            stream.close()


async def train(engine: AsyncEngine, patients_repo: PatientRepository, matcher: PatientMatcher,
                *, sample: int, progress: bool = True) -> tuple[MatchWeights, int]:
    """(weights re-estimated by EM from the candidate pairs of up to ``sample`` patients,
    the number of pairs used)."""
    comparisons: list[Comparison] = []
    bar = Progress(min(sample, await count_live(engine)), "match train") if progress else None
    seen = 0
    async for batch in live_patients(engine, patients_repo):
        for resource in batch[: max(sample - seen, 0)]:
            query = matcher.record(resource)
            ids, _ = await candidate_ids(engine, query_keys(query), limit=50,
                                         exclude=resource["id"])
            for candidate in await patients_repo.resources(ids):
                comparisons.append(compare(query, matcher.record(candidate)))
        taken = min(len(batch), max(sample - seen, 0))
        seen += taken
        if bar:
            bar.advance(taken)
        if seen >= sample:
            break
    if bar:
        bar.close()
    if not comparisons:
        return matcher.weights, 0
    return estimate(comparisons, matcher.weights), len(comparisons)
