"""``GET Patient/$demographics``: who the PRM's active patients are, from one SQL aggregate over
the ``patients`` table (never loading a patient): the total, age bands from the birth date as of
today, gender, US Core race and ethnicity (OMB categories, from the PRM's race and ethnicity
columns) and preferred language. Optional ``_lastUpdated`` filters (``ge``, ``gt``, ``le``,
``lt``, ``eq`` prefixes, repeatable) narrow the population to patients last changed in a window.

Active: not deleted, not merged into another patient, and neither ``active: false`` nor deceased
(the PRM ``status`` column). Insurance: how many of them hold at least one live, active Coverage
(the PRM's ``patient_insurances``) and how many do not, and per Coverage.type code how many
hold one of that type, from the insurance summary kept on each patient row
(storage/insurance_summary.py), in the same scan.

Answered as a Parameters resource: ``total``, ``date`` (the day ages are computed for), then one
repeated parameter per distribution (``ageBand``, ``gender``, ``race``, ``ethnicity``,
``language``, ``insurance`` with values ``with`` / ``without``, ``insuranceType``) with parts
``value`` and ``count``; an entry without ``value`` counts the patients with nothing recorded."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.errors import InvalidRequest
from mappings.fhir_dates import DateValueError, date_range
from storage.insurance_summary import types_of
from storage.tables import patients
from storage.unit_of_work import reading
from terminology import systems

GROUPED = ("band", "gender", "race", "ethnicity", "language")
"""The distributions read straight from the grouped columns (insurance is derived)."""
AGE_BANDS = ((0, 17), (18, 34), (35, 54), (55, 74), (75, None))
GENDERS = ("female", "male", "other", "unknown")
OMB_RACE = {
    "1002-5": "American Indian or Alaska Native", "2028-9": "Asian",
    "2054-5": "Black or African American",
    "2076-8": "Native Hawaiian or Other Pacific Islander", "2106-3": "White",
    "UNK": "Unknown", "ASKU": "Asked but no answer",
}
OMB_ETHNICITY = {
    "2135-2": "Hispanic or Latino", "2186-5": "Not Hispanic or Latino",
    "UNK": "Unknown", "ASKU": "Asked but no answer",
}
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
_PREFIX = re.compile(r"^(eq|gt|lt|ge|le)(?=\d)")


def band_label(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high}"


def last_updated_filters(values: Iterable[str]) -> list[ColumnElement[bool]]:
    """``_lastUpdated`` values as conditions on ``patients.last_updated``; 400 when one is not
    a FHIR date with an ``eq``/``gt``/``lt``/``ge``/``le`` prefix."""
    column = patients.c.last_updated
    conditions: list[ColumnElement[bool]] = []
    for raw in values:
        match = _PREFIX.match(raw)
        prefix, text = (match.group(1), raw[2:]) if match else ("eq", raw)
        try:
            low, high = date_range(text)
        except DateValueError as exc:
            raise InvalidRequest(f"$demographics _lastUpdated: {exc} (prefixes eq, gt, lt, ge, "
                                 "le)") from None
        conditions.append({"ge": column >= low, "gt": column > high, "le": column <= high,
                           "lt": column < low, "eq": and_(column >= low, column <= high)}[prefix])
    return conditions


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year that has none
        return today.replace(year=today.year - years, day=28)


def _age_band(today: date) -> ColumnElement[str]:
    """The band of ``birth_date`` as of ``today``: someone is 18 from the day ``today`` is
    18 years after their birth, so each band starts after a cut-off date."""
    birth = patients.c.birth_date
    whens = [(birth > _years_before(today, high + 1), band_label(low, high))
             for low, high in AGE_BANDS if high is not None]
    return case((birth.is_(None), literal(None)), *whens, else_=band_label(*AGE_BANDS[-1]))


async def demographics(engine: AsyncEngine, *, today: date,
                       last_updated: Iterable[str] = ()) -> dict[str, Any]:
    """The Parameters answer; one grouped scan of the active patients."""
    c = patients.c
    band = _age_band(today).label("band")
    keys = (band, c.gender, c.race_code, c.ethnicity_code, c.preferred_language,
            c.insurance_types)
    statement = (select(*keys, func.count())
                 .where(c.deleted_at.is_(None), c.merged_into_id.is_(None), c.status == "active",
                        *last_updated_filters(last_updated))
                 .group_by(*keys))
    counts: dict[str, Counter[str | None]] = {name: Counter() for name in
                                              (*GROUPED, "insurance", "insuranceType")}
    total = 0
    # a reading connection: on SQLite a snapshot beside the writer (this scan holds no lock
    # that would stall every write); on PostgreSQL its transaction begins with the SETs
    async with reading(engine) as connection:
        if connection.dialect.name == "postgresql":
            # the planner cannot estimate the groups of these columns together (it guesses
            # 100,000 for about a hundred) and sorts on disk; hashing in memory is 3x faster
            await connection.execute(text("SET LOCAL enable_sort = off"))
            await connection.execute(text("SET LOCAL jit = off"))
        for row in await connection.execute(statement):
            *values, insurance_types, count = row
            total += count
            for name, value in zip(GROUPED, values, strict=True):
                counts[name][value] += count
            held = types_of(insurance_types)
            counts["insurance"]["with" if held else "without"] += count
            for type_code in held:
                counts["insuranceType"][type_code or None] += count
    return _parameters(total, today, counts)


def _parameters(total: int, today: date, counts: dict[str, Counter[str | None]]
                ) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [{"name": "total", "valueInteger": total},
                                        {"name": "date", "valueDate": today.isoformat()}]
    bands = [band_label(low, high) for low, high in AGE_BANDS]
    parameters += _entries("ageBand", counts["band"], bands,
                           lambda value: {"valueString": value})
    parameters += _entries("gender", counts["gender"], GENDERS,
                           lambda value: {"valueCode": value})
    for name, categories in (("race", OMB_RACE), ("ethnicity", OMB_ETHNICITY)):
        parameters += _entries(name, counts[name], categories,
                               lambda value, known=categories: {"valueCoding": _coding(value,
                                                                                       known)})
    parameters += _entries("language", counts["language"], sorted(
        value for value in counts["language"] if value is not None),
        lambda value: {"valueCoding": {"system": systems.BCP_47, "code": value}})
    parameters += _entries("insurance", counts["insurance"], ("with", "without"),
                           lambda value: {"valueCode": value})
    parameters += _entries("insuranceType", counts["insuranceType"], sorted(
        value for value in counts["insuranceType"] if value is not None),
        lambda value: {"valueCode": value})
    return {"resourceType": "Parameters", "parameter": parameters}


def _coding(code: str, known: dict[str, str]) -> dict[str, str]:
    system = NULL_FLAVOR if code in ("UNK", "ASKU") else systems.CDC_RACE_ETHNICITY
    coding = {"system": system, "code": code}
    if code in known:
        coding["display"] = known[code]
    return coding


def _entries(name: str, counts: Counter[str | None], listed: Iterable[str],
             value_of: Any) -> list[dict[str, Any]]:
    """Every listed value (0 when absent), then values seen but not listed, then the count of
    patients with none recorded (an entry without ``value``) when there are any."""
    order = list(listed)
    order += sorted(value for value in counts if value is not None and value not in order)
    entries = [{"name": name, "part": [{"name": "value", **value_of(value)},
                                       {"name": "count", "valueInteger": counts[value]}]}
               for value in order]
    if counts[None]:
        entries.append({"name": name, "part": [{"name": "count", "valueInteger": counts[None]}]})
    return entries
