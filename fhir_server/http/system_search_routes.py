"""HTTP for system search: ``GET [base]?params`` and ``POST [base]/_search`` (form body), a
searchset Bundle of one page across the searched types, with a next link while more remains."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhir_server.errors import InvalidRequest
from fhir_server.http import routes
from fhir_server.http.body import read_body
from fhir_server.http.negotiation import check_body_type, response_format
from fhir_server.http.preconditions import prefer_handling
from fhir_server.http.responses import json_response
from fhir_server.http.type_pages import type_pages_bundle
from fhir_server.interactions.system_search import parse_system_search, system_search
from fhir_server.security import access

FORM_TYPES = frozenset({"application/x-www-form-urlencoded"})


async def system_search_route(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    services = routes.services_of(request)
    pairs = list(request.query_params.multi_items())
    if request.method == "POST":
        check_body_type(request.headers.get("content-type"), allowed=FORM_TYPES)
        body = await read_body(request, services.settings.max_body_bytes)
        try:
            pairs += parse_qsl(body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            raise InvalidRequest("The _search form body is not UTF-8") from None
    repositories = access.repositories_for(request)
    base = routes.base_url(request)
    registry = services.search_registry
    query = parse_system_search(
        pairs, [kind for kind in repositories if kind in registry], registry,
        strict=prefer_handling(request.headers.get("prefer")) == "strict",
        default_count=services.settings.page_size_default,
        max_count=services.settings.page_size_max, base_url=base)
    page = await system_search(query, repositories=repositories, registry=registry,
                               base_url=base)
    return json_response(type_pages_bundle(
        path=base, base=base, pairs=[(key, value) for key, value in pairs
                                     if key not in query.ignored],
        resources=page.resources, next_page=page.next_page, left_out=page.left_out,
        total=page.total, ignored=query.ignored, searched=", ".join(query.types)))


def system_search_routes(prefix: str = "/fhir") -> list[Route]:
    """``GET [base]`` (``POST [base]`` is a Bundle) and ``POST [base]/_search``."""
    return [Route(prefix, system_search_route, methods=["GET"]),
            Route(prefix + "/", system_search_route, methods=["GET"]),
            Route(prefix + "/_search", system_search_route, methods=["POST"])]
