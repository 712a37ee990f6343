"""Turn the measurements into the comparison table and the JSON results file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.wrk import WrkResult

TARGETS = {"create": 0.40, "read": 0.60}

COLUMNS = (
    "operation",
    "server req/s",
    "server p50",
    "server p99",
    "baseline req/s",
    "baseline p50",
    "baseline p99",
    "ratio",
    "target",
    "met?",
)


@dataclass(frozen=True)
class Row:
    """One operation measured on both targets."""

    operation: str
    server: WrkResult
    baseline: WrkResult

    @property
    def target(self) -> float:
        return TARGETS[self.operation]

    @property
    def ratio(self) -> float:
        base = self.baseline.requests_per_sec
        return self.server.requests_per_sec / base if base else 0.0

    @property
    def failures(self) -> list[str]:
        """What broke on either side (non-2xx, socket errors); empty when clean."""
        found: list[str] = []
        for side, result in (("server", self.server), ("baseline", self.baseline)):
            problem = result.problem()
            if problem:
                found.append(f"{side}: {problem}")
        return found

    @property
    def met(self) -> bool:
        return not self.failures and self.ratio >= self.target

    def cells(self) -> list[str]:
        if self.failures:
            verdict = "FAILED " + "; ".join(self.failures)
        else:
            verdict = "yes" if self.met else "no"
        return [
            self.operation,
            f"{self.server.requests_per_sec:,.0f}",
            _ms(self.server.p50_ms),
            _ms(self.server.p99_ms),
            f"{self.baseline.requests_per_sec:,.0f}",
            _ms(self.baseline.p50_ms),
            _ms(self.baseline.p99_ms),
            f"{self.ratio:.2f}",
            f">= {self.target:.2f}",
            verdict,
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "server": self.server.to_json(),
            "baseline": self.baseline.to_json(),
            "ratio": round(self.ratio, 4),
            "target": self.target,
            "met": self.met,
            "failures": self.failures,
        }


def _ms(value: float) -> str:
    return f"{value:.2f} ms"


def table(rows: list[Row]) -> str:
    """A plain-text table with aligned columns (numbers right-aligned)."""
    return format_table(COLUMNS, [row.cells() for row in rows], {0, len(COLUMNS) - 1})


def format_table(header: Sequence[str], lines: list[list[str]], left: set[int]) -> str:
    """``header`` and ``lines`` as aligned plain text; columns in ``left`` are left-aligned,
    the others (numbers) right-aligned."""
    grid = [list(header), *lines]
    widths = [max(len(line[i]) for line in grid) for i in range(len(header))]

    def render(line: list[str]) -> str:
        cells = [
            cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        ]
        return " | ".join(cells).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([render(grid[0]), rule, *(render(line) for line in grid[1:])])


def write_json(path: Path, meta: dict[str, Any], rows: list[Row]) -> None:
    """Write the run's settings and figures as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "rows": [row.to_json() for row in rows]}
    path.write_text(json.dumps(payload, indent=2) + "\n")
