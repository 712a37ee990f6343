"""HTTP for Patient operations: ``POST /Patient/$match`` (a Parameters body) and
``GET /Patient/{id}/$match`` (the likely duplicates of a stored patient)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhir_server.errors import InvalidRequest
from fhir_server.http import routes
from fhir_server.http.body import read_body
from fhir_server.http.negotiation import check_body_type, response_format
from fhir_server.http.responses import json_response
from fhir_server.operations.match import match_bundle, parse_parameters
from fhir_server.services import Services
from fhir_server.validation.resource import parse_json


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def match_posted(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    check_body_type(request.headers.get("content-type"))
    services = _services(request)
    body = parse_json(await read_body(request, services.settings.max_body_bytes))
    wanted = parse_parameters(body)
    outcome = await services.matcher.match(wanted.resource, count=wanted.count,
                                           only_certain=wanted.only_certain)
    return json_response(match_bundle(outcome, routes.base_url(request)))


async def match_stored(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    services = _services(request)
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


def operation_routes(prefix: str = "/fhir") -> list[Route]:
    return [
        Route(prefix + "/Patient/$match", match_posted, methods=["POST"]),
        Route(prefix + "/Patient/{resource_id}/$match", match_stored, methods=["GET"]),
    ]
