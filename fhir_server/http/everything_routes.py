"""HTTP for ``GET [base]/Patient/{id}/$everything``: a searchset Bundle of one page of the
patient's compartment, with a next link while more remains."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fhir_server.http import routes
from fhir_server.http.negotiation import response_format
from fhir_server.http.responses import json_response
from fhir_server.http.type_pages import type_pages_bundle
from fhir_server.operations.everything import everything, parse_everything
from fhir_server.security import access


async def everything_route(request: Request) -> Response:
    response_format(request.headers.get("accept"), request.query_params.get("_format"))
    services = routes.services_of(request)
    patient_id = routes.checked_id(request.path_params["resource_id"])
    params = dict(request.query_params)
    query = parse_everything(params, default_count=services.settings.page_size_default,
                             max_count=services.settings.page_size_max)
    repositories = access.repositories_for(request)
    await repositories["Patient"].read(patient_id)  # 404 unknown, 410 deleted, 403/404 barred
    base = routes.base_url(request)
    page = await everything(patient_id, query, repositories=repositories,
                            registry=services.search_registry, base_url=base)
    path = f"{base}/Patient/{patient_id}/$everything"
    return json_response(type_pages_bundle(
        path=path, base=base, pairs=list(request.query_params.multi_items()),
        resources=page.resources, next_page=page.next_page, left_out=page.left_out))


def everything_routes(prefix: str = "/fhir") -> list[Route]:
    return [Route(prefix + "/Patient/{resource_id}/$everything", everything_route,
                  methods=["GET"])]
