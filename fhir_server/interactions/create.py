"""FHIR create and conditional create. https://hl7.org/fhir/R4/http.html#create"""

from __future__ import annotations

from typing import Any

from fhir_server.errors import PreconditionFailed
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.interactions.result import InteractionResult


async def create(
    repository: ResourceRepository, resource: dict[str, Any], *, if_none_exist: str | None
) -> InteractionResult:
    """201 with the new resource; with If-None-Exist, 200 with the single match or 412."""
    resource_type = repository.resource_type
    if if_none_exist is not None:
        matches = await repository.find(if_none_exist)
        if len(matches) > 1:
            raise PreconditionFailed(
                f"If-None-Exist '{if_none_exist}' matches {len(matches)} {resource_type} "
                "resources; the criteria must select at most one"
            )
        if matches:
            return InteractionResult(200, resource_type,
                                     stored=await repository.read(matches[0]), location=True)
    stored = await repository.create(resource)
    return InteractionResult(201, resource_type, stored=stored, location=True)
