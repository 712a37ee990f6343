"""FHIR read and vread. https://hl7.org/fhir/R4/http.html#read"""

from __future__ import annotations

from fhir_server.interactions.repository import ResourceRepository
from fhir_server.interactions.result import InteractionResult


async def read(repository: ResourceRepository, resource_id: str) -> InteractionResult:
    return InteractionResult(200, repository.resource_type,
                             stored=await repository.read(resource_id))


async def vread(
    repository: ResourceRepository, resource_id: str, version_id: int
) -> InteractionResult:
    """https://hl7.org/fhir/R4/http.html#vread"""
    return InteractionResult(
        200, repository.resource_type, stored=await repository.vread(resource_id, version_id)
    )
