"""Fellegi-Sunter parameters: per field and agreement level, m (the probability of the level
among true matches) and u (among non-matches); the weight of a level is log2(m / u). The
defaults are hand-set from record-linkage practice; ``fhir-server match train`` re-estimates
them from the stored patients (EM) and writes a JSON file ``FHIR_MATCH_WEIGHTS`` points at."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import orjson

DEFAULT_LEVELS: dict[str, dict[str, tuple[float, float]]] = {
    "family": {"exact": (0.86, 0.004), "typo": (0.06, 0.001), "similar": (0.03, 0.01),
               "swapped": (0.01, 0.000001), "disagree": (0.04, 0.985)},
    "given": {"exact": (0.82, 0.01), "nickname": (0.05, 0.001), "typo": (0.05, 0.002),
              "initial": (0.02, 0.04), "similar": (0.02, 0.01), "swapped": (0.01, 0.000001),
              "disagree": (0.03, 0.937)},
    "birth_date": {"exact": (0.93, 0.00005), "swapped": (0.015, 0.00002),
                   "typo": (0.03, 0.0005), "disagree": (0.025, 0.99945)},
    "gender": {"exact": (0.98, 0.5), "disagree": (0.02, 0.5)},
    "phone": {"exact": (0.6, 0.0001), "disagree": (0.4, 0.9999)},
    "email": {"exact": (0.6, 0.00001), "disagree": (0.4, 0.99999)},
    "ssn": {"exact": (0.985, 0.0000001), "disagree": (0.015, 0.9999999)},
    "identifier": {"exact": (0.95, 0.000001), "disagree": (0.05, 0.999999)},
    "address": {"exact": (0.55, 0.0002), "postcode": (0.15, 0.01), "street": (0.05, 0.0001),
                "disagree": (0.25, 0.9897)},
}
DEFAULT_PRIOR = 0.00001
"""Probability that a candidate pair found by blocking is the same person, before comparing."""


@dataclass(frozen=True)
class MatchWeights:
    levels: dict[str, dict[str, tuple[float, float]]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_LEVELS.items()})
    prior: float = DEFAULT_PRIOR

    def weight(self, field_name: str, level: str) -> float:
        m, u = self.levels[field_name][level]
        return math.log2(m / u)

    def weight_with_frequency(self, field_name: str, level: str, frequency: float) -> float:
        """The exact-agreement weight with u replaced by how common the value is (a shared
        rare family name says more than a shared common one)."""
        m, u = self.levels[field_name][level]
        return math.log2(m / max(frequency, u / 20, 1e-7))

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1 - self.prior))

    def to_json(self) -> bytes:
        return orjson.dumps({"prior": self.prior, "levels": self.levels},
                            option=orjson.OPT_INDENT_2)

    @classmethod
    def from_file(cls, path: Path) -> MatchWeights:
        data = orjson.loads(path.read_bytes())
        levels = {name: {level: (float(mu[0]), float(mu[1])) for level, mu in table.items()}
                  for name, table in data["levels"].items()}
        return cls(levels=levels, prior=float(data["prior"]))
