"""HTTP for the bundled terminology (read-only): ``ValueSet/$expand`` and
``ValueSet/$validate-code`` (type and instance level), ``CodeSystem/$lookup``,
``CodeSystem/$validate-code``, and read and search of ValueSet, CodeSystem and ConceptMap.
Writes and history of these types answer 405. GET and POST (a Parameters body) both work.

No PHI passes here, so these requests are not audited and need no scope: with authorisation
on, any valid token will do (the middleware checks it for every /fhir path)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhir_server.errors import InvalidRequest, MethodNotAllowed, NotFound
from fhir_server.http import routes
from fhir_server.http.body import read_body
from fhir_server.http.conditional_read import (
    not_modified,
    not_modified_response,
    validator_headers,
)
from fhir_server.http.negotiation import check_body_type, response_format
from fhir_server.http.preconditions import prefer_handling
from fhir_server.http.responses import json_response
from fhir_server.operations import expand, lookup, validate_code
from fhir_server.operations.operation_input import OperationInput, operation_input
from fhir_server.validation.resource import parse_json
from storage.stored import now
from terminology.catalog_search import PARAMETERS, BadSearch, parse_criteria, search
from terminology.content import TYPES, catalog
from terminology.validators import validators

RESULT_PARAMETERS = frozenset({"_count", "_offset", "_summary", "_total", "_format", "_pretty"})
SUMMARY_LEFT_OUT = ("compose", "concept", "group", "expansion", "text")
"""What ``_summary=true`` leaves out (none of them is a summary element)."""
FORM_TYPES = frozenset({"application/x-www-form-urlencoded"})
Handler = Callable[[Request], Awaitable[Response]]


async def _inputs(request: Request, operation: str, accepted: tuple[str, ...]) -> OperationInput:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    body = None
    if request.method == "POST":
        check_body_type(request.headers.get("content-type"))
        body = parse_json(await read_body(
            request, routes.services_of(request).settings.max_body_bytes))
    return operation_input(operation, query=request.query_params.multi_items(), body=body,
                           accepted=accepted)


def _instance_id(request: Request) -> str | None:
    resource_id = request.path_params.get("resource_id")
    return None if resource_id is None else routes.checked_id(resource_id)


async def expand_route(request: Request) -> Response:
    wanted = expand.parse_expand(await _inputs(request, expand.NAME, expand.PARAMETERS))
    return json_response(expand.expand_value_set(wanted, resource_id=_instance_id(request),
                                                 at=now()))


async def value_set_validate_route(request: Request) -> Response:
    inputs = await _inputs(request, "$validate-code", validate_code.VALUE_SET_PARAMETERS)
    wanted = validate_code.parse_value_set_request(inputs)
    return json_response(validate_code.validate_in_value_set(
        wanted, resource_id=_instance_id(request)))


async def code_system_validate_route(request: Request) -> Response:
    inputs = await _inputs(request, "$validate-code", validate_code.CODE_SYSTEM_PARAMETERS)
    wanted = validate_code.parse_code_system_request(inputs, resource_id=_instance_id(request))
    return json_response(validate_code.validate_in_code_system(wanted))


async def lookup_route(request: Request) -> Response:
    inputs = await _inputs(request, lookup.NAME, lookup.PARAMETERS)
    return json_response(lookup.lookup(lookup.parse_lookup(inputs)))


def read_route(resource_type: str) -> Handler:
    async def read(request: Request) -> Response:
        """https://hl7.org/fhir/R4/http.html#read"""
        response_format(request.headers.get("accept"), request.query_params.get("_format"))
        resource_id = routes.checked_id(request.path_params["resource_id"])
        resource = catalog().by_id(resource_type, resource_id)
        if resource is None:
            raise NotFound(f"{resource_type}/{resource_id} is not bundled with this server")
        tag, last_modified = validators(resource_type, resource_id)
        if not_modified(request, tag, last_modified):
            return not_modified_response(tag, last_modified)
        return json_response(resource, headers=validator_headers(tag, last_modified))

    return read


def _count(pairs: list[tuple[str, str]], name: str, default: int | None) -> int | None:
    values = [value for key, value in pairs if key == name]
    if not values:
        return default
    if not values[-1].isdigit() or len(values[-1]) > 9:
        raise InvalidRequest(f"{name} must be a whole number of at least 0")
    return int(values[-1])


def search_route(resource_type: str) -> Handler:
    async def search_type(request: Request) -> Response:
        """https://hl7.org/fhir/R4/http.html#search over the bundled resources."""
        response_format(request.headers.get("accept"), request.query_params.get("_format"))
        pairs = list(request.query_params.multi_items())
        if request.method == "POST":
            check_body_type(request.headers.get("content-type"), allowed=FORM_TYPES)
            body = await read_body(request, routes.services_of(request).settings.max_body_bytes)
            try:
                pairs += parse_qsl(body.decode(), keep_blank_values=True)
            except UnicodeDecodeError:
                raise InvalidRequest("The _search form body is not UTF-8") from None
        return json_response(_searchset(request, resource_type, pairs))

    return search_type


def _searchset(request: Request, resource_type: str,
               pairs: list[tuple[str, str]]) -> dict[str, Any]:
    unknown = sorted({key for key, _ in pairs if key.partition(":")[0] not in PARAMETERS
                      and key not in RESULT_PARAMETERS})
    if unknown and prefer_handling(request.headers.get("prefer")) == "strict":
        raise InvalidRequest(f"Unknown search parameter '{unknown[0][:40]}' for "
                             f"{resource_type} (known: {', '.join(PARAMETERS)})")
    summary = next((value for key, value in reversed(pairs) if key == "_summary"), "false")
    if summary not in ("true", "false", "data", "text", "count"):
        raise InvalidRequest(f"_summary={summary[:20]} is not one of true, false, data, text, "
                             "count")
    try:
        found = search(resource_type, parse_criteria(pairs))
    except BadSearch as error:
        raise InvalidRequest(str(error)) from None
    settings = routes.services_of(request).settings
    count = min(_count(pairs, "_count", settings.page_size_default) or 0,
                settings.page_size_max)
    offset = _count(pairs, "_offset", 0) or 0
    base = routes.base_url(request)
    used = [(key, value) for key, value in pairs
            if key.partition(":")[0] in PARAMETERS or key in ("_summary", "_count")]

    def link(relation: str, start: int) -> dict[str, str]:
        query = urlencode(used + ([("_offset", str(start))] if start else []))
        return {"relation": relation, "url": f"{base}/{resource_type}" + (
            f"?{query}" if query else "")}

    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                              "total": len(found), "link": [link("self", offset)]}
    if summary == "count":
        return bundle
    page = found[offset:offset + count]
    if count and offset + count < len(found):
        bundle["link"].append(link("next", offset + count))
    if page:
        bundle["entry"] = [{"fullUrl": f"{base}/{resource_type}/{resource['id']}",
                            "resource": _summarised(resource, summary),
                            "search": {"mode": "match"}} for resource in page]
    return bundle


def _summarised(resource: dict[str, Any], summary: str) -> dict[str, Any]:
    if summary not in ("true", "text"):
        return resource
    subset = {key: value for key, value in resource.items() if key not in SUMMARY_LEFT_OUT}
    subset["meta"] = {**subset.get("meta", {}), "tag": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "SUBSETTED"}]}
    return subset


def refused(resource_type: str) -> Handler:
    async def not_allowed(request: Request) -> Response:
        raise MethodNotAllowed(
            f"{resource_type} is read-only here (the bundled terminology): read, search and "
            "its operations only", headers={"Allow": "GET"})

    return not_allowed


def terminology_routes(prefix: str = "/fhir") -> list[Route]:
    """Mounted before the generic ``/fhir/{resource_type}`` routes."""
    value_sets, code_systems = f"{prefix}/ValueSet", f"{prefix}/CodeSystem"
    table = [
        Route(f"{value_sets}/$expand", expand_route, methods=["GET", "POST"]),
        Route(f"{value_sets}/{{resource_id}}/$expand", expand_route, methods=["GET", "POST"]),
        Route(f"{value_sets}/$validate-code", value_set_validate_route,
              methods=["GET", "POST"]),
        Route(f"{value_sets}/{{resource_id}}/$validate-code", value_set_validate_route,
              methods=["GET", "POST"]),
        Route(f"{code_systems}/$lookup", lookup_route, methods=["GET", "POST"]),
        Route(f"{code_systems}/$validate-code", code_system_validate_route,
              methods=["GET", "POST"]),
        Route(f"{code_systems}/{{resource_id}}/$validate-code", code_system_validate_route,
              methods=["GET", "POST"]),
    ]
    for resource_type in TYPES:
        base = f"{prefix}/{resource_type}"
        table += [
            Route(base, search_route(resource_type), methods=["GET"]),
            Route(f"{base}/_search", search_route(resource_type), methods=["POST"]),
            Route(base, refused(resource_type), methods=["POST"]),
            Route(f"{base}/_history", refused(resource_type), methods=["GET"]),
            Route(f"{base}/{{resource_id}}/_history", refused(resource_type), methods=["GET"]),
            Route(f"{base}/{{resource_id}}/_history/{{version_id}}", refused(resource_type),
                  methods=["GET"]),
            Route(f"{base}/{{resource_id}}", read_route(resource_type), methods=["GET"]),
            Route(f"{base}/{{resource_id}}", refused(resource_type),
                  methods=["PUT", "PATCH", "DELETE"]),
        ]
    return table
