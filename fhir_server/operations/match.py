"""``Patient/$match`` (https://hl7.org/fhir/R4/patient-operation-match.html): the patients a
Patient probably is, scored and graded, most likely first, each with the reasons."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.errors import InvalidRequest
from fhir_server.matching.keys import family_key, query_keys
from fhir_server.matching.record import MatchRecord, record_from_resource, record_from_rows
from fhir_server.matching.score import MatchResult, rank, score_pair
from fhir_server.matching.weights import MatchWeights
from fhir_server.settings import Settings
from fhir_server.validation.resource import validate_resource
from mappings.patient import MappingContext
from storage.match_candidates import FamilyFrequencies, candidate_ids
from storage.patient_repository import PatientRepository

MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
MATCH_EXPLANATION = "urn:prm:fhir:StructureDefinition:match-explanation"
MAX_COUNT = 100


@dataclass(frozen=True)
class MatchRequest:
    resource: dict[str, Any]
    count: int | None
    only_certain: bool


@dataclass(frozen=True)
class MatchOutcome:
    results: list[MatchResult]
    resources: dict[str, dict[str, Any]]
    candidates: int
    truncated: bool


def parse_parameters(body: Any) -> MatchRequest:
    """The inputs of a Parameters body; 400 naming what is wrong."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest("$match takes a Parameters resource")
    resource, count, only_certain = None, None, False
    for parameter in body.get("parameter") or []:
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if name == "resource":
            resource = parameter.get("resource")
        elif name == "count":
            count = parameter.get("valueInteger")
            if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count:
                raise InvalidRequest("$match count must be a valueInteger of at least 1")
        elif name == "onlyCertainMatches":
            only_certain = parameter.get("valueBoolean")
            if not isinstance(only_certain, bool):
                raise InvalidRequest("$match onlyCertainMatches must be a valueBoolean")
        else:
            raise InvalidRequest(f"$match has no parameter '{str(name)[:40]}' (resource, "
                                 "onlyCertainMatches, count)")
    if resource is None:
        raise InvalidRequest("$match needs a 'resource' parameter holding a Patient")
    if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
        raise InvalidRequest("$match 'resource' must be a Patient")
    return MatchRequest(validate_resource(resource, "Patient"),
                        min(count, MAX_COUNT) if count else None, only_certain)


def load_weights(settings: Settings) -> MatchWeights:
    """The matching weights ``FHIR_MATCH_WEIGHTS`` names (``fhir-server match train``
    writes them), else the shipped defaults."""
    if settings.match_weights is None:
        return MatchWeights()
    return MatchWeights.from_file(settings.match_weights)


class PatientMatcher:
    def __init__(self, engine: AsyncEngine, patients: PatientRepository,
                 context: MappingContext, weights: MatchWeights, *, candidate_limit: int,
                 on_match: Callable[[float, int], None] | None = None) -> None:
        self._engine = engine
        self._on_match = on_match
        """Told the seconds and the candidates scored of each match (the metrics)."""
        self._patients = patients
        self._context = context
        self.weights = weights
        self._frequencies = FamilyFrequencies(engine)
        self._limit = candidate_limit

    def record(self, resource: dict[str, Any]) -> MatchRecord:
        return record_from_resource(resource, phone_region=self._context.phone_region,
                                    hash_ssn=self._context.cipher.search_hash,
                                    mrn_system=self._context.mrn_system)

    async def match(self, resource: dict[str, Any], *, count: int | None = None,
                    only_certain: bool = False, exclude: str | None = None) -> MatchOutcome:
        started = time.perf_counter()
        query = self.record(resource)
        ids, truncated = await candidate_ids(self._engine, query_keys(query),
                                             limit=self._limit, exclude=exclude)
        rows = {found.main["id"]: found for found in await self._patients.live_rows(ids)
                if found.main["merged_into_id"] is None}
        candidates = [record_from_rows(found, mrn_system=self._context.mrn_system)
                      for found in rows.values()]
        shares = await self._frequencies.shares({family_key(c.family) for c in candidates
                                                 if c.family})
        results = rank(query, candidates, self.weights,
                       lambda family: shares.get(family_key(family)),
                       count=count, only_certain=only_certain)
        resources = {result.candidate.resource_id or "": self._patients.to_resource(
            rows[result.candidate.resource_id or ""]) for result in results}
        if self._on_match is not None:
            self._on_match(time.perf_counter() - started, len(candidates))
        return MatchOutcome(results, resources, len(candidates), truncated)

    async def explain(self, first: dict[str, Any], second: dict[str, Any]) -> MatchResult:
        """How ``second`` scores as a match for ``first`` on its own, whether or not blocking
        would find it: each field's level and weight, the score and the grade of this pair
        (no margin over other candidates). The console's side-by-side comparison."""
        query, candidate = self.record(first), self.record(second)
        shares = await self._frequencies.shares(
            {family_key(candidate.family)} if candidate.family else set())
        return score_pair(query, candidate, self.weights,
                          lambda family: shares.get(family_key(family)))


def match_bundle(outcome: MatchOutcome, base_url: str) -> dict[str, Any]:
    """The searchset Bundle $match answers with."""
    entries: list[dict[str, Any]] = []
    for result in outcome.results:
        resource_id = result.candidate.resource_id or ""
        search = {
            "extension": [{"url": MATCH_GRADE, "valueCode": result.grade},
                          *(_explanation(field) for field in result.fields)],
            "mode": "match",
            "score": round(result.probability, 6),
        }
        entries.append({"fullUrl": f"{base_url}/Patient/{resource_id}",
                        "resource": outcome.resources[resource_id], "search": search})
    if outcome.truncated:
        entries.append({"resource": {"resourceType": "OperationOutcome", "issue": [{
            "severity": "warning", "code": "too-costly",
            "diagnostics": f"More candidates than the limit of {len(outcome.resources)} shared "
                           "a blocking key; the most similar by shared keys were scored"}]},
            "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                              "total": len(outcome.results)}
    if entries:
        bundle["entry"] = entries
    return bundle


def _explanation(field: Any) -> dict[str, Any]:
    return {"url": MATCH_EXPLANATION, "extension": [
        {"url": "field", "valueCode": field.field},
        {"url": "outcome", "valueCode": field.outcome},
        {"url": "level", "valueCode": field.level},
        {"url": "weight", "valueDecimal": field.weight}]}
