"""Two patients side by side: per field, what each record says, whether they agree, partly
agree or disagree, and what that contributed to the match weight: the ``$match`` explanation
of the pair (from ``$match`` of the first patient when it finds the second, else the same
scoring applied to the pair alone)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhir_server.console import display
from fhir_server.console.patients import PatientRow, patient_row
from fhir_server.matching.compare import FIELDS
from fhir_server.matching.score import MatchResult
from fhir_server.operations.match import PatientMatcher

FIELD_LABELS = {"family": "Family name", "given": "Given names", "birth_date": "Birth date",
                "gender": "Gender", "phone": "Phone", "email": "Email", "ssn": "SSN",
                "identifier": "Other identifiers", "address": "Address"}
LEVEL_TEXT = {"exact": "the same", "nickname": "nicknames of each other",
              "typo": "one slip apart", "similar": "similar", "initial": "an initial matches",
              "swapped": "swapped", "postcode": "same postcode, other street",
              "street": "same street, other postcode", "disagree": "different"}
VETO_TEXT = {"ssn": "the SSNs differ", "identifier": "an identifier of the same system differs",
             "birth_date": "the birth dates differ"}
OUTCOME_TEXT = {"agree": "Agree", "partial": "Partly agree", "disagree": "Disagree",
                "unknown": "Not compared"}


def _values(name: str, mrn_system: str) -> Callable[[dict[str, Any]], list[str]]:
    getters: dict[str, Callable[[dict[str, Any]], list[str]]] = {
        "family": lambda r: [display.family_of(r)] if display.family_of(r) else [],
        "given": lambda r: [display.given_of(r)] if display.given_of(r) else [],
        "birth_date": lambda r: [str(r["birthDate"])] if r.get("birthDate") else [],
        "gender": lambda r: [str(r["gender"])] if r.get("gender") else [],
        "phone": lambda r: display.telecoms(r, "phone"),
        "email": lambda r: display.telecoms(r, "email"),
        "ssn": display.ssns,
        "identifier": lambda r: display.other_identifiers(r, mrn_system),
        "address": display.addresses,
    }
    return getters[name]


@dataclass(frozen=True)
class FieldRow:
    field: str
    label: str
    first: list[str]
    second: list[str]
    outcome: str
    """agree | partial | disagree | unknown (one side does not say: it counts for nothing)."""
    outcome_text: str
    level_text: str
    weight: float | None


@dataclass(frozen=True)
class Comparison:
    first: PatientRow
    second: PatientRow
    rows: list[FieldRow]
    score: float
    grade: str
    weight: float
    prior: float
    vetoes: tuple[str, ...]
    found_by_match: bool
    """True: the pair as ``$match`` of the first patient ranks it (its grade then counts the
    other candidates too); False: scored on its own (blocking did not bring them together,
    or the score is below 'possible')."""


async def compare(matcher: PatientMatcher, first: dict[str, Any], second: dict[str, Any], *,
                  mrn_system: str) -> Comparison:
    outcome = await matcher.match(first, exclude=str(first["id"]))
    result: MatchResult | None = next(
        (found for found in outcome.results if found.candidate.resource_id == second["id"]),
        None)
    found_by_match = result is not None
    if result is None:
        result = await matcher.explain(first, second)
    scored = {field.field: field for field in result.fields}
    rows: list[FieldRow] = []
    for name in FIELDS:
        values = _values(name, mrn_system)
        field = scored.get(name)
        outcome_code = field.outcome if field else "unknown"
        rows.append(FieldRow(
            field=name, label=FIELD_LABELS[name], first=values(first), second=values(second),
            outcome=outcome_code, outcome_text=OUTCOME_TEXT[outcome_code],
            level_text=LEVEL_TEXT.get(field.level, field.level) if field else
            "one record does not say",
            weight=field.weight if field else None))
    return Comparison(patient_row(first, mrn_system), patient_row(second, mrn_system), rows,
                      result.probability, result.grade, result.weight,
                      matcher.weights.prior_weight,
                      tuple(VETO_TEXT.get(veto, veto) for veto in result.vetoes), found_by_match)
