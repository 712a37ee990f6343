"""Field-by-field comparison of two match records into agreement levels. A level is None when
either side does not know the field (it then counts for nothing)."""

from __future__ import annotations

from rapidfuzz.distance import JaroWinkler

from fhir_server.matching import normalise
from fhir_server.matching.record import MatchRecord

FIELDS = ("family", "given", "birth_date", "gender", "phone", "email", "ssn", "identifier",
          "address")
TYPO = 0.92
SIMILAR = 0.80

Comparison = dict[str, str | None]


def _similarity(first: str, second: str) -> float:
    return float(JaroWinkler.similarity(first, second))


def _family(query: MatchRecord, candidate: MatchRecord) -> str | None:
    a, b = query.family, candidate.family
    if not a or not b:
        return None
    if a == b:
        return "exact"
    score = _similarity(a, b)
    if score >= TYPO:
        return "typo"
    if set(a.split()) & set(b.split()) or score >= SIMILAR:
        return "similar"  # one of two family names, or close
    return "disagree"


def _given(query: MatchRecord, candidate: MatchRecord) -> str | None:
    a, b = query.given, candidate.given
    if not a or not b:
        return None
    if a == b:
        return "exact"
    if normalise.nickname_of_each_other(a, b):
        return "nickname"
    score = _similarity(a, b)
    if score >= TYPO:
        return "typo"
    if (len(a) == 1 or len(b) == 1) and a[0] == b[0]:
        return "initial"
    if a in candidate.other_given or b in query.other_given or score >= SIMILAR:
        return "similar"
    return "disagree"


def _birth_date(query: MatchRecord, candidate: MatchRecord) -> str | None:
    a, b = query.birth_date, candidate.birth_date
    if a is None or b is None:
        return None
    if a == b:
        return "exact"
    if normalise.day_month_swapped(a, b):
        return "swapped"
    if normalise.one_digit_apart(a, b):
        return "typo"
    return "disagree"


def _sets(first: frozenset[str], second: frozenset[str]) -> str | None:
    if not first or not second:
        return None
    return "exact" if first & second else "disagree"


def _identifier(query: MatchRecord, candidate: MatchRecord) -> str | None:
    systems_a = {system for system, _ in query.identifiers}
    systems_b = {system for system, _ in candidate.identifiers}
    shared = systems_a & systems_b
    if not shared:
        return None
    if any(pair in candidate.identifiers for pair in query.identifiers if pair[0] in shared):
        return "exact"
    return "disagree"


def _address(query: MatchRecord, candidate: MatchRecord) -> str | None:
    same_street = (bool(query.house_number) and query.house_number == candidate.house_number
                   and bool(query.street) and bool(candidate.street)
                   and _similarity(query.street, candidate.street) >= 0.9)
    if query.postcode and candidate.postcode:
        if query.postcode == candidate.postcode:
            return "exact" if same_street else "postcode"
        return "street" if same_street else "disagree"
    if same_street:
        return "street"
    return None


def compare(query: MatchRecord, candidate: MatchRecord) -> Comparison:
    levels: Comparison = {
        "family": _family(query, candidate),
        "given": _given(query, candidate),
        "birth_date": _birth_date(query, candidate),
        "gender": (None if not query.gender or not candidate.gender
                   or "unknown" in (query.gender, candidate.gender)
                   else "exact" if query.gender == candidate.gender else "disagree"),
        "phone": _sets(query.phones, candidate.phones),
        "email": _sets(query.emails, candidate.emails),
        "ssn": (None if not query.ssn_hash or not candidate.ssn_hash
                else "exact" if query.ssn_hash == candidate.ssn_hash else "disagree"),
        "identifier": _identifier(query, candidate),
        "address": _address(query, candidate),
    }
    if (levels["family"] == "disagree" and levels["given"] == "disagree"
            and query.given == candidate.family and query.family == candidate.given):
        levels["family"] = levels["given"] = "swapped"
    return levels
