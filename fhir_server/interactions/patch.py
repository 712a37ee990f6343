"""FHIR patch with JSON Patch (RFC 6902). https://hl7.org/fhir/R4/http.html#patch"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jsonpatch
import jsonpointer

from fhir_server.errors import InvalidRequest, UnprocessableEntity
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.interactions.result import InteractionResult
from fhir_server.interactions.update import check_body_id


def apply_json_patch(resource: dict[str, Any], operations: Any) -> dict[str, Any]:
    """The patched copy; InvalidRequest for a malformed patch, UnprocessableEntity when it fails."""
    if not isinstance(operations, list):
        raise InvalidRequest("A JSON Patch document must be a JSON array of operations")
    try:
        patch = jsonpatch.JsonPatch(operations)
        patched = patch.apply(copy.deepcopy(resource))
    except jsonpatch.JsonPatchTestFailed as exc:
        raise UnprocessableEntity(f"JSON Patch test failed: {exc}") from exc
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as exc:
        raise UnprocessableEntity(f"JSON Patch cannot be applied: {exc}") from exc
    except (jsonpatch.InvalidJsonPatch, TypeError, AttributeError, KeyError) as exc:
        raise InvalidRequest(f"Invalid JSON Patch document: {exc}") from exc
    if not isinstance(patched, dict):
        raise UnprocessableEntity("The patch replaced the whole resource with a non-object")
    return patched


async def patch(
    repository: ResourceRepository,
    resource_id: str,
    operations: Any,
    *,
    if_match: int | None,
    validate: Callable[[Any], dict[str, Any]],
) -> InteractionResult:
    read = getattr(repository, "current_for_change", repository.read)
    current = await read(resource_id)
    if if_match is None:
        if_match = current.version_id
    assert current.resource is not None
    patched = validate(apply_json_patch(current.resource, operations))
    check_body_id(patched, resource_id, repository.resource_type)
    stored, _ = await repository.update(resource_id, patched, if_match=if_match)
    return InteractionResult(200, repository.resource_type, stored=stored)
