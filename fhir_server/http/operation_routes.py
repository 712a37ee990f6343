"""HTTP for Patient operations: ``POST /Patient/$match`` (a Parameters body),
``GET /Patient/{id}/$match`` (the likely duplicates of a stored patient), ``POST
/Patient/$merge``, ``POST /Patient/$unmerge`` and ``GET /Patient/$demographics``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhir_server.errors import InvalidRequest, MethodNotAllowed
from fhir_server.http import routes
from fhir_server.http.body import read_body
from fhir_server.http.negotiation import check_body_type, response_format
from fhir_server.http.responses import json_response
from fhir_server.operations.demographics import demographics
from fhir_server.operations.match import match_bundle, parse_parameters
from fhir_server.operations.merge import parse_merge
from fhir_server.validation.resource import parse_json
from storage.stored import now


async def match_posted(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    check_body_type(request.headers.get("content-type"))
    services = routes.services_of(request)
    body = parse_json(await read_body(request, services.settings.max_body_bytes))
    wanted = parse_parameters(body)
    outcome = await services.matcher.match(wanted.resource, count=wanted.count,
                                           only_certain=wanted.only_certain)
    return json_response(match_bundle(outcome, routes.base_url(request)))


async def match_stored(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    services = routes.services_of(request)
    resource_id = routes.checked_id(request.path_params["resource_id"])
    stored = await services.patients.read(resource_id)
    assert stored.resource is not None
    count = request.query_params.get("count")
    if count is not None and not (count.isdigit() and int(count) >= 1):
        raise InvalidRequest("$match count must be a positive integer")
    only = request.query_params.get("onlyCertainMatches", "false")
    if only not in ("true", "false"):
        raise InvalidRequest("$match onlyCertainMatches must be true or false")
    outcome = await services.matcher.match(
        stored.resource, count=min(int(count), 100) if count else None,
        only_certain=only == "true", exclude=resource_id)
    return json_response(match_bundle(outcome, routes.base_url(request)))


async def _parameters(request: Request) -> object:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    check_body_type(request.headers.get("content-type"))
    return parse_json(await read_body(request, routes.services_of(request).settings.max_body_bytes))


async def merge_posted(request: Request) -> Response:
    services = routes.services_of(request)
    inputs = parse_merge(await _parameters(request))
    client = request.client.host if request.client else None
    return json_response(await services.merger.merge(inputs, requested_by=client))


async def unmerge_posted(request: Request) -> Response:
    body = await _parameters(request)
    merge_id = source = None
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise InvalidRequest("$unmerge takes a Parameters resource")
    for parameter in body.get("parameter") or []:
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if name == "merge" and isinstance(parameter.get("valueString"), str):
            merge_id = parameter["valueString"]
        elif name == "source-patient":
            reference = (parameter.get("valueReference") or {}).get("reference", "")
            if not isinstance(reference, str) or not reference.startswith("Patient/"):
                raise InvalidRequest("$unmerge source-patient must reference Patient/{id}")
            source = reference.split("/", 1)[1]
        else:
            raise InvalidRequest(f"$unmerge has no parameter '{str(name)[:40]}' "
                                 "(merge, source-patient)")
    return json_response(await routes.services_of(request).merger.unmerge(merge_id, source))


async def patient_demographics(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    unknown = sorted(set(request.query_params) - {"_lastUpdated", "_format"})
    if unknown:
        raise InvalidRequest(f"$demographics has no parameter '{unknown[0][:40]}' "
                             "(_lastUpdated)")
    return json_response(await demographics(
        routes.services_of(request).engine, today=now().date(),
        last_updated=request.query_params.getlist("_lastUpdated")))


async def patch_provenance(request: Request) -> Response:
    raise MethodNotAllowed("Provenance is read-only here: it records merges, PATCH is not "
                           "allowed", headers={"Allow": "GET, HEAD"})


def operation_routes(prefix: str = "/fhir") -> list[Route]:
    return [
        Route(prefix + "/Provenance/{resource_id}", patch_provenance, methods=["PATCH"]),
        Route(prefix + "/Patient/$merge", merge_posted, methods=["POST"]),
        Route(prefix + "/Patient/$unmerge", unmerge_posted, methods=["POST"]),
        Route(prefix + "/Patient/$match", match_posted, methods=["POST"]),
        Route(prefix + "/Patient/$demographics", patient_demographics, methods=["GET"]),
        Route(prefix + "/Patient/{resource_id}/$match", match_stored, methods=["GET"]),
    ]
