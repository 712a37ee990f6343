"""FHIR delete (soft: the PRM keeps records). https://hl7.org/fhir/R4/http.html#delete"""

from __future__ import annotations

from fhir_server.interactions.repository import ResourceRepository
from fhir_server.interactions.result import InteractionResult


async def delete(repository: ResourceRepository, resource_id: str) -> InteractionResult:
    """204; deleting a deleted resource is 204 again; an unknown id is 404."""
    stored = await repository.delete(resource_id)
    return InteractionResult(204, repository.resource_type, stored=stored)
