"""Fellegi-Sunter scoring of candidate patients against a query, grades and explanations.

The match weight is the prior log-odds plus the weight of each compared field's level; the
score is the probability log-odds turn into (1 / (1 + 2^-weight)). Grades (documented in the
README): ``certain`` needs a score of at least 0.99, no veto (a disagreeing SSN, identifier or
birth date; a birth date that is not exact unless an SSN or identifier agrees; a given name
that is not the same or a nickname; a disagreeing family name without an agreeing SSN or
identifier) and a margin of 6 bits (64 times likelier) over the next candidate without vetoes;
``probable`` 0.9; ``possible`` 0.3. Lower scores are not matches and are not returned."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from fhir_server.matching.compare import FIELDS, compare
from fhir_server.matching.record import MatchRecord
from fhir_server.matching.weights import MatchWeights

CERTAIN = 0.99
PROBABLE = 0.9
POSSIBLE = 0.3
MARGIN_BITS = 6.0
PARTIAL_LEVELS = frozenset({"nickname", "typo", "similar", "initial", "swapped", "postcode",
                            "street"})

FamilyFrequency = Callable[[str], float | None]


@dataclass(frozen=True)
class FieldOutcome:
    """What one field did: ``outcome`` agree | partial | disagree, and its weight in bits."""

    field: str
    level: str
    outcome: str
    weight: float


@dataclass(frozen=True)
class MatchResult:
    candidate: MatchRecord
    weight: float
    probability: float
    grade: str
    fields: tuple[FieldOutcome, ...]
    vetoes: tuple[str, ...]


def probability(weight: float) -> float:
    if weight < -60:
        return 0.0
    if weight > 60:
        return 1.0
    return 1.0 / (1.0 + math.pow(2.0, -weight))


def _vetoes(levels: dict[str, str | None]) -> tuple[str, ...]:
    strong_identifier = levels["ssn"] == "exact" or levels["identifier"] == "exact"
    vetoes = [name for name in ("ssn", "identifier", "birth_date")
              if levels[name] == "disagree"]
    if levels["birth_date"] != "exact" and not strong_identifier \
            and "birth_date" not in vetoes:
        vetoes.append("birth_date not the same")
    if levels["given"] not in ("exact", "nickname", "swapped"):
        vetoes.append("given name not the same")
    if levels["family"] in (None, "disagree") and not strong_identifier:
        vetoes.append("family name not the same")
    return tuple(vetoes)


def grade_of(score: float, vetoes: tuple[str, ...]) -> str:
    if score >= CERTAIN and not vetoes:
        return "certain"
    if score >= PROBABLE:
        return "probable"
    if score >= POSSIBLE:
        return "possible"
    return "certainly-not"


def score_pair(query: MatchRecord, candidate: MatchRecord, weights: MatchWeights,
               family_frequency: FamilyFrequency | None = None) -> MatchResult:
    levels = compare(query, candidate)
    total = weights.prior_weight
    fields: list[FieldOutcome] = []
    for name in FIELDS:
        level = levels[name]
        if level is None:
            continue
        frequency = (family_frequency(candidate.family)
                     if name == "family" and level == "exact" and family_frequency else None)
        weight = (weights.weight_with_frequency(name, level, frequency)
                  if frequency is not None else weights.weight(name, level))
        outcome = ("agree" if level == "exact" else
                   "partial" if level in PARTIAL_LEVELS else "disagree")
        fields.append(FieldOutcome(name, level, outcome, round(weight, 3)))
        total += weight
    vetoes = _vetoes(levels)
    score = probability(total)
    return MatchResult(candidate, total, score, grade_of(score, vetoes), tuple(fields), vetoes)


GRADE_ORDER = {"certain": 0, "probable": 1, "possible": 2, "certainly-not": 3}


def rank(query: MatchRecord, candidates: Iterable[MatchRecord], weights: MatchWeights,
         family_frequency: FamilyFrequency | None = None, *, count: int | None = None,
         only_certain: bool = False) -> list[MatchResult]:
    """The matches, best grade first, then most likely: candidates scoring below ``possible``
    are dropped. Only one candidate can be ``certain``: the best one without vetoes, if its
    weight beats every other candidate without vetoes by the margin; other would-be certain
    candidates become ``probable``. With ``only_certain``: the certain match, or nothing."""
    scored = sorted((score_pair(query, candidate, weights, family_frequency)
                     for candidate in candidates),
                    key=lambda result: (-result.weight, result.candidate.resource_id or ""))
    unvetoed = [result for result in scored if not result.vetoes]
    results: list[MatchResult] = []
    for result in scored:
        if result.grade == "certain" and (
                result is not unvetoed[0]
                or (len(unvetoed) > 1 and result.weight - unvetoed[1].weight < MARGIN_BITS)):
            result = replace(result, grade="probable",
                             vetoes=(*result.vetoes, "no margin over the next candidate"))
        results.append(result)
    results.sort(key=lambda result: GRADE_ORDER[result.grade])  # stable: weight order kept
    matches = [result for result in results if result.grade != "certainly-not"]
    if only_certain:
        return [result for result in matches if result.grade == "certain"]
    return matches[:count] if count is not None else matches
