"""EM re-estimation of the matching weights from comparison vectors."""

from __future__ import annotations

import random

from fhir_server.matching.compare import FIELDS, Comparison
from fhir_server.matching.training import estimate
from fhir_server.matching.weights import MatchWeights


def _pairs(matches: int, non_matches: int, seed: int = 3) -> list[Comparison]:
    rng = random.Random(seed)
    pairs: list[Comparison] = []
    for _ in range(matches):
        pair: Comparison = dict.fromkeys(FIELDS)
        pair.update(family="exact", given="exact" if rng.random() < 0.9 else "nickname",
                    birth_date="exact" if rng.random() < 0.95 else "typo",
                    phone="exact" if rng.random() < 0.6 else "disagree")
        pairs.append(pair)
    for _ in range(non_matches):
        pair = dict.fromkeys(FIELDS)
        pair.update(family="exact" if rng.random() < 0.3 else "disagree",
                    given="disagree", birth_date="exact" if rng.random() < 0.5 else "disagree",
                    phone="disagree")
        pairs.append(pair)
    return pairs


def test_em_learns_the_match_rate_and_level_probabilities() -> None:
    weights = estimate(_pairs(200, 1800), MatchWeights())
    assert 0.05 < weights.prior < 0.2
    m_given, u_given = weights.levels["given"]["exact"]
    assert m_given > 0.8 and u_given < 0.05
    assert weights.weight("given", "disagree") < 0 < weights.weight("given", "exact")
    m_phone, _ = weights.levels["phone"]["exact"]
    assert 0.45 < m_phone < 0.75
    untouched = MatchWeights().levels["ssn"]
    assert weights.levels["ssn"] == untouched  # no pair compared SSNs


def test_estimate_is_deterministic() -> None:
    assert estimate(_pairs(50, 500), MatchWeights()) == estimate(_pairs(50, 500), MatchWeights())
