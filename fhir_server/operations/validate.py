"""``$validate`` (https://hl7.org/fhir/R4/resource-operation-validate.html): would this content
be accepted, in general or as a create, an update or a delete?

Without a mode the content is checked as the server checks every write (R4 structure, strict
JSON, the PRM's rules) and nothing more. ``create`` and ``update`` go further: the write is run
for real inside a transaction that is then rolled back, so uniqueness (an MRN or identifier
taken), references to merged patients and every other rule a write enforces are checked
exactly as a write would check them, and nothing is kept. ``delete`` checks that the resource
exists and may be deleted, the same way. The answer is an OperationOutcome: its errors if the
content would be refused, else one information issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from fhir_server.errors import FhirError, InvalidRequest, Issue, operation_outcome
from fhir_server.interactions.repository import ResourceRepository
from fhir_server.validation.resource import validate_resource
from storage.unit_of_work import unit_of_work

MODES = ("create", "update", "delete", "profile")
BASE_PROFILE = "http://hl7.org/fhir/StructureDefinition/"


@dataclass(frozen=True)
class ValidateRequest:
    resource: dict[str, Any] | None
    mode: str | None
    profile: str | None


class _Undo(Exception):
    """Raised inside the trial transaction to roll it back once the write succeeded."""


def parse_validate(body: Any, *, resource_type: str, query_mode: str | None,
                   query_profile: str | None) -> ValidateRequest:
    """The resource, mode and profile of a ``$validate`` body: the resource itself or a
    Parameters with ``resource``, ``mode`` and ``profile`` (query parameters work too)."""
    mode, profile = query_mode, query_profile
    resource: Any = body
    if isinstance(body, dict) and body.get("resourceType") == "Parameters" \
            and resource_type != "Parameters":
        resource = None
        for parameter in body.get("parameter") or []:
            name = parameter.get("name") if isinstance(parameter, dict) else None
            if name == "resource":
                resource = parameter.get("resource")
            elif name == "mode" and isinstance(parameter.get("valueCode"), str):
                mode = parameter["valueCode"]
            elif name == "profile" and isinstance(parameter.get("valueUri")
                                                   or parameter.get("valueCanonical"), str):
                profile = parameter.get("valueUri") or parameter.get("valueCanonical")
            else:
                raise InvalidRequest(f"$validate has no parameter '{str(name)[:40]}' "
                                     "(resource, mode, profile)")
    if mode is not None and mode not in MODES:
        raise InvalidRequest(f"$validate mode '{mode[:40]}' is not one of {', '.join(MODES)}")
    if resource is not None and not isinstance(resource, dict):
        raise InvalidRequest("$validate takes a resource (or a Parameters holding one)")
    if resource is None and mode != "delete":
        raise InvalidRequest("$validate needs the resource to check (the body, or the "
                             "'resource' parameter of a Parameters)")
    return ValidateRequest(resource, mode, profile)


def _ok(message: str, warnings: list[Issue]) -> dict[str, Any]:
    issues = [Issue(message, code="informational", severity="information"), *warnings]
    return {"resourceType": "OperationOutcome",
            "issue": [issue.to_json("informational") for issue in issues]}


async def validate(wanted: ValidateRequest, *, resource_type: str, resource_id: str | None,
                   repository: ResourceRepository, engine: AsyncEngine) -> dict[str, Any]:
    """The OperationOutcome of checking ``wanted`` (``repository``: the type's storage)."""
    warnings = []
    if wanted.profile and wanted.profile != BASE_PROFILE + resource_type:
        warnings.append(Issue(f"Profile {wanted.profile[:200]} is not known here: the content "
                              f"was checked against the base R4 {resource_type} only",
                              code="not-supported", severity="warning"))
    mode = wanted.mode
    if mode in ("update", "delete") and resource_id is None:
        raise InvalidRequest(f"$validate mode {mode} needs the instance: "
                             f"POST [base]/{resource_type}/[id]/$validate")
    try:
        resource = None
        if wanted.resource is not None:
            resource = validate_resource(wanted.resource, resource_type)
            if mode == "update" and resource.get("id") != resource_id:
                raise InvalidRequest(f"The resource's id must be '{resource_id}' to validate "
                                     "it as an update of that instance")
        if mode in ("create", "update", "delete"):
            await _trial(mode, resource, resource_id, repository, engine)
    except FhirError as error:
        return operation_outcome(error)
    described = {None: "general rules", "profile": "general rules", "create": "a create",
                 "update": "an update", "delete": "a delete"}[mode]
    return _ok(f"No issues: the content is acceptable as {described}", warnings)


async def _trial(mode: str, resource: dict[str, Any] | None, resource_id: str | None,
                 repository: ResourceRepository, engine: AsyncEngine) -> None:
    """Run the write in a transaction and roll it back (raises what the write raises)."""
    try:
        async with unit_of_work(engine):
            if mode == "create":
                assert resource is not None
                await repository.create({key: value for key, value in resource.items()
                                         if key != "id"})
            elif mode == "update":
                assert resource is not None and resource_id is not None
                await repository.update(resource_id, resource, if_match=None)
            else:
                assert resource_id is not None
                await repository.read(resource_id)
                await repository.delete(resource_id)
            raise _Undo
    except _Undo:
        return
