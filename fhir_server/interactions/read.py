"""FHIR read and vread. https://hl7.org/fhir/R4/http.html#read"""

from __future__ import annotations

from fhir_server.interactions.result import InteractionResult
from storage.patient_repository import PatientRepository


async def read(repository: PatientRepository, resource_id: str) -> InteractionResult:
    return InteractionResult(200, "Patient", stored=await repository.read(resource_id))


async def vread(
    repository: PatientRepository, resource_id: str, version_id: int
) -> InteractionResult:
    """https://hl7.org/fhir/R4/http.html#vread"""
    return InteractionResult(
        200, "Patient", stored=await repository.vread(resource_id, version_id)
    )
