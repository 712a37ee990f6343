"""FHIR update (PUT), creating on an unknown id. https://hl7.org/fhir/R4/http.html#update"""

from __future__ import annotations

from typing import Any

from fhir_server.errors import InvalidResource, Issue
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.interactions.result import InteractionResult


def check_body_id(resource: dict[str, Any], resource_id: str, resource_type: str) -> None:
    """The body's id must be present and equal to the id in the URL."""
    body_id = resource.get("id")
    if body_id is None:
        raise InvalidResource(
            f"The resource has no id; an update must carry id '{resource_id}'",
            issues=[Issue("The resource has no id; an update must carry the id of the URL",
                          code="required", expression=(f"{resource_type}.id",))],
        )
    if body_id != resource_id:
        raise InvalidResource(
            f"The resource id '{body_id}' does not match the id '{resource_id}' in the URL",
            issues=[Issue(f"The resource id '{body_id}' does not match the id "
                          f"'{resource_id}' in the URL", code="invalid",
                          expression=(f"{resource_type}.id",))],
        )


async def update(
    repository: ResourceRepository,
    resource_id: str,
    resource: dict[str, Any],
    *,
    if_match: int | None,
) -> InteractionResult:
    check_body_id(resource, resource_id, repository.resource_type)
    stored, created = await repository.update(resource_id, resource, if_match=if_match)
    return InteractionResult(201 if created else 200, repository.resource_type, stored=stored,
                             location=created)
