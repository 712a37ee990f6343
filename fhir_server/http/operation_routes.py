"""HTTP for Patient operations: ``POST /Patient/$match`` (a Parameters body),
``GET /Patient/{id}/$match`` (the likely duplicates of a stored patient), ``POST
/Patient/$merge``, ``POST /Patient/$unmerge`` and ``GET /Patient/$demographics``."""

from __future__ import annotations

from typing import Any

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
from fhir_server.security.access import principal_of, run_operation
from fhir_server.validation.resource import parse_json
from storage.stored import now


async def match_posted(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    check_body_type(request.headers.get("content-type"))
    services = routes.services_of(request)
    body = parse_json(await read_body(request, services.settings.max_body_bytes))
    wanted = parse_parameters(body)

    async def work() -> dict[str, Any]:
        outcome = await services.matcher.match(wanted.resource, count=wanted.count,
                                               only_certain=wanted.only_certain)
        return match_bundle(outcome, routes.base_url(request))

    return json_response(await run_operation(request, "Patient/$match", work,
                                             entities=_matched))


def _matched(bundle: dict[str, Any]) -> list[str]:
    return [f"Patient/{entry['resource']['id']}" for entry in bundle.get("entry", [])
            if entry.get("resource", {}).get("resourceType") == "Patient"]


async def match_stored(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    services = routes.services_of(request)
    resource_id = routes.checked_id(request.path_params["resource_id"])
    count = request.query_params.get("count")
    if count is not None and not (count.isdigit() and int(count) >= 1):
        raise InvalidRequest("$match count must be a positive integer")
    only = request.query_params.get("onlyCertainMatches", "false")
    if only not in ("true", "false"):
        raise InvalidRequest("$match onlyCertainMatches must be true or false")

    async def work() -> dict[str, Any]:
        stored = await services.patients.read(resource_id)
        assert stored.resource is not None
        outcome = await services.matcher.match(
            stored.resource, count=min(int(count), 100) if count else None,
            only_certain=only == "true", exclude=resource_id)
        return match_bundle(outcome, routes.base_url(request))

    return json_response(await run_operation(
        request, "Patient/$match", work, asked=[f"Patient/{resource_id}"],
        entities=lambda bundle: [f"Patient/{resource_id}", *_matched(bundle)]))


async def _parameters(request: Request) -> object:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    check_body_type(request.headers.get("content-type"))
    return parse_json(await read_body(request, routes.services_of(request).settings.max_body_bytes))


async def merge_posted(request: Request) -> Response:
    services = routes.services_of(request)
    inputs = parse_merge(await _parameters(request))
    principal = principal_of(request)
    client = principal.subject if principal.authenticated else (
        request.client.host if request.client else None)
    asked = [f"Patient/{name}" for name in (inputs.source, inputs.target) if name]
    return json_response(await run_operation(
        request, "Patient/$merge",
        lambda: services.merger.merge(inputs, requested_by=client),
        asked=asked, entities=lambda result: _merged(result, asked), writes=not inputs.preview))


def _merged(result: dict[str, Any], asked: list[str]) -> list[str]:
    """The patients a $merge or $unmerge answer names (its result and inputs)."""
    found = list(asked)
    for parameter in result.get("parameter", []):
        resource = parameter.get("resource") or {}
        if resource.get("resourceType") == "Patient" and resource.get("id"):
            found.append(f"Patient/{resource['id']}")
        if parameter.get("name") == "input":
            for part in (resource.get("parameter") or []):
                reference = (part.get("valueReference") or {}).get("reference")
                if isinstance(reference, str) and reference.startswith("Patient/"):
                    found.append(reference)
    return list(dict.fromkeys(found))


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
    asked = [f"Patient/{source}"] if source else []
    return json_response(await run_operation(
        request, "Patient/$unmerge",
        lambda: routes.services_of(request).merger.unmerge(merge_id, source),
        asked=asked, entities=lambda result: _merged(result, asked), writes=True))


async def patient_demographics(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    unknown = sorted(set(request.query_params) - {"_lastUpdated", "_format"})
    if unknown:
        raise InvalidRequest(f"$demographics has no parameter '{unknown[0][:40]}' "
                             "(_lastUpdated)")
    return json_response(await run_operation(
        request, "Patient/$demographics",
        lambda: demographics(routes.services_of(request).engine, today=now().date(),
                             last_updated=request.query_params.getlist("_lastUpdated")),
        entities=lambda _: []))


async def patch_provenance(request: Request) -> Response:
    raise MethodNotAllowed("Provenance is read-only here: it records merges, PATCH is not "
                           "allowed", headers={"Allow": "GET, HEAD"})


async def patch_audit_event(request: Request) -> Response:
    raise MethodNotAllowed("AuditEvent is read-only: the server records every access itself; "
                           "PATCH is not allowed", headers={"Allow": "GET, HEAD"})


def operation_routes(prefix: str = "/fhir") -> list[Route]:
    return [
        Route(prefix + "/Provenance/{resource_id}", patch_provenance, methods=["PATCH"]),
        Route(prefix + "/AuditEvent/{resource_id}", patch_audit_event, methods=["PATCH"]),
        Route(prefix + "/Patient/$merge", merge_posted, methods=["POST"]),
        Route(prefix + "/Patient/$unmerge", unmerge_posted, methods=["POST"]),
        Route(prefix + "/Patient/$match", match_posted, methods=["POST"]),
        Route(prefix + "/Patient/$demographics", patient_demographics, methods=["GET"]),
        Route(prefix + "/Patient/{resource_id}/$match", match_stored, methods=["GET"]),
    ]
