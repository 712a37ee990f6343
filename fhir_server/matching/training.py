"""Re-estimate the Fellegi-Sunter parameters from stored data with expectation-maximisation:
each candidate pair found by blocking is a match or not (unknown); fields are taken as
independent given that. Starting from the current weights, alternate the pairs' match
probabilities (E) and the m, u of each level and the prior (M) until they settle."""

from __future__ import annotations

import math
from collections.abc import Sequence

from fhir_server.matching.compare import Comparison
from fhir_server.matching.weights import MatchWeights

FLOOR = 1e-7


def _log_ratio(comparison: Comparison, weights: MatchWeights) -> float:
    total = weights.prior_weight
    for field_name, level in comparison.items():
        if level is not None:
            total += weights.weight(field_name, level)
    return total


def estimate(pairs: Sequence[Comparison], start: MatchWeights, *, iterations: int = 30,
             tolerance: float = 1e-5) -> MatchWeights:
    """New weights from the comparison vectors of candidate pairs (levels a field never took
    keep their starting values)."""
    weights = start
    for _ in range(iterations):
        posteriors = [1.0 / (1.0 + math.pow(2.0, -max(min(_log_ratio(pair, weights), 60), -60)))
                      for pair in pairs]
        matched = sum(posteriors)
        if matched <= 0 or matched >= len(pairs):
            break
        levels: dict[str, dict[str, tuple[float, float]]] = {}
        for field_name, table in weights.levels.items():
            m_counts = dict.fromkeys(table, 0.0)
            u_counts = dict.fromkeys(table, 0.0)
            for pair, posterior in zip(pairs, posteriors, strict=True):
                level = pair.get(field_name)
                if level is not None and level in table:
                    m_counts[level] += posterior
                    u_counts[level] += 1 - posterior
            m_total, u_total = sum(m_counts.values()), sum(u_counts.values())
            levels[field_name] = {
                level: ((max(m_counts[level] / m_total, FLOOR) if m_total else mu[0]),
                        (max(u_counts[level] / u_total, FLOOR) if u_total else mu[1]))
                for level, mu in table.items()}
        prior = min(max(matched / len(pairs), FLOOR), 0.5)
        moved = max(abs(math.log2(levels[f][lv][0] / weights.levels[f][lv][0]))
                    for f in levels for lv in levels[f])
        weights = MatchWeights(levels=levels, prior=weights.prior if prior <= 0 else prior)
        if moved < tolerance:
            break
    return weights
