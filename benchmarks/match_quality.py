"""Quality of Patient/$match on labelled data (``benchmarks.match_data``): a population loaded
through the API, then $match queried with corrupted duplicates of stored people and with
people who were never stored (strangers, twins and household members of stored people).

    .venv/bin/python -m benchmarks.match_quality [--population 10000] [--duplicates 1000]

Runs in-process on a fresh SQLite database (or ``--database-url`` PostgreSQL, emptied first).
Prints one table per run (with and without SSNs in the queries); exit 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fastapi.testclient import TestClient

from benchmarks.match_data import Dataset, Query, build
from benchmarks.report import format_table
from fhir_server.app import create_app
from fhir_server.settings import Settings

HEADERS = {"Content-Type": "application/fhir+json"}
GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


@dataclass
class Tally:
    duplicates: int = 0
    top1: int = 0
    top5: int = 0
    probable_or_better: int = 0
    certain_right: int = 0
    certain_wrong: int = 0
    negatives: Counter[str] = field(default_factory=Counter)
    false_certain: Counter[str] = field(default_factory=Counter)
    misses: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, query: Query, entries: list[tuple[str, str]]) -> None:
        ids = [resource_id for resource_id, _ in entries]
        certain = [resource_id for resource_id, grade in entries if grade == "certain"]
        if query.truth is None:
            self.negatives[query.kind] += 1
            if certain:
                self.false_certain[query.kind] += 1
            return
        self.duplicates += 1
        self.top1 += ids[:1] == [query.truth]
        self.top5 += query.truth in ids[:5]
        self.probable_or_better += any(resource_id == query.truth and grade in
                                       ("certain", "probable") for resource_id, grade in entries)
        self.certain_right += certain == [query.truth]
        self.certain_wrong += bool(certain) and certain != [query.truth]
        if ids[:1] != [query.truth]:
            self.misses.update(query.corruptions)


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.4f}" if whole else "n/a"


def load(client: TestClient, dataset: Dataset) -> None:
    for number, (resource_id, resource) in enumerate(dataset.stored, 1):
        response = client.put(f"/fhir/Patient/{resource_id}",
                              json=resource | {"id": resource_id}, headers=HEADERS)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"loading patient {resource_id}: {response.text[:300]}")
        if number % 2000 == 0:
            print(f"[match-quality] loaded {number:,}/{len(dataset.stored):,}", file=sys.stderr)


def run_queries(client: TestClient, queries: list[Query]) -> Tally:
    tally = Tally()
    started = time.perf_counter()
    for query in queries:
        response = client.post("/fhir/Patient/$match", headers=HEADERS, json={
            "resourceType": "Parameters", "parameter": [
                {"name": "resource", "resource": query.resource},
                {"name": "count", "valueInteger": 10}]})
        if response.status_code != 200:
            raise RuntimeError(f"$match failed: {response.text[:300]}")
        entries = [(entry["resource"]["id"],
                    next(e["valueCode"] for e in entry["search"]["extension"]
                         if e["url"] == GRADE))
                   for entry in response.json().get("entry", [])
                   if entry["search"]["mode"] == "match"]
        tally.add(query, entries)
    tally.seconds = time.perf_counter() - started
    return tally


def report(label: str, tally: Tally) -> tuple[str, bool]:
    certain = tally.certain_right + tally.certain_wrong
    precision = tally.certain_right / certain if certain else 1.0
    top1 = tally.top1 / tally.duplicates if tally.duplicates else 0.0
    false_certain = sum(tally.false_certain.values())
    rows = [
        ["duplicates queried", f"{tally.duplicates:,}", ""],
        ["top-1 recall", _ratio(tally.top1, tally.duplicates), ">= 0.99 (without SSN)"],
        ["top-5 recall", _ratio(tally.top5, tally.duplicates), ""],
        ["recall at probable or better", _ratio(tally.probable_or_better, tally.duplicates), ""],
        ["recall of certain", _ratio(tally.certain_right, tally.duplicates), ""],
        ["precision of certain", f"{precision:.4f}", ">= 0.999"],
        *([f"negatives: {kind}", f"{count:,} queried, {tally.false_certain[kind]} certain", "0 certain"]
          for kind, count in sorted(tally.negatives.items())),
        ["mean $match time", f"{tally.seconds / max(tally.duplicates + sum(tally.negatives.values()), 1) * 1000:.1f} ms", ""],
    ]
    if tally.misses:
        rows.append(["top-1 misses by corruption",
                     ", ".join(f"{name} {count}" for name, count in tally.misses.most_common()), ""])
    met = precision >= 0.999 and false_certain == 0 and (label != "without SSN" or top1 >= 0.99)
    text = f"\n$match quality, {label}\n" + format_table(("measure", "value", "target"), rows,
                                                         {0, 1, 2})
    return text, met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.match_quality",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--population", type=int, default=10_000)
    parser.add_argument("--duplicates", type=int, default=1_000)
    parser.add_argument("--strangers", type=int, default=300)
    parser.add_argument("--families", type=int, default=300,
                        help="stored people given a twin and a household member as queries")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL (emptied first); default a fresh SQLite file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        settings = Settings(data_dir=Path(work), database_url=args.database_url,
                            hash_key="match-quality", encryption_keys=None)
        with TestClient(create_app(settings, migrate=True)) as client:
            with_ssn = build(args.seed, args.population, args.duplicates, args.strangers,
                             args.families, with_ssn=True)
            without_ssn = build(args.seed, args.population, args.duplicates, args.strangers,
                                args.families, with_ssn=False)
            started = time.perf_counter()
            load(client, with_ssn)
            print(f"[match-quality] loaded {len(with_ssn.stored):,} patients through the API in "
                  f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
            all_met = True
            for label, dataset in (("with SSN", with_ssn), ("without SSN", without_ssn)):
                text, met = report(label, run_queries(client, dataset.queries))
                print(text, flush=True)
                all_met &= met
    print("\ntargets " + ("met" if all_met else "NOT met"))
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
