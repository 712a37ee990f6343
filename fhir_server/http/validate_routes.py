"""HTTP for ``$validate``: ``POST [base]/[type]/$validate`` and ``POST
[base]/[type]/[id]/$validate``; the answer is always an OperationOutcome (200 when the check
ran, whatever it found; 4xx when the request itself is wrong)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhir_server.errors import FhirError, NotFound
from fhir_server.http import routes
from fhir_server.http.body import read_body
from fhir_server.http.negotiation import check_body_type, response_format
from fhir_server.http.responses import json_response
from fhir_server.operations.validate import parse_validate, validate
from fhir_server.security import access
from fhir_server.security.scopes import Reach
from fhir_server.validation.resource import parse_json

PERMISSION = {"update": "u", "delete": "d"}
"""The interaction a mode tries (create, or no mode: the create permission)."""


async def validate_route(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    services = routes.services_of(request)
    resource_type = request.path_params["resource_type"]
    repository = services.repositories.get(resource_type)
    if repository is None or resource_type in ("AuditEvent", "Provenance"):
        raise NotFound(f"$validate is not available for '{resource_type[:64]}'")
    resource_id = request.path_params.get("resource_id")
    if resource_id is not None:
        resource_id = routes.checked_id(resource_id)
    body = await read_body(request, services.settings.max_body_bytes)
    if body.strip():
        check_body_type(request.headers.get("content-type"))
        parsed = parse_json(body)
    else:
        parsed = None
    wanted = parse_validate(parsed, resource_type=resource_type,
                            query_mode=request.query_params.get("mode"),
                            query_profile=request.query_params.get("profile"))
    name = f"{resource_type}/{resource_id}" if resource_id else f"The {resource_type}"
    policy = access.policy_for(request)
    reach = policy.require(resource_type, PERMISSION.get(wanted.mode or "", "c"))
    if reach is Reach.COMPARTMENT:
        if wanted.resource is not None:
            policy.check_writable(reach, wanted.resource, name)
        if resource_id is not None:
            try:
                current = (await repository.read(resource_id)).resource
            except FhirError:
                current = None
            if current is not None:
                policy.check_writable(reach, current, name)
    outcome = await validate(wanted, resource_type=resource_type, resource_id=resource_id,
                             repository=repository, engine=services.engine)
    passed = all(issue["severity"] in ("information", "warning") for issue in outcome["issue"])
    await access.audit_operation(request, f"{resource_type}/$validate",
                                 entities=[f"{resource_type}/{resource_id}"] if resource_id
                                 else [], succeeded=passed,
                                 detail=None if passed else outcome["issue"][0]["diagnostics"])
    return json_response(outcome)


def validate_routes(prefix: str = "/fhir") -> list[Route]:
    return [Route(prefix + "/{resource_type}/$validate", validate_route, methods=["POST"]),
            Route(prefix + "/{resource_type}/{resource_id}/$validate", validate_route,
                  methods=["POST"])]
