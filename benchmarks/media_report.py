"""The media benchmark's figures: the throughput table (server against plain, per store, size
and direction), the memory table, and the JSON results file."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.media_transfers import MIB, Batch
from benchmarks.proc_memory import PeakGrowth
from benchmarks.report import format_table

TARGET_RATIO = 0.70  # server throughput / plain throughput
TARGET_GROWTH_MIB = 20.0  # peak RSS growth of the server during one 50 MiB upload

COLUMNS = ("store", "size", "direction", "against", "batches x files", "server MiB/s",
           "other MiB/s", "ratio", "target", "met?")
REFERENCES = {"plain": "plain", "floor": "HTTP floor"}
"""What the server is compared with: ``plain`` (the issue's reference: plain file copy or plain
boto3) carries the target; ``floor`` (the minimal HTTP file app) is shown beside it, no
target."""
LEGEND = ("against: plain = the same bytes without HTTP (file write/read, plain boto3), the "
          "issue's reference; HTTP floor = benchmarks/media_floor_app.py on the same uvicorn "
          "settings (for comparison, no target)")
MEMORY_COLUMNS = ("store", "during one 50 MiB", "VmRSS before", "VmHWM", "growth", "target",
                  "met?")


@dataclass(frozen=True)
class Measurement:
    """One store, size and direction: the server's batches against a reference's (the plain
    transfer, or the HTTP floor)."""

    store: str
    size: int
    direction: str
    server: list[Batch]
    plain: list[Batch]
    reference: str = "plain"

    @property
    def server_mib_s(self) -> float:
        return statistics.median(batch.mib_per_s for batch in self.server)

    @property
    def plain_mib_s(self) -> float:
        return statistics.median(batch.mib_per_s for batch in self.plain)

    @property
    def ratio(self) -> float:
        return self.server_mib_s / self.plain_mib_s if self.plain_mib_s else 0.0

    @property
    def has_target(self) -> bool:
        return self.reference == "plain"

    @property
    def met(self) -> bool | None:
        return self.ratio >= TARGET_RATIO if self.has_target else None

    def cells(self) -> list[str]:
        return [self.store, f"{self.size // MIB} MiB", self.direction,
                REFERENCES[self.reference], f"{len(self.server)} x {self.server[0].files}",
                f"{self.server_mib_s:,.1f}", f"{self.plain_mib_s:,.1f}", f"{self.ratio:.2f}",
                f">= {TARGET_RATIO:.2f}" if self.has_target else "-",
                "-" if self.met is None else "yes" if self.met else "no"]

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store, "size_bytes": self.size, "direction": self.direction,
            "reference": self.reference, "files_per_batch": self.server[0].files,
            "server_mib_per_s": round(self.server_mib_s, 2),
            "reference_mib_per_s": round(self.plain_mib_s, 2),
            "server_batches_mib_per_s": [round(b.mib_per_s, 2) for b in self.server],
            "reference_batches_mib_per_s": [round(b.mib_per_s, 2) for b in self.plain],
            "ratio": round(self.ratio, 4),
            "target": TARGET_RATIO if self.has_target else None, "met": self.met,
        }


def memory_cells(sample: PeakGrowth) -> list[str]:
    """One memory table line; only the upload has a target."""
    met = sample.growth_mib < TARGET_GROWTH_MIB
    target = f"< {TARGET_GROWTH_MIB:g} MiB" if sample.operation == "upload" else "-"
    verdict = ("yes" if met else "no") if sample.operation == "upload" else "-"
    if sample.note:
        verdict += " (peak not reset)"
    return [sample.store, sample.operation, f"{sample.before_kib / 1024:.1f} MiB",
            f"{sample.peak_kib / 1024:.1f} MiB", f"{sample.growth_mib:+.1f} MiB", target, verdict]


def write_results(path: Path, meta: dict[str, Any], rows: list[Measurement],
                  memory: list[PeakGrowth], floors: dict[str, dict[str, float]]) -> None:
    """Write the run's settings, every batch's figures, memory samples and per-file costs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "rows": [row.to_json() for row in rows],
               "memory": [sample.to_json() for sample in memory],
               "memory_target_growth_mib": TARGET_GROWTH_MIB, "request_floor": floors}
    path.write_text(json.dumps(payload, indent=2) + "\n")


def tables(rows: list[Measurement], memory: list[PeakGrowth]) -> str:
    """The throughput table, then the memory table with any note on how the peak was read."""
    lines = [format_table(COLUMNS, [row.cells() for row in rows], {0, 2, 3, len(COLUMNS) - 1}),
             LEGEND, "",
             "Server peak RSS growth (VmHWM after - VmRSS before; peak reset via clear_refs)",
             format_table(MEMORY_COLUMNS, [memory_cells(sample) for sample in memory],
                          {0, 1, len(MEMORY_COLUMNS) - 1})]
    lines += [f"note ({sample.store} {sample.operation}): {sample.note}"
              for sample in memory if sample.note]
    return "\n".join(lines)
