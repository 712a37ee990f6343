"""FHIR create and conditional create. https://hl7.org/fhir/R4/http.html#create"""

from __future__ import annotations

from typing import Any

from fhir_server.conditional import find_matches
from fhir_server.errors import PreconditionFailed
from fhir_server.interactions.result import InteractionResult
from storage.patient_repository import PatientRepository


async def create(
    repository: PatientRepository, resource: dict[str, Any], *, if_none_exist: str | None
) -> InteractionResult:
    """201 with the new resource; with If-None-Exist, 200 with the single match or 412."""
    if if_none_exist is not None:
        matches = await find_matches(repository, if_none_exist)
        if len(matches) > 1:
            raise PreconditionFailed(
                f"If-None-Exist '{if_none_exist}' matches {len(matches)} Patients; "
                "the criteria must select at most one"
            )
        if matches:
            return InteractionResult(200, "Patient", stored=await repository.read(matches[0]),
                                     location=True)
    stored = await repository.create(resource)
    return InteractionResult(201, "Patient", stored=stored, location=True)
